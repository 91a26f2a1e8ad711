"""DBRX-style mixture-of-experts family: config, accounting, model, data, trainer, workload.

Public entry points: `models.config.MoEConfig`/`TrainConfig`, the pure counts in
`models.accounting`, and the sweep workload `models.workload.train_moe`.
"""
