"""A dataflow diagram of a segmenter: backbone stages, head blocks and the ops that join them.

One forward pass on the meta device is traced: the backbone and each block of the head are
nodes (recorded by module hooks), tensor ops between them (pad, add, cat, interpolate) are
nodes too (recorded by a TorchFunctionMode), and an edge joins the node that produced a tensor
to each node that consumes it. The graph is written as Graphviz DOT or Mermaid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from fcnlab.errors import FcnlabError

# Ops that only reshape or index: they pass their input's producer through.
_PASS_THROUGH = {"__getitem__", "view", "reshape", "expand", "contiguous", "flatten", "to"}


@dataclass
class Graph:
    nodes: list[str] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)

    def add(self, label: str, inputs: list[int]) -> int:
        self.nodes.append(label)
        index = len(self.nodes) - 1
        self.edges += [(i, index) for i in dict.fromkeys(inputs)]
        return index


class _Tracer(TorchFunctionMode):
    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph, self.producer, self.keep, self.inside = graph, {}, [], 0
        self.current = -1  # the block node being traced (set when a block starts)

    def sources(self, values) -> list[int]:
        return [self.producer[id(t)] for t in _tensors(values) if id(t) in self.producer]

    def mark(self, values, node: int) -> None:
        for t in _tensors(values):
            self.producer[id(t)] = node
            self.keep.append(t)  # keep ids unique while the trace runs

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.inside or not _tensors(out):
            return out
        name = getattr(func, "__name__", str(func)).strip("_") or "op"
        inputs = self.sources((args, kwargs or {}))
        if getattr(func, "__name__", "") in _PASS_THROUGH or not inputs:
            if inputs:
                self.mark(out, inputs[0])
            return out
        self.mark(out, self.graph.add(name, inputs))
        return out


def trace_graph(model: nn.Module, size: tuple[int, int]) -> Graph:
    graph = Graph()
    tracer = _Tracer(graph)
    handles = [
        m.register_forward_pre_hook(_enter(tracer, n, m), with_kwargs=True)
        for n, m in _blocks(model)
    ]
    handles += [m.register_forward_hook(_leave(tracer, n)) for n, m in _blocks(model)]
    x = torch.empty(1, 3, *size, device=next(model.parameters()).device)
    tracer.mark(x, graph.add(f"input 1x3x{size[0]}x{size[1]}", []))
    try:
        with torch.no_grad(), tracer:
            out = model(x)
        tracer.mark(out, graph.add("output " + "x".join(map(str, out.shape)), tracer.sources(out)))
    finally:
        for handle in handles:
            handle.remove()
    return graph


def _blocks(model: nn.Module):
    """Backbone and aux as single nodes; the head's direct children (or their members)."""
    containers = (nn.ModuleDict, nn.ModuleList)
    for name, module in model.named_modules():
        parent = name.rpartition(".")[0]
        in_head_container = (
            parent.count(".") == 1
            and parent.startswith("head.")
            and isinstance(model.get_submodule(parent), containers)
        )
        direct_head_block = parent == "head" and not isinstance(module, containers)
        if name in ("backbone", "aux") or direct_head_block or in_head_container:
            yield name, module


def _enter(tracer: _Tracer, name: str, module: nn.Module):
    def hook(mod, args, kwargs):
        if tracer.inside == 0:
            tracer.current = tracer.graph.add(
                f"{name} ({type(module).__name__})", tracer.sources((args, kwargs))
            )
        tracer.inside += 1

    return hook


def _leave(tracer: _Tracer, name: str):
    def hook(mod, args, out):
        tracer.inside -= 1
        if tracer.inside:
            return
        node = tracer.current
        if isinstance(out, dict):  # backbone: one node per returned stage
            for key, value in out.items():
                shape = "x".join(map(str, value.shape[1:]))
                tracer.mark(value, tracer.graph.add(f"{name}.{key} {shape}", [node]))
        else:
            tracer.mark(out, node)

    return hook


def _tensors(values) -> list[torch.Tensor]:
    if isinstance(values, torch.Tensor):
        return [values]
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, tuple | list):
        return [t for v in values for t in _tensors(v)]
    return []


def write_diagram(graph: Graph, path: Path) -> Path:
    """Write ``.dot`` (Graphviz) or ``.mmd``/``.md`` (Mermaid, fenced for Markdown)."""
    suffix = path.suffix.lower()
    if suffix == ".dot":
        lines = ["digraph model {", "  rankdir=TB; node [shape=box, fontname=Helvetica];"]
        lines += [f'  n{i} [label="{label}"];' for i, label in enumerate(graph.nodes)]
        lines += [f"  n{a} -> n{b};" for a, b in graph.edges] + ["}"]
    elif suffix in (".mmd", ".md"):
        lines = ["flowchart TD"]
        lines += [f'  n{i}["{label}"]' for i, label in enumerate(graph.nodes)]
        lines += [f"  n{a} --> n{b}" for a, b in graph.edges]
        if suffix == ".md":
            lines = ["```mermaid", *lines, "```"]
    else:
        raise FcnlabError(f"cannot write a diagram as {path.name}: use .dot, .mmd or .md.")
    try:
        path.write_text("\n".join(lines) + "\n")
    except OSError as err:
        raise FcnlabError(f"cannot write {path}: {err.strerror}.") from err
    return path
