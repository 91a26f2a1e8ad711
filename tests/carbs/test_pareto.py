from carbs.pareto import group_by_key, pareto_groups, pareto_mask


def test_pareto_mask_keeps_only_undominated_points() -> None:
    assert pareto_mask([1, 2, 3, 4], [3.0, 1.0, 2.0, 0.5]).tolist() == [True, True, False, True]


def test_group_by_key_collects_repeats() -> None:
    assert group_by_key(["a", "b", "a", "c"]) == [[0, 2], [1], [3]]


def test_pareto_groups_follow_cost_and_mean_loss() -> None:
    groups = [[0], [1], [2], [3]]
    costs = [1.0, 2.0, 3.0, 4.0]
    losses = [5.0, 4.0, 4.5, 3.0]
    front = pareto_groups(groups, costs, losses, min_cost_fraction=0.0, conservative=False)
    assert front == [[0], [1], [3]]


def test_conservative_grouping_needs_single_samples_to_beat_best_sample() -> None:
    # CARBS' example (losses, lower is better): A mean 0.5 (best sample 0.0); B single 0.4.
    groups = [[0, 1], [2], [3, 4], [5]]
    costs = [1, 1, 2, 3, 3, 4]
    losses = [1.0, 0.0, 0.4, 0.45, 0.25, 0.2]
    conservative = pareto_groups(groups, costs, losses, min_cost_fraction=0.0)
    plain = pareto_groups(groups, costs, losses, min_cost_fraction=0.0, conservative=False)
    assert [2] not in conservative and [2] in plain
    assert conservative[0] == [0, 1] and conservative[-1] == [5]
