"""Hostile input, swept: every config key x bad values derived from its schema, and the CLI
options that mirror config keys. Each must end with exit code 2, exactly one ``error:``
line, no traceback, and nothing written.

The bad values come from the annotations in ``fcnlab.config`` (types, ``Literal`` choices,
ranges, lengths), so a key added to the schema is swept automatically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import typing
from typing import Annotated, Any, Literal

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fcnlab.cli import app
from fcnlab.config import (
    SECTIONS,
    Ascending,
    Available,
    Duration,
    ExperimentConfig,
    Length,
    ModelName,
    Range,
    apply_overrides,
)
from fcnlab.errors import FcnlabError

runner = CliRunner()


def bad_values(hint: Any) -> list[Any]:
    """Values ``hint`` must refuse: wrong types, choices not offered, out-of-range numbers."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return bad_values(args[0]) + [v for c in hint.__metadata__ for v in _violations(c, args[0])]
    if origin in (typing.Union, typing.get_origin(int | None)):
        return [v for option in args if option is not type(None) for v in bad_values(option)]
    if origin is Literal:
        return ["nosuch", 3] if isinstance(args[0], str) else [12345, "x"]
    if origin is list:
        return ["5", {"a": 1}] + [[v] for v in bad_values(args[0])[:2]]
    if origin is dict:
        return [5, "text"]
    return {
        int: ["x", 1.5, [1]],
        float: ["abc", ".nan", ".inf", "-.inf", [1.0]],
        bool: ["maybe", 2],
        str: [[1, 2], {"a": 1}],
    }[hint]


def _violations(constraint: object, base: Any) -> list[Any]:
    if isinstance(constraint, Range):
        cast = int if base is int else float
        out = []
        if constraint.low is not None:
            out.append(cast(constraint.low) if constraint.open_low else cast(constraint.low) - 1)
        if constraint.high is not None:
            out.append(cast(constraint.high) if constraint.open_high else cast(constraint.high) + 1)
        return out
    item = typing.get_args(base)[0] if typing.get_origin(base) is list else None
    if isinstance(constraint, Length):
        good = _good_item(item)
        return [[good] * (constraint.n + 1), [good] * max(0, constraint.n - 1)]
    if isinstance(constraint, Ascending):
        return [[2.0, 1.0]]
    if isinstance(constraint, ModelName):
        return ["fcn8s_nosuchnet"]
    if isinstance(constraint, Duration):
        return ["abc", "0m", "-5m", "1h1h", "10"]
    if isinstance(constraint, Available):
        return [] if torch.cuda.is_available() else ["cuda"]
    raise AssertionError(f"no bad values known for {constraint!r}; extend the sweep")


def _good_item(hint: Any) -> Any:
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
    return 1 if base is int else 1.0


def flow_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def schema_cases() -> list[tuple[str, str]]:
    cases = []
    for section, schema in SECTIONS.items():
        hints = typing.get_type_hints(schema, include_extras=True)
        for item in dataclasses.fields(schema):
            for value in bad_values(hints[item.name]):
                text = value if isinstance(value, str) else flow_yaml(value)
                cases.append((f"{section}.{item.name}", text))
    cases += [("experiment", "a/b"), ("experiment", "''")]
    return cases


CASES = schema_cases()


def test_the_sweep_covers_every_key():
    keys = {key for key, _ in CASES}
    expected = {
        f"{s}.{f.name}" for s, schema in SECTIONS.items() for f in dataclasses.fields(schema)
    }
    assert expected <= keys
    assert len(CASES) > 3 * len(expected)


