"""Self-describing checkpoints: plain data, written atomically, loaded with weights_only.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only:

- ``fcnlab``: format version; ``model``: the ``create_model`` arguments; ``state_dict``;
- the label space (:meth:`fcnlab.labels.LabelSpace.to_fields`): ``dataset``, ``classes``,
  ``palette``, ``ignore_index``, ``normalization`` ({"mean", "std"}); ``scale`` (the
  resolution the model works at, relative to the images);
- ``config``: the resolved experiment config; ``versions``; ``metrics`` (last validation);
- ``backbone_weights``: where the backbone's initial weights came from (package, version and
  SHA-256, or URL, or file), None for random initialisation;
- ``train_state`` (``last`` only): step, epoch, best mIoU, optimizer, scaler and RNG states.

Predict, export and serve read preprocessing from here, so no constant is duplicated.
:func:`load_checkpoint` and :func:`check_checkpoint` refuse, with one sentence, anything else:
a missing or mistyped entry, an unknown model, a class list that does not fit the head, or
weights that are not all finite (:func:`state_dict_is_finite`).
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from fcnlab._version import __version__
from fcnlab.errors import FcnlabError
from fcnlab.labels import LabelSpace
from fcnlab.models import Segmenter, create_model, is_model
from fcnlab.models.options import ModelOptions
from fcnlab.serialization import (
    expect_dict,
    expect_entry,
    expect_int,
    expect_number,
    read_torch_file,
    shown,
)

FORMAT_VERSION = 1
#: The ``create_model`` arguments a checkpoint may hold (never weights to fetch).
MODEL_ARGS = ModelOptions.arg_names()


def make_checkpoint(
    model: Segmenter,
    labels: LabelSpace,
    config: dict[str, Any],
    scale: float = 1.0,
    metrics: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "fcnlab": FORMAT_VERSION,
        "model": dict(model.args),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **labels.to_fields(),
        "scale": scale,
        "config": config,
        "versions": {
            "fcnlab": __version__,
            "torch": str(torch.__version__),
            "torchvision": str(torchvision.__version__),
            "python": platform.python_version(),
        },
        "metrics": metrics or {},
        "backbone_weights": model.weights_source,
        "train_state": train_state,
    }


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> Path:
    """Write atomically: a temporary file in the same folder, fsync, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an fcnlab checkpoint, with one clear sentence for every way it can be wrong."""
    path = Path(path)
    checkpoint = read_torch_file(path, "checkpoint")
    if not isinstance(checkpoint, dict) or "fcnlab" not in checkpoint:
        raise FcnlabError(
            f"{path} is not an fcnlab checkpoint (no 'fcnlab' key); for plain state dicts "
            "use fcnlab.init_from or backbone_weights."
        )
    return check_checkpoint(checkpoint, f"checkpoint {path}")


def check_checkpoint(checkpoint: Any, source: str = "the checkpoint") -> dict[str, Any]:
    """Check a checkpoint's structure, types, class count and weights; return it unchanged."""
    _check_version(expect_entry(checkpoint, "fcnlab", source), source)
    args = _check_model_args(expect_entry(checkpoint, "model", source), source)
    _check_state_dict(expect_entry(checkpoint, "state_dict", source), source)
    labels = LabelSpace.from_fields(checkpoint, source)
    if args["num_classes"] != labels.num_classes:
        raise FcnlabError(
            f"{source} lists {labels.num_classes} classes but its model has "
            f"num_classes {args['num_classes']}; the class list does not fit the head."
        )
    expect_number(expect_entry(checkpoint, "scale", source), "scale", source, positive=True)
    _check_optional(checkpoint, source)
    return checkpoint


def _check_version(version: Any, source: str) -> None:
    version = expect_int(version, "format version (key 'fcnlab')", source)
    if version > FORMAT_VERSION:
        raise FcnlabError(
            f"{source} has format {version}, newer than this fcnlab ({FORMAT_VERSION}); "
            "upgrade fcnlab."
        )
    if version < 1:
        raise FcnlabError(f"{source} has format {version}, which no fcnlab writes; it is damaged.")


def _check_model_args(args: Any, source: str) -> dict[str, Any]:
    args = expect_dict(args, "model", source)
    unknown = sorted(set(args) - set(MODEL_ARGS))
    if unknown:
        raise FcnlabError(
            f"{source} has unknown model argument(s) {', '.join(unknown)}; valid ones are "
            f"{', '.join(MODEL_ARGS)}."
        )
    name = expect_entry(args, "name", f"{source}'s model")
    if not is_model(name):
        raise FcnlabError(
            f"{source} is for model {shown(name)}, which this fcnlab does not know; see "
            "`fcnlab models` for the valid names."
        )
    expect_int(expect_entry(args, "num_classes", f"{source}'s model"), "num_classes", source)
    return args


