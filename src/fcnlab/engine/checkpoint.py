"""Self-describing checkpoints: plain data, written atomically, loaded with weights_only.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only:

- ``fcnlab``: format version; ``model``: the ``create_model`` arguments; ``state_dict``;
- ``classes``, ``palette``, ``ignore_index``, ``normalization`` ({"mean", "std"}), ``scale``
  (the resolution the model works at, relative to the images);
- ``config``: the resolved experiment config; ``versions``; ``metrics`` (last validation);
- ``train_state`` (``last`` only): step, epoch, best mIoU, optimizer, scaler and RNG states.

Predict, export and serve read preprocessing from here, so no constant is duplicated.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from fcnlab import __version__
from fcnlab.data.classes import DatasetInfo
from fcnlab.errors import FcnlabError
from fcnlab.models import Segmenter, create_model
from fcnlab.serialization import read_torch_file

FORMAT_VERSION = 1


def make_checkpoint(
    model: Segmenter,
    info: DatasetInfo,
    normalization: dict[str, list[float]],
    config: dict[str, Any],
    scale: float = 1.0,
    metrics: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "fcnlab": FORMAT_VERSION,
        "model": dict(model.args),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": list(info.class_names),
        "palette": [list(c) for c in info.palette],
        "ignore_index": info.ignore_index,
        "dataset": info.name,
        "normalization": {k: list(v) for k, v in normalization.items()},
        "scale": scale,
        "config": config,
        "versions": {
            "fcnlab": __version__,
            "torch": str(torch.__version__),
            "torchvision": str(torchvision.__version__),
            "python": platform.python_version(),
        },
        "metrics": metrics or {},
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
    if checkpoint["fcnlab"] > FORMAT_VERSION:
        raise FcnlabError(
            f"checkpoint {path} has format {checkpoint['fcnlab']}, newer than this fcnlab "
            f"({FORMAT_VERSION}); upgrade fcnlab."
        )
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> Segmenter:
    """Rebuild the model a checkpoint describes and load its weights."""
    model = create_model(**checkpoint["model"])
    load_weights(model, checkpoint["state_dict"], checkpoint["model"].get("name", "?"))
    return model


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
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
    model.load_state_dict(state)


def dataset_info(checkpoint: dict[str, Any]) -> DatasetInfo:
    return DatasetInfo(
        name=checkpoint.get("dataset", "checkpoint"),
        class_names=tuple(checkpoint["classes"]),
        palette=tuple(tuple(c) for c in checkpoint["palette"]),
        ignore_index=checkpoint["ignore_index"],
    )
