"""Every threshold, floor and prior the scaling model uses, in one place, each with its reason.

Why one object: a constant tuned until one world's figure improves is overfitting; here each
number says why it has its value (a published figure, a property of the maths, a limit of what
runs can show), and a test or a caller can change one without editing the stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbs.scaling.lossmodel import Family


@dataclass(frozen=True)
class Policy:
    # -- what the runs must be ------------------------------------------------------------
    min_runs: int = 3  # fewer successful runs cannot fix a level and two exponents
    few_runs: int = 8  # below this every law is weakly determined: said in a warning
    # -- which runs count, and how much ---------------------------------------------------------
    # a run's weight falls with its excess loss over the frontier at its cost, on the scale of
    # the near-frontier scatter (the runs' own noise, measured; floored at 0.25 % so a few
    # Pareto runs that happen to sit on their law do not make it a knife edge), never below the
    # floor where the model has settings to learn: far runs still show what a bad setting
    # costs. Without settings (imported tuned runs) there is no floor: an IsoFLOP curve's far
    # edges (losses 2x the minimum: Porian et al. 2024) carry only misfit of the size and data
    # terms (Porian top budgets: loss +0.9..1.7 % without, +0.9..2.4 % with a 0.01 weight
    # floor, both on a 1 % scale; on their own 0.13 % scatter, +0.5..1.2 % without)
    nearness_scale_floor: float = 0.0025
    nearness_scale_factor: float = 2.0
    nearness_floor: float = 0.05
    # a run counts as near the frontier (where an optimum's bracket, the top runs' size and an
    # unlocated setting's value are read) from half weight: within ~1.2 near-frontier scatters
    near_weight: float = 0.5
    # -- which structure: the rolling-origin backtest -------------------------------------------
    # fit on the runs below a cost quantile, score the log loss of the runs above it; four
    # origins, so one unlucky split does not choose the structure
    backtest_quantiles: tuple[float, ...] = (0.4, 0.55, 0.7, 0.85)
    backtest_min_test: int = 4
    backtest_min_train: int = 8
    # the backtest extrapolates when its cheapest origin sits at least this far below the
    # costliest run; closer, its structure choice is said to be weak (a pick reaches ~100x)
    min_backtest_reach: float = 3.0
    # a richer structure must beat a simpler one by this share of the simpler one's error
    # (about the backtest's own noise: the RMS over a few dozen held-out runs is uncertain by
    # ~10 %, less for two structures scored on the same runs), else the simpler one is kept
    parsimony: float = 0.05
    families: tuple[Family, ...] = ("additive", "tied", "smooth")
    # runs per parameter of the loss model: below it, settings are dropped (the Chinchilla part
    # needs 5, each setting 2-4 more)
    runs_per_parameter: float = 3.0
    selection_iters: int = 120
    fit_iters: int = 250
    # a fit is degenerate (and refitted with the prior on E) when E falls below this share of
    # the lowest loss, or an exponent leaves this range (published alpha, beta lie in 0.07-0.7)
    e_collapsed: float = 0.05
    plausible_exponents: tuple[float, float] = (0.05, 1.0)
    # -- a setting's optimum --------------------------------------------------------------------
    min_spread: float = 0.02  # z sd below which the runs cannot locate an optimum
    # how fast a setting's optimum moves per e-fold of compute, by role, where the losses of
    # small runs can barely show it (a batch size's penalty is shallow): DeepSeek LLM (Bi et al.
    # 2024) fit eta_opt ~ C^-0.125 and B_opt ~ C^0.327; the sds allow the published spread
    role_drift: tuple[tuple[str, float, float], ...] = (
        ("lr", -0.125, 0.1),
        ("batch", 0.327, 0.15),
        ("wd", -0.5, 0.15),  # its direct part: falls as 1 / D (the timescale law below)
    )
    # a setting's optimum whose published law fixes its slopes: AdamW's weight decay keeps the
    # averaging timescale 1 / (lr wd) a fixed share of the steps D / B (Wang & Aitchison 2024;
    # Bergsma et al. 2025), so wd_opt ~ B / (lr D): slopes -1 on log D and on the lr's z, +1
    # on the batch's z. Priors (sd as every slope's), applied where wd is searched in log
    role_slopes: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = (
        ("wd", (("log D", -1.0), ("z lr", -1.0), ("z batch", 1.0))),
    )
    # the signs a setting's optimum's slopes may take, where every published law agrees: the
    # lr's optimum falls with size, data, compute and width (Kaplan et al. 2020; DeepSeek 2024;
    # Porian et al. 2024; Bjorck et al. 2024; muP's 1 / width) and rises with the batch (the
    # square-root rule and its saturation: Malladi et al. 2022; Filatov et al. 2024); the
    # batch's rises with data and size (critical batch size: McCandlish et al. 2018; Zhang et
    # al. 2024). Without them the lr's slopes on log N and log D, near collinear along the
    # runs' frontier, traded signs (+0.20 on log N, -0.17 on the batch's z on world 11 of the
    # family) and, extrapolated 100x, put the lr 3x past its optimum
    role_slope_signs: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
        ("lr", (("log N", -1), ("log D", -1), ("log C", -1), ("log width", -1), ("z batch", 1))),
        ("batch", (("log N", 1), ("log D", 1), ("log C", 1))),
    )
    # any other setting (warmup, weight decay, ...): no agreed drift, so held unless the runs
    # show one (a shallow penalty's slope extrapolated 100x moved warmups by e-folds)
    other_drift: tuple[float, float] = (0.0, 0.15)
    # -- the learning rate ---------------------------------------------------------------------
    # the penalty above the optimum is at least this much steeper than below: runs near the
    # optimum rarely show the steep side, which is there (and past it, divergence)
    lr_ratio_floor: float = 2.0
    p_fail: float = 0.05  # accepted chance that the large run diverges
    # -- extrapolation --------------------------------------------------------------------------
    # settings that do not scale cost are kept inside their searched range unless the spec says
    # otherwise: past the range the runs show nothing (seen: an expert ratio of 17-23 picked
    # from a sweep searching 1-8)
    clamp_settings: bool = True
    clamp_routing: bool = True  # experts and top_k: a bigger run needs no more routing
    # -- intervals ------------------------------------------------------------------------------
    coverage: float = 0.9


DEFAULT_POLICY = Policy()
