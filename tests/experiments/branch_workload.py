"""A workload returning decay branches, one of them malformed (for test_branch_trials)."""


def with_branches(params: dict) -> dict:
    return {
        "loss": 1.5,
        "cost": 10.0,
        "branches": [
            {"tokens": 10, "loss": 2.0, "cost": 5, "spent": 1},
            {"tokens": 20, "loss": float("nan"), "cost": 5, "spent": 1},  # dropped: no loss
            {"tokens": 30},  # dropped: incomplete
        ],
    }
