"""Config: YAML in, validated overrides, unknown keys and wrong types rejected by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcnlab.config import (
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from fcnlab.errors import FcnlabError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_the_quickstart():
    cfg = load_config(None)
    assert cfg.experiment == "quickstart" and cfg.data.name == "synthetic"
    assert load_config(CONFIGS / "quickstart.yaml") == cfg


def test_round_trip_through_yaml(tmp_path):
    cfg = apply_overrides(ExperimentConfig(), ["train.lr=1e-3", "data.crop_size=[64, 80]"])
    path = tmp_path / "c.yaml"
    save_config(cfg, path)
    again = load_config(path)
    assert again == cfg
    assert again.train.lr == 0.001 and again.data.crop_size == [64, 80]


def test_overrides_parse_values_as_yaml():
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "train.steps=50",
            "model.output_stride=8",
            "train.class_weights=median_frequency",
            "data.options.length=12",
            "train.grad_clip=null",
            "train.lr=1",
        ],
    )
    assert cfg.train.steps == 50 and cfg.model.output_stride == 8
    assert cfg.train.class_weights == "median_frequency"
    assert cfg.data.options == {"length": 12}
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=1", r"unknown config key 'train.lrr'; valid keys here: .*lr"),
        ("trian.lr=1", r"unknown config key 'trian'"),
        ("train.steps=ten", r"config key 'train.steps' must be an integer >= 1, not 'ten'"),
        ("train.steps=1.5", r"must be an integer >= 1, not 1.5"),
        ("train.deterministic=3", r"must be true or false"),
        ("train.precision=fp8", r"'train.precision' must be one of auto, fp32, bf16, fp16, not"),
        ("train.class_weights=inverse", r"class_weights' must be"),
        ("data.crop_size=[1, x]", r"'data.crop_size\[1\]' must be an integer >= 1"),
        ("train.lr", r"must look like section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(FcnlabError, match=message):
        apply_overrides(ExperimentConfig(), [override])


def test_bad_files(tmp_path):
    with pytest.raises(FcnlabError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(FcnlabError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("model:\n  nam: fcn8s_vgg16\n")
    with pytest.raises(FcnlabError, match=r"unknown config key 'model.nam'"):
        load_config(bad)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_is_complete_and_valid(path):
    cfg = load_config(path)
    raw = __import__("yaml").safe_load(path.read_text())
    assert set(raw) == {"experiment", "model", "data", "train"}, "one complete file, no gaps"
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert cfg.experiment == path.stem
