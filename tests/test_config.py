from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from gpwave import config
from gpwave.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4e-4", 0.0004),
        ("1E3", 1000.0),
        ("-2.5e+1", -25.0),
        (".5", 0.5),
        ("2", 2),
        ("null", None),
        ("true", True),
        ("[0, 1]", [0, 1]),
        ("{kind: stft}", {"kind": "stft"}),
        ("stft", "stft"),
        ("1e", "1e"),
    ],
)
def test_parse_scalar_reads_yaml_with_yaml12_floats(text, value):
    out = config.parse_scalar(text)
    assert out == value and type(out) is type(value)


def test_load_yaml_names_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        config.load_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="missing.yaml: cannot read the config"):
        config.load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "ok.yaml").write_text("lr: 4e-4\n")
    assert config.load_yaml(tmp_path / "ok.yaml") == {"lr": 0.0004}


def test_parse_assignments():
    assert config.parse_assignments(["a=1", "b.c = x=y"]) == {"a": "1", "b.c": " x=y"}
    assert config.parse_assignments(None) == {}
    for bad in ("epochs", "=3"):
        with pytest.raises(ConfigError, match="expected KEY=VALUE"):
            config.parse_assignments([bad])


@dataclasses.dataclass
class _Cfg:
    n: int = 1
    x: float = 0.5
    names: list[str] = dataclasses.field(default_factory=list)
    limit: int | None = None
    flag: bool = False

    def __post_init__(self):
        config.check_fields(self, {"n": (lambda v: v >= 1, "an integer >= 1")})