def assert_one_error_line(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len([line for line in lines if line.startswith("error:")]) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_every_bad_config_value_is_one_error_line(tmp_path, key, value):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--set", f"{key}={value}", "--out", str(out)])
    assert_one_error_line(result, key)
    assert not out.exists(), "a refused config must not create the run folder"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "{ckpt}", "--scale", "-1"], "--scale must be a finite number > 0"),
        (["eval", "{ckpt}", "--scale", "0"], "--scale must be"),
        (["eval", "{ckpt}", "--scale", "nan"], "--scale must be"),
        (["eval", "{ckpt}", "--precision", "fp8"], "--precision must be one of"),
        (["eval", "{ckpt}", "--data", "nosuch"], "--data must be one of"),
        (["eval", "{ckpt}", "--data", "synthetic", "--split", "nosuch"], "no split"),
        (["eval", "{ckpt}"], "does not say which dataset"),
        (["eval", "{ckpt}", "--scale", "x"], "--scale"),
        (["eval", "{ckpt}", "--tta", "mirror"], "--tta must be none or flip"),
        (["eval", "{ckpt}", "--sequences", "a,,b"], "holds an empty name"),
        (["eval", "{ckpt}", "--data", "synthetic", "--sequences", "road9"], "sequence 'road9'"),
        (["eval"], "Missing argument"),
        (["data", "check", "--data", "nosuch"], "--data must be one of"),
        (["data", "check", "--data", "synthetic", "--option", "size=abc"], "size"),
        (["data", "check", "--data", "synthetic", "--option", "num_classes=x"], "num_classes"),
        (["data", "check", "--data", "synthetic", "--option", "size=[1,2"], "not valid YAML"),
        (["data", "check", "--data", "synthetic", "--option", "novalue"], "key=value"),
        (["data", "check", "--data", "synthetic", "--split", "nosuch"], "nosuch"),
        (["report", "{empty}"], "holds no run"),
        (["report", "{empty}/missing"], "does not exist"),
        (["summary", "fcn8s_vgg11", "--depth", "0"], "--depth must be an integer >= 1"),
        (["summary", "fcn8s_vgg11", "--classes", "0"], "num_classes"),
        (["models", "--classes", "-3"], "num_classes"),
        (["models", "--size", "0x0"], "size must look like HxW"),
        (["bench", "fcn8s_vgg11", "--batch", "0"], "--batch must be an integer >= 1"),
        (["bench", "fcn8s_vgg11", "--repeats", "0"], "repeats"),
        (["bench", "fcn8s_vgg11", "--size", "30000x30000"], "pixels per call"),
        (["bench", "nosuch_model"], "nosuch_model"),
        (["nosuch-command"], "No such command"),
        (["train", "--nosuch-option"], "No such option"),
    ],
)
def test_cli_options_that_mirror_config_keys_are_validated(tmp_path, model_file, args, needle):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(ckpt=model_file, empty=empty) for a in args]
    result = runner.invoke(app, args)
    assert_one_error_line(result, needle)
    assert list(empty.iterdir()) == []


# Property: any override of any key with any YAML scalar or small list either gives a valid
# config or one FcnlabError; never another exception.
KEYS = [f"{s}.{f.name}" for s, schema in SECTIONS.items() for f in dataclasses.fields(schema)]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["median_frequency", "cuda", "cpu", "bf16", "fcn8s_vgg16", "adamw"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_any_override_is_valid_or_one_fcnlab_error(key, value):
    text = flow_yaml(value)
    try:
        cfg = apply_overrides(ExperimentConfig(), [f"{key}={text}"])
    except FcnlabError as error:
        assert "\n" not in str(error)
        return
    section, name = key.split(".")
    stored = getattr(getattr(cfg, section), name)
    if isinstance(stored, float):
        assert math.isfinite(stored)
    assert apply_overrides(cfg, []) == cfg  # a valid config stays valid through the dict


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=40))
def test_any_override_text_is_valid_or_one_fcnlab_error(text):
    with contextlib.suppress(FcnlabError):
        apply_overrides(ExperimentConfig(), [text])


def test_names_with_brackets_are_printed_literally(tmp_path, model_file):
    bad = tmp_path / "shot[1].png"
    bad.write_bytes(b"not a png")
    result = runner.invoke(
        app, ["predict", str(model_file), str(bad), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1, result.output
    assert "shot[1].png" in result.output and "Traceback" not in result.output
