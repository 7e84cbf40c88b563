"""Malformed checkpoints end in one FcnlabError sentence; the finiteness check is exact.

A table of hand-spoilt checkpoints goes through ``load_checkpoint`` and
``model_from_checkpoint``; hypothesis then drops and replaces entries of a valid one at random.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fcnlab.card import ModelCard
from fcnlab.engine.checkpoint import (
    check_checkpoint,
    load_checkpoint,
    make_checkpoint,
    model_from_checkpoint,
    non_finite_count,
    state_dict_is_finite,
)
from fcnlab.errors import FcnlabError
from tests.checkpoints import INFO, NORMALIZATION, tiny_model

NAN, INF = float("nan"), float("inf")
BIAS = "head.classifier.bias"


@pytest.fixture(scope="module")
def valid() -> dict[str, Any]:
    return make_checkpoint(tiny_model(), INFO, config={})


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    """An FCN-32s AlexNet checkpoint: 17 tensors, so each hypothesis example is quick."""
    return make_checkpoint(tiny_model("fcn32s_alexnet"), INFO, config={})


def _copy(value: Any) -> Any:
    """A copy of the dicts and lists; tensors are shared (spoilers replace, never edit them)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return [_copy(item) for item in value] if isinstance(value, list) else value


def _parent(checkpoint: dict, path: str) -> tuple[Any, str]:
    """The mapping that holds ``path`` ("model.name", "state_dict.head.x") and the last key."""
    top, _, rest = path.partition(".")
    return (checkpoint[top], rest) if rest else (checkpoint, top)


def _set(path: str, value: Any) -> Callable[[dict], Any]:
    """A spoiler that sets ``path`` to ``value``."""

    def spoil(checkpoint: dict) -> dict:
        parent, key = _parent(checkpoint, path)
        parent[key] = value
        return checkpoint

    return spoil


def _drop(path: str) -> Callable[[dict], Any]:
    def spoil(checkpoint: dict) -> dict:
        parent, key = _parent(checkpoint, path)
        del parent[key]
        return checkpoint

    return spoil


def _weights(**values: float) -> Callable[[dict], Any]:
    """Put ``values`` into the classifier bias (3 values, one per class)."""

    def spoil(checkpoint: dict) -> dict:
        bias = checkpoint["state_dict"][BIAS].clone()
        for index, value in values.items():
            bias[int(index[1:])] = value
        checkpoint["state_dict"][BIAS] = bias
        return checkpoint

    return spoil


def _classes(count: int, num_classes: int = 3) -> Callable[[dict], Any]:
    def spoil(checkpoint: dict) -> dict:
        checkpoint["classes"] = [f"c{i}" for i in range(count)]
        checkpoint["palette"] = [[i, i, i] for i in range(count)]
        checkpoint["model"]["num_classes"] = num_classes
        return checkpoint

    return spoil


#: (spoiler, words the sentence must contain); all fail in load_checkpoint.
AT_LOAD = {
    "a list": (lambda c: [1, 2], "is not an fcnlab checkpoint"),
    "only a version": (lambda c: {"fcnlab": 1}, "has no 'model' entry"),
    "string version": (lambda c: {"fcnlab": "one"}, "format version (key 'fcnlab') 'one', but"),
    "bool version": (_set("fcnlab", True), "it must be an integer"),
    "newer version": (_set("fcnlab", 2), "has format 2, newer than this fcnlab (1)"),
    "version 0": (_set("fcnlab", 0), "has format 0, which no fcnlab writes"),
    "model a string": (_set("model", "fcn"), "has model 'fcn', but it must be a mapping"),
    "no model name": (_drop("model.name"), "model has no 'name' entry"),
    "unknown model": (_set("model.name", "fcn9s_vgg16"), "model 'fcn9s_vgg16', which this"),
    "model name a number": (_set("model.name", 7), "is for model 7, which this fcnlab"),
    "string num_classes": (_set("model.num_classes", "3"), "num_classes '3', but it must be"),
    "weights to fetch": (
        _set("model.backbone_weights", "imagenet"),
        "unknown model argument(s) backbone_weights; valid ones are name, num_classes",
    ),
    "no state_dict": (_drop("state_dict"), "has no 'state_dict' entry"),
    "state_dict a list": (_set("state_dict", [1]), "has state_dict [1], but it must be a mapping"),
    "a weight not a tensor": (_set(f"state_dict.{BIAS}", "w"), f"'w' for weight {BIAS}, not a"),
    "a NaN weight": (_weights(i1=NAN), "holds non-finite weights (1 value); it comes from a"),
    "three bad weights": (_weights(i0=NAN, i1=INF, i2=-INF), "non-finite weights (3 values)"),
    "fewer classes": (_classes(2), "lists 2 classes but its model has num_classes 3"),
    "more classes": (_classes(4), "lists 4 classes but its model has num_classes 3"),
    "classes not strings": (_set("classes", [1, 2, 3]), "has classes [1, 2, 3], but it must be"),
    "no classes": (_set("classes", []), "a non-empty list of strings"),
    "short palette": (_set("palette", [[0, 0, 0]] * 2), "a list of 3 [r, g, b] colours, one"),
    "colour out of range": (_set("palette", [[0, 0, 300]] * 3), "colour with integers 0..255"),
    "colour of two": (_set("palette", [[0, 0]] * 3), "has palette [0, 0], but it must be"),
    "string ignore_index": (_set("ignore_index", "255"), "has ignore_index '255', but it"),
    "ignore_index a class": (_set("ignore_index", 1), "uses ignore_index 1, which is a class"),
    "no mean": (_drop("normalization.mean"), "has no 'mean' entry"),
    "two means": (_set("normalization.mean", [0.5, 0.5]), "mean [0.5, 0.5], but it must be a"),
    "NaN mean": (_set("normalization.mean", [0.5, NAN, 0.5]), "mean nan, but it must be a finite"),
    "zero std": (_set("normalization.std", [0.2, 0, 0.2]), "std 0, but it must be a finite numb"),
    "string std": (_set("normalization.std", "0.2"), "std '0.2', but it must be a list of 3"),
    "no normalization": (_drop("normalization"), "has no 'normalization' entry"),
    "zero scale": (_set("scale", 0), "has scale 0, but it must be a finite number > 0"),
    "infinite scale": (_set("scale", INF), "has scale inf"),
    "string scale": (_set("scale", "1"), "has scale '1'"),
    "no config": (_drop("config"), "has no 'config' entry"),
    "config a list": (_set("config", []), "has config [], but it must be a mapping"),
    "config data a string": (_set("config", {"data": "voc"}), "has config data 'voc', but"),
    "dataset a number": (_set("dataset", 5), "has dataset 5, not a name"),
    "metrics a list": (_set("metrics", [1]), "has metrics [1], but it must be a mapping"),
}

