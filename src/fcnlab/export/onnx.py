"""Export to ONNX (and TorchScript) with dynamic batch/height/width and a parity check.

The two classic traps are handled in the model itself: the FCN input padding is always
recorded while tracing (``Segmenter._pad``), and ASPP's image pooling broadcasts with
``expand`` rather than a fixed-size upsample, so one file serves every input size. The
model card (classes, palette, normalisation, scale) is stored inside the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fcnlab.card import METADATA_KEY, ModelCard
from fcnlab.errors import FcnlabError

OPSET = 17
INPUT, OUTPUT = "image", "logits"
#: Export traces at this size; parity is then checked at sizes the trace never saw.
TRACE_SIZE = (64, 64)
PARITY_SHAPES = ((2, 67, 93), (1, 129, 100))
MIN_AGREEMENT = 0.999


@dataclass(frozen=True)
class Parity:
    shape: tuple[int, int, int]  # batch, height, width
    max_abs_diff: float
    agreement: float  # fraction of pixels with the same arg-max class

    def line(self) -> str:
        n, h, w = self.shape
        return (
            f"{n}x3x{h}x{w}: max |logit diff| {self.max_abs_diff:.2e}, "
            f"pixel agreement {100 * self.agreement:.3f}%"
        )


def export_onnx_model(model: nn.Module, out: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` (eval mode) as ONNX with dynamic batch, height and width."""
    out = Path(out)
    model = model.eval()
    sample = torch.zeros(1, 3, *TRACE_SIZE)
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter, not the user's concern
        torch.onnx.export(
            model,
            (sample,),
            str(out),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: axes, OUTPUT: axes},
            opset_version=opset,
            dynamo=False,
        )
    return out


def export_torchscript_model(model: nn.Module, out: str | Path, card: ModelCard) -> Path:
    out = Path(out)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), torch.zeros(1, 3, *TRACE_SIZE))
        torch.jit.save(traced, str(out), _extra_files={f"{METADATA_KEY}.json": card.to_json()})
    return out


def load_torchscript(path: str | Path, device: str = "cpu", extra: dict | None = None):
    """``torch.jit.load`` without its deprecation notice (TorchScript still runs fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location=device, _extra_files=extra or {})


def write_card(onnx_file: str | Path, card: ModelCard) -> None:
    import onnx

    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, card.to_json()
    onnx.save(proto, str(onnx_file))


def write_metadata(onnx_file: str | Path, key: str, value: str) -> None:
    """Set one ``metadata_props`` entry of an ONNX file, keeping the others."""
    import onnx

    proto = onnx.load(str(onnx_file))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != key]
    del proto.metadata_props[:]
    for k, v in [*kept, (key, value)]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(onnx_file))


def read_metadata(onnx_file: str | Path) -> dict[str, str]:
    """All ``metadata_props`` of an ONNX file ({} for a file onnx cannot read)."""
    import onnx

    try:
        proto = onnx.load(str(onnx_file), load_external_data=False)
    except Exception:  # onnx raises DecodeError and others for foreign or damaged files
        return {}
    return {p.key: p.value for p in proto.metadata_props}


def read_card(session, source: str) -> ModelCard:
    """The model card of an ONNX Runtime session's model."""
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise FcnlabError(
            f"{source} has no fcnlab description (classes, colours, normalisation); "
            "export it with `fcnlab export`."
        )
    return ModelCard.from_json(meta[METADATA_KEY], source)


def check_parity(
    reference: nn.Module,
    candidate,
    card: ModelCard,
    shapes: tuple[tuple[int, int, int], ...] = PARITY_SHAPES,
    seed: int = 0,
) -> list[Parity]:
    """Compare ``candidate(x)`` with ``reference(x)`` on random images of ``shapes``."""
    generator = torch.Generator().manual_seed(seed)
    mean = torch.tensor(card.mean).view(1, 3, 1, 1)
    std = torch.tensor(card.std).view(1, 3, 1, 1)
    batches = [(torch.rand(n, 3, h, w, generator=generator) - mean) / std for n, h, w in shapes]
    return parity_on(reference, candidate, batches)


def parity_on(reference: nn.Module, candidate, batches: list[torch.Tensor]) -> list[Parity]:
    """One :class:`Parity` row per normalised batch: ``candidate`` against ``reference``."""
    rows = []
    for x in batches:
        n, _, h, w = x.shape
        with torch.inference_mode():
            want = reference.eval()(x).float()
        got = candidate(x).float()
        if got.shape != want.shape:
            raise FcnlabError(
                f"the exported model gives shape {tuple(got.shape)} for a {n}x3x{h}x{w} input, "
                f"PyTorch gives {tuple(want.shape)}."
            )
        agreement = (got.argmax(1) == want.argmax(1)).float().mean().item()
        rows.append(Parity((n, h, w), (got - want).abs().max().item(), agreement))
    return rows


def assert_parity(rows: list[Parity], out: Path, min_agreement: float = MIN_AGREEMENT) -> None:
    worst = min(rows, key=lambda r: r.agreement)
    if worst.agreement < min_agreement:
        raise FcnlabError(
            f"parity check failed for {out}: {worst.line()}, below the "
            f"{100 * min_agreement:.1f}% required; the exported model is not trustworthy."
        )
