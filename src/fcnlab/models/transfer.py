"""Initialising one model from another: staged FCN training (32s -> 16s -> 8s) and fine-tuning.

``init_from`` copies every parameter and buffer whose name and shape match, and reports what
was copied, what the model has that the source lacks (new), what differs in shape (skipped)
and what the source has that the model does not use (unused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.serialization import read_torch_file


@dataclass
class InitReport:
    copied: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name (source AxB, model CxD)"
    unused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"copied {len(self.copied)} tensors, {len(self.new)} new, "
            f"{len(self.skipped)} skipped (shape), {len(self.unused)} unused"
        ]
        for title, names in (("new", self.new), ("skipped", self.skipped), ("unused", self.unused)):
            lines += [f"  {title}: {n}" for n in names]
        return "\n".join(lines)


def init_from(
    model: nn.Module,
    source: Mapping[str, torch.Tensor] | nn.Module | str | Path,
    verbose: bool = False,
) -> InitReport:
    """Copy every matching tensor from ``source`` (state dict, model, checkpoint or file)."""
    state = _source_state(source)
    target = model.state_dict()
    report = InitReport()
    matched = {}
    for name, tensor in target.items():
        if name not in state:
            report.new.append(name)
        elif state[name].shape != tensor.shape:
            report.skipped.append(f"{name} (source {_shape(state[name])}, model {_shape(tensor)})")
        else:
            matched[name] = state[name]
            report.copied.append(name)
    report.unused = sorted(set(state) - set(target))
    if not matched:
        raise FcnlabError("init_from found no tensor that matches the model by name and shape.")
    model.load_state_dict(matched, strict=False)
    if verbose:
        print(report)
    return report


def _source_state(source) -> dict[str, torch.Tensor]:
    if isinstance(source, nn.Module):
        return source.state_dict()
    if isinstance(source, str | Path):
        source = read_torch_file(Path(source), "init_from source")
    if isinstance(source, Mapping) and isinstance(source.get("state_dict"), Mapping):
        source = source["state_dict"]  # an fcnlab checkpoint
    if not isinstance(source, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in source.values()
    ):
        raise FcnlabError("init_from needs a state dict, a model, or an fcnlab checkpoint.")
    return dict(source)


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape))