#: Spoilers that load_checkpoint lets through but that cannot make a model.
AT_BUILD = {
    "head for 2 classes": (_classes(2, num_classes=2), "do not fit this model: 0 missing, 0 unex"),
    "string fc_width": (
        _set("model.fc_width", "x"),
        "cannot be built: model option 'fc_width' must be an integer >= 1, not 'x'",
    ),
    "string width_mult": (
        _set("model.width_mult", "x"),
        "cannot be built: model option 'width_mult' must be a finite number > 0 and <= 4",
    ),
    "odd output stride": (
        _set("model.output_stride", 5),
        "model option 'output_stride' must be one of 8, 16, 32 or null, not 5",
    ),
    "an unsupported stride": (
        _set("model.output_stride", 32),
        "cannot be built: deeplabv3plus_mobilenet_v2 supports output_stride 8, 16, not 32",
    ),
    "an aux head it lacks": (_set("model.aux", True), "0 unexpected, 0 of another shape"),
    "a huge width": (_set("model.width_mult", 1000.0), "'width_mult' must be a finite number"),
    "a wider net": (_set("model.width_mult", 2.0), "do not fit this model"),
    "other architecture": (_set("model.name", "deeplabv3_mobilenet_v2"), "do not fit this mod"),
}


def _through_a_file(checkpoint: Any, tmp_path: Path) -> Path:
    path = tmp_path / "spoilt.pt"
    torch.save(checkpoint, path)
    return path


def _one_sentence(error: pytest.ExceptionInfo, words: str) -> None:
    message = str(error.value)
    assert words in message
    assert "\n" not in message and message.endswith(".")


@pytest.mark.parametrize("case", AT_LOAD)
def test_load_refuses_each_malformed_checkpoint(valid, tmp_path, case):
    spoil, words = AT_LOAD[case]
    path = _through_a_file(spoil(_copy(valid)), tmp_path)
    with pytest.raises(FcnlabError) as error:
        load_checkpoint(path)
    _one_sentence(error, words)
    if case != "a list":
        assert f"{path}" in str(error.value)


@pytest.mark.parametrize("case", AT_BUILD)
def test_model_from_checkpoint_refuses_what_cannot_be_built(valid, tmp_path, case):
    spoil, words = AT_BUILD[case]
    checkpoint = load_checkpoint(_through_a_file(spoil(_copy(valid)), tmp_path))
    with pytest.raises(FcnlabError) as error:
        model_from_checkpoint(checkpoint)
    _one_sentence(error, words)


@pytest.mark.parametrize("case", ["a NaN weight", "fewer classes", "zero std"])
def test_model_from_checkpoint_checks_dicts_that_skipped_load(valid, case):
    spoil, words = AT_LOAD[case]
    with pytest.raises(FcnlabError, match=re.escape(words)):
        model_from_checkpoint(spoil(_copy(valid)), "run/best.pt")


