"""Scaling laws from small runs: frontier and Chinchilla fits, per-parameter laws, the pick.

Entry point: `carbs.scaling.pick.pick_large_run(points, space, target_flops, cost_fn=...)`.
"""
