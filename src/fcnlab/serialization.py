"""Reading files written by ``torch.save``, safely and with one clear error sentence.

Everything fcnlab reads (backbone weights, state dicts, checkpoints) goes through
``read_torch_file``: ``weights_only=True`` (no pickled code runs), tensors on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fcnlab.errors import FcnlabError


def read_torch_file(path: Path, what: str) -> Any:
    """Load ``path``; ``what`` names the file's role in the error ("weights file", ...)."""
    if not path.is_file():
        raise FcnlabError(f"{what} {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise FcnlabError(
            f"could not read {what} {path}: it is truncated or not a PyTorch file "
            f"({type(err).__name__})."
        ) from err