def _check_state_dict(state: Any, source: str) -> None:
    state = expect_dict(state, "state_dict", source)
    wrong = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if wrong is not None:
        raise FcnlabError(
            f"{source} has {shown(state[wrong])} for weight {wrong}, not a tensor; it is damaged."
        )
    if not state_dict_is_finite(state):
        raise FcnlabError(
            f"{source} holds non-finite weights ({_values(non_finite_count(state))}); it comes "
            "from a diverged run, so use an earlier checkpoint or lower the learning rate."
        )


def _check_optional(checkpoint: dict[str, Any], source: str) -> None:
    config = expect_dict(expect_entry(checkpoint, "config", source), "config", source)
    if "data" in config:
        data = expect_dict(config["data"], "config data", source)
        expect_dict(data.get("options", {}), "config data options", source)
    for key in ("versions", "metrics"):
        if key in checkpoint:
            expect_dict(checkpoint[key], key, source)
    if checkpoint.get("backbone_weights") is not None:
        weights = expect_dict(checkpoint["backbone_weights"], "backbone_weights", source)
        for key, value in weights.items():
            if not isinstance(value, str):
                raise FcnlabError(
                    f"{source} has backbone_weights {key} = {shown(value)}, not text; it is "
                    "damaged."
                )
    if checkpoint.get("train_state") is not None:
        expect_dict(checkpoint["train_state"], "train_state", source)


def state_dict_is_finite(state: Mapping[str, Any]) -> bool:
    """True when no floating-point tensor in ``state`` holds a NaN or an infinity.

    Cheap enough to run before every save: one max-abs reduction per tensor (no temporary
    copies) and one host sync per device the tensors live on. Non-tensors are ignored.
    """
    norms: dict[torch.device, list[torch.Tensor]] = {}
    with torch.no_grad():
        for tensor in state.values():
            if isinstance(tensor, torch.Tensor) and tensor.numel() and _floating(tensor):
                norm = torch.linalg.vector_norm(tensor.detach(), ord=float("inf"))
                norms.setdefault(tensor.device, []).append(norm.float())
        return all(bool(torch.stack(n).isfinite().all()) for n in norms.values())


def non_finite_count(state: Mapping[str, Any]) -> int:
    """How many NaN or infinite values the floating-point tensors in ``state`` hold (one host
    sync when they share a device, as a model's state dict does)."""
    with torch.no_grad():
        counts = [
            (~torch.isfinite(t.detach())).sum()
            for t in state.values()
            if isinstance(t, torch.Tensor) and _floating(t) and t.numel()
        ]
        if not counts:
            return 0
        if len({c.device for c in counts}) == 1:
            return int(torch.stack(counts).sum())
        return sum(int(c) for c in counts)


def _values(count: int) -> str:
    return f"{count} value" if count == 1 else f"{count} values"


def _floating(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() or tensor.is_complex()


def model_from_checkpoint(checkpoint: dict[str, Any], source: str = "the checkpoint") -> Segmenter:
    """Rebuild the model a checkpoint describes and load its weights.

    The model is built on the meta device (no memory, no random init), so arguments that do
    not fit the weights fail in a sentence before anything large is allocated; only then is
    memory allocated and filled from the state dict.
    """
    check_checkpoint(checkpoint, source)
    args, state = checkpoint["model"], checkpoint["state_dict"]
    model = _build_on_meta(args, source)
    if model.num_classes != len(checkpoint["classes"]):
        raise FcnlabError(
            f"{source} lists {len(checkpoint['classes'])} classes but its model predicts "
            f"{model.num_classes}; the class list does not fit the head."
        )
    check_weights_fit(model, state, args["name"])
    model = model.to_empty(device="cpu")  # every weight and buffer is in the state dict
    model.load_state_dict(state)
    return model


def _build_on_meta(args: dict[str, Any], source: str) -> Segmenter:
    try:
        with torch.device("meta"):
            return create_model(**args)
    except FcnlabError as err:
        raise FcnlabError(f"{source} describes a model that cannot be built: {err}") from None
    except Exception as err:  # hand-made arguments can fail deep inside a constructor
        raise FcnlabError(
            f"{source} describes a model that cannot be built ({type(err).__name__}: "
            f"{shown(str(err), 80)}); it is damaged or from another fcnlab version."
        ) from None


def check_weights_fit(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise unless ``state`` has exactly ``model``'s weight names and shapes."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        example = (missing or unexpected or shapes)[0]
        raise FcnlabError(
            f"the checkpoint's weights ({source}) do not fit this model: {len(missing)} "
            f"missing, {len(unexpected)} unexpected, {len(shapes)} of another shape "
            f"(e.g. {example}); it was trained for another model or number of classes."
        )


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    check_weights_fit(model, state, source)
    model.load_state_dict(state)


def label_space(checkpoint: dict[str, Any], source: str = "the checkpoint") -> LabelSpace:
    """The checkpoint's label space (classes, palette, ignore label, normalisation)."""
    return LabelSpace.from_fields(checkpoint, source)