def test_check_fields_types_ranges_and_widening():
    c = _Cfg(n=2, x=3, names=("a",), limit=None)
    assert c.x == 3.0 and type(c.x) is float and c.names == ["a"]
    cases = [
        ({"n": 0}, "n=0: expected an integer >= 1"),
        ({"n": 1.5}, "n=1.5: expected an integer >= 1"),
        ({"n": True}, "n=True: expected an integer >= 1"),
        ({"x": "fast"}, "x='fast': expected a number"),
        ({"names": ["a", 1]}, "expected a list of strings"),
        ({"limit": "3"}, "limit='3': expected an integer or null"),
        ({"flag": 1}, "flag=1: expected true or false"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError) as err:
            _Cfg(**kwargs)
        assert message in str(err.value)


def test_check_keys_suggests_close_names():
    with pytest.raises(ConfigError, match="'nn'.*did you mean 'n'"):
        config.check_keys({"nn": 1}, _Cfg)
    config.check_keys({"n": 1, "x": 2}, _Cfg)


def test_resolve_device():
    expect = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.resolve_device(None) == config.resolve_device("auto") == expect
    assert config.resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            config.resolve_device("cuda:0")


def test_the_module_says_why_this_technology():
    doc = Path(config.__file__).read_text()
    assert "Choice of technology" in doc and "pydantic" in doc


# --- the training config (issue 21 items 15 and 16) -------------------------------------
@pytest.mark.parametrize(
    ("raw", "overrides", "match"),
    [
        ({"feature": "stft"}, None, "feature='stft': expected a mapping"),
        ({}, {"feature": "3"}, "feature=3: expected a mapping"),
        ({}, {"model_kwargs": "5"}, "model_kwargs=5: expected a mapping"),
        ({"feature": {"level": "eight"}}, None, "feature.level='eight': expected an integer"),
        ({"feature": {"kind": "waves"}}, None, "feature.kind='waves'"),
        ({"augment": 5}, None, "augment=5: expected a list"),
        ({"augment": ["gain"]}, None, r"augment\[0\]='gain': expected keys kind"),
    ],
)
def test_a_wrong_type_is_a_config_error_never_a_silent_default(raw, overrides, match):
    """``feature: stft`` or ``--set feature=3`` used to train sym5 packets (as ``{}``)."""
    from gpwave import train

    with pytest.raises(ConfigError, match=match):
        train.read_config(raw, overrides)


def test_feature_and_augment_are_typed():
    cfg = config.TrainConfig.from_dict(
        {"feature": {"kind": "stft", "power": 2}, "augment": [{"kind": "gain", "strengths": [3]}]}
    )
    assert cfg.feature == {"kind": "stft", "power": 2.0}
    assert cfg.feature_config.kind == "stft" and cfg.feature_config.sample_rate == 22050
    assert cfg.augment == [config.AugmentSpec("gain", (3.0,), 1.0)]
    assert cfg.to_dict()["augment"] == [{"kind": "gain", "strengths": [3.0], "p": 1.0}]
    assert config.TrainConfig.from_dict(cfg.to_dict()) == cfg  # checkpoint round trip


def test_every_default_is_one_constant():
    from gpwave.constants import FRAME_SECONDS, N_BOOT, SPLIT

    cfg = config.TrainConfig()
    assert (cfg.seconds, tuple(cfg.split), cfg.n_boot) == (FRAME_SECONDS, SPLIT, N_BOOT)


def test_resume_treats_a_default_feature_setting_as_no_change(tmp_path):
    """``--resume --set feature.kind=packets`` (the default) was refused as a change."""
    saved = config.TrainConfig().to_dict()
    same = config.TrainConfig.from_dict({"feature": {"kind": "packets", "level": 8}})
    assert config.resume_changes(saved, same, tmp_path / "last.pt") == {}
    lr = config.TrainConfig.from_dict({"lr": 0.1})
    assert config.resume_changes(saved, lr, tmp_path / "last.pt") == {"lr": [0.0004, 0.1]}
    with pytest.raises(ConfigError, match="cannot change feature"):
        stft = config.TrainConfig.from_dict({"feature": {"kind": "stft"}})
        config.resume_changes(saved, stft, tmp_path / "last.pt")


def test_expand_grid_is_a_cartesian_product():
    raw = {
        "model": ["dcnn", "lcnn"],
        "feature": {"kind": ["packets", "stft"], "level": 8},
        "seeds": [0, 1],
        "split": [0.8, 0.1, 0.1],
        "model_kwargs": {"dilations": [1, 2, 4]},
        "lr": 0.001,
    }
    points = config.expand_grid(raw)
    assert len(points) == 4
    assert {(p["model"], p["feature"]["kind"]) for p in points} == {
        ("dcnn", "packets"),
        ("dcnn", "stft"),
        ("lcnn", "packets"),
        ("lcnn", "stft"),
    }
    assert all(p["seeds"] == [0, 1] and p["split"] == [0.8, 0.1, 0.1] for p in points)
    assert all(p["model_kwargs"] == {"dilations": [1, 2, 4]} and p["lr"] == 0.001 for p in points)
    assert points[0]["_grid"] == {"model": "dcnn", "kind": "packets"}
    assert len(config.expand_grid({"seeds": [[0], [1, 2]]})) == 2


def test_overrides_parse_yaml_and_nested_keys():
    raw = config.apply_overrides(
        {"epochs": 10, "feature": {"kind": "packets"}},
        {"epochs": "2", "feature.kind": "stft", "seeds": "[0, 1]"},
    )
    assert raw == {"epochs": 2, "feature": {"kind": "stft"}, "seeds": [0, 1]}


def test_unknown_config_key_is_refused():
    with pytest.raises(ConfigError, match="'epoch'.*did you mean 'epochs'"):
        config.TrainConfig.from_dict({"epoch": 3})


def test_set_values_are_yaml_scalars_with_yaml12_floats():
    raw = config.apply_overrides({}, {"lr": "4e-4", "weight_decay": "1E-3", "limit_test": "null"})
    assert raw == {"lr": 0.0004, "weight_decay": 0.001, "limit_test": None}
    assert config.TrainConfig.from_dict({"lr": 1}).lr == 1.0 and isinstance(
        config.TrainConfig.from_dict({"lr": 1}).lr, float
    )


def test_mapping_overrides_merge_into_the_protocol():
    raw = {"feature": {"kind": "packets", "wavelet": "sym5"}, "seeds": [0, 1]}
    out = config.apply_overrides(raw, {"feature": {"kind": "stft"}, "seeds": [2]})
    assert out == {"feature": {"kind": "stft", "wavelet": "sym5"}, "seeds": [2]}
    with pytest.raises(ConfigError, match="epochs is not a mapping"):
        config.apply_overrides({"epochs": 3}, {"epochs.x": "1"})


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"kind": "mp4", "strengths": [32]}, "augment[0].kind='mp4'"),
        ({"kind": "mp3", "strengths": [33]}, "augment[0].strengths: mp3 refuses 33"),
        ({"kind": "lowpass", "strengths": [20000]}, "lowpass refuses 20000"),
        ({"kind": "gain", "strengths": [-6], "p": 1.5}, "augment[0].p=1.5"),
        ({"kind": "gain", "strengths": []}, "augment[0].strengths=[]"),
        ({"kind": "gain"}, "expected keys kind, strengths"),
        ({"kind": "gain", "strengths": [1], "prob": 1}, "unknown: prob"),
    ],
)
def test_bad_augment_spec_is_a_config_error_naming_key_and_value(spec, needle):
    with pytest.raises(ConfigError) as err:
        config.TrainConfig.from_dict({"augment": [spec]})
    assert needle in str(err.value)


def test_precision_key_defaults_to_fp32_and_refuses_other_values():
    assert config.TrainConfig().precision == "fp32"
    assert config.TrainConfig.from_dict({"precision": "bf16"}).precision == "bf16"
    with pytest.raises(ConfigError, match="precision='fp16'.*'fp32'.*'bf16'"):
        config.TrainConfig.from_dict({"precision": "fp16"})
