import pytest

from carbs.errors import ConfigFailure
from models.config import MoEConfig, TrainConfig


def test_from_params_reads_fields_coerces_numbers_and_ignores_other_keys():
    cfg = MoEConfig.from_params(
        {"d_model": 96.0, "n_heads": 3, "n_kv_heads": 1, "top_k": 1.0, "learning_rate": 1e-3}
    )
    assert cfg.d_model == 96 and isinstance(cfg.d_model, int)
    assert cfg.head_dim == 32  # default d_model // n_heads
    assert cfg.top_k == 1
    tc = TrainConfig.from_params({"learning_rate": "0.01", "batch_size": 8.0, "d_model": 64})
    assert tc.learning_rate == 0.01 and tc.batch_size == 8


def test_explicit_head_dim_allows_heads_not_dividing_d_model():
    cfg = MoEConfig.from_params({"d_model": 100, "n_heads": 3, "n_kv_heads": 1, "head_dim": 32})
    assert cfg.head_dim == 32


@pytest.mark.parametrize(
    "params, field",
    [
        ({"d_model": 100, "n_heads": 3, "n_kv_heads": 1}, "n_heads"),
        ({"n_heads": 4, "n_kv_heads": 3}, "n_kv_heads"),
        ({"n_experts": 4, "top_k": 5}, "top_k"),
        ({"norm": "batchnorm"}, "norm"),
        ({"d_model": 0}, "d_model"),
    ],
)
def test_inconsistent_shapes_raise_invalid_config_failure_naming_the_field(params, field):
    with pytest.raises(ConfigFailure, match=field) as info:
        MoEConfig.from_params(params)
    assert info.value.reason == "invalid"


def test_train_config_rejects_unknown_schedule():
    with pytest.raises(ConfigFailure, match="schedule") as info:
        TrainConfig.from_params({"schedule": "linear"})
    assert info.value.reason == "invalid"