def test_a_valid_checkpoint_loads_and_predicts(valid, tmp_path):
    checkpoint = load_checkpoint(_through_a_file(valid, tmp_path))
    assert checkpoint["config"] == {}
    model = model_from_checkpoint(checkpoint).eval()
    reference = tiny_model().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    for key, value in model.state_dict().items():
        assert torch.equal(value, valid["state_dict"][key])
    flags = [p.requires_grad for p in reference.parameters()]
    assert [p.requires_grad for p in model.parameters()] == flags
    assert check_checkpoint(checkpoint) is checkpoint


PATHS = [
    "fcnlab", "model", "state_dict", "classes", "palette", "ignore_index", "normalization",
    "scale", "config", "dataset", "metrics", "versions", "train_state", "model.name",
    "model.num_classes", "model.width_mult", "model.output_stride", "model.aux",
    "model.fc_width", "normalization.mean", "normalization.std", "state_dict.head.score_fr.bias",
    "state_dict.head.score_fr.weight",
]  # fmt: skip
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-1, 300), max_size=4),
    st.lists(st.floats(), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.sampled_from([torch.zeros(3), torch.tensor([NAN]), torch.ones(2, 2), [[0, 0, 0]] * 3]),
)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edits=st.lists(st.tuples(st.sampled_from(PATHS), st.booleans(), WRONG), min_size=1, max_size=3)
)
def test_random_mutations_end_in_fcnlab_error_or_a_model(small, tmp_path, edits):
    checkpoint = _copy(small)
    for path, drop, value in edits:
        top = path.partition(".")[0]
        if "." in path and not isinstance(checkpoint.get(top), dict):
            continue  # an earlier edit removed or replaced the parent
        if not drop or path.rpartition(".")[2] in _parent(checkpoint, path)[0]:
            checkpoint = (_drop(path) if drop else _set(path, value))(checkpoint)
    path = _through_a_file(checkpoint, tmp_path)
    try:
        model = model_from_checkpoint(load_checkpoint(path))
        card = ModelCard.from_checkpoint(checkpoint)
    except FcnlabError as error:
        assert "\n" not in str(error)
        return
    assert model.num_classes == card.num_classes == len(checkpoint["classes"])


def test_state_dict_is_finite_and_non_finite_count():
    model = tiny_model()
    assert state_dict_is_finite(model.state_dict())
    assert state_dict_is_finite(dict(model.named_parameters()))  # requires_grad tensors too
    state = {
        "half": torch.tensor([1.0, 6e4], dtype=torch.float16),
        "big": torch.full((3,), 3e38),  # finite however large: no overflow to inf
        "empty": torch.zeros(0),
        "steps": torch.tensor(7),  # integers are never non-finite
        "note": "not a tensor",
    }
    assert state_dict_is_finite(state) and non_finite_count(state) == 0
    for bad in (NAN, INF, -INF):
        spoilt = {**state, "w": torch.tensor([[0.0, bad], [1.0, 2.0]])}
        assert not state_dict_is_finite(spoilt)
        assert non_finite_count(spoilt) == 1
    spoilt = {**state, "h": torch.tensor([INF, NAN, 1.0], dtype=torch.bfloat16)}
    assert not state_dict_is_finite(spoilt) and non_finite_count(spoilt) == 2
    assert state_dict_is_finite({})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_state_dict_is_finite_on_the_gpu():
    weights = torch.randn(1000, 100, device="cuda")
    state = {"w": weights, "half": weights.half(), "cpu": torch.ones(3)}
    assert state_dict_is_finite(state)
    for bad in (NAN, INF, -INF):
        spoilt = weights.clone()
        spoilt[517, 3] = bad
        assert not state_dict_is_finite({**state, "bad": spoilt})
        assert non_finite_count({**state, "bad": spoilt}) == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", "has a damaged fcnlab description"),
        ("[1, 2]", "holds list where a mapping belongs"),
        ('{"name": "m"}', "has no 'classes' entry"),
        (
            '{"name": "m", "classes": "abc", "palette": [], "ignore_index": 255}',
            "has classes 'abc', but it must be a non-empty list of strings",
        ),
        (
            '{"name": "m", "classes": ["a"], "palette": [[0, 0, 0]], "ignore_index": 255, '
            '"mean": [0, 0, 0], "std": [1, 1, -1]}',
            "has normalization std -1, but it must be a finite number > 0",
        ),
    ],
)
def test_model_cards_from_damaged_json(text, words):
    with pytest.raises(FcnlabError, match=re.escape(words)):
        ModelCard.from_json(text, "model.onnx")


def test_model_cards_round_trip_and_refuse_bad_checkpoints(valid):
    card = ModelCard.from_checkpoint(valid)
    assert ModelCard.from_json(card.to_json()) == card
    assert card.classes == INFO.classes and card.std == tuple(NORMALIZATION["std"])
    with pytest.raises(FcnlabError, match="has no 'normalization' entry"):
        ModelCard.from_checkpoint(_drop("normalization")(_copy(valid)))
    with pytest.raises(FcnlabError, match="has model 3, but it must be a mapping"):
        ModelCard.from_checkpoint(_set("model", 3)(_copy(valid)))
