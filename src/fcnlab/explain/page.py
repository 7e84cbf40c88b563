"""Writing an explanation to a folder: its figures, masks, numbers and one HTML page.

``DIR/index.html`` (self-contained, images by relative path), one PNG per figure
(:mod:`fcnlab.explain.figures`), ``mask.png`` (the prediction as an indexed PNG, as
``fcnlab predict`` writes masks), for FCN ``fused_<stage>.png`` (the prediction after each
stage), and ``explain.json`` (the numbers of the page's tables).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fcnlab.engine.report_render import Block, Heading, Images, Table, Text, render_html
from fcnlab.errors import FcnlabError
from fcnlab.explain.figures import Rendered, render
from fcnlab.explain.result import Explanation
from fcnlab.infer.files import mask_image


def summary(result: Explanation) -> dict[str, Any]:
    """The numbers behind the page's tables, as plain JSON-ready data."""
    h, w = result.mask.shape
    info: dict[str, Any] = {"model": result.model, "family": result.family, "size": [w, h]}
    if result.fcn is not None:
        final, previous, stages = result.mask, None, []
        for stage in result.fcn.stages:
            changed = None if previous is None else float((stage.fused_mask != previous).mean())
            stages.append(
                {
                    "stage": stage.name,
                    "label": stage.label,
                    "stride": stage.stride,
                    "changed": changed,
                    "agrees_with_final": float((stage.fused_mask == final).mean()),
                }
            )
            previous = stage.fused_mask
        kernels = [
            {
                "layer": k.layer,
                "factor": k.factor,
                "deviation": k.deviation,
                "cross_class": k.cross_class,
                "frozen": k.frozen,
            }
            for k in result.fcn.kernels
        ]
        info["fcn"] = {
            "upsample": result.fcn.upsample,
            "residual": result.fcn.residual,
            "stages": stages,
            "kernels": kernels,
        }
    if result.deeplab is not None:
        d = result.deeplab
        info["deeplab"] = {
            "stride": d.stride,
            "residual": d.residual,
            "branches": {b.name: float(b.share.mean()) for b in d.branches},
        }
        if d.decoder is not None and d.low_level_input_share is not None:
            info["deeplab"]["decoder"] = {b.name: float(b.share.mean()) for b in d.decoder}
            info["deeplab"]["low_level_input_share"] = float(d.low_level_input_share.mean())
    if result.segnet is not None:
        info["segnet"] = [
            {
                "stage": s.name,
                "stride": s.stride,
                "density": s.density,
                "unpooled_energy": float(s.unpooled_energy.mean()),
                "output_energy": float(s.output_energy.mean()),
            }
            for s in result.segnet.stages
        ]
    return info


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _blocks(result: Explanation, info: dict[str, Any], figures: list[Rendered]) -> list[Block]:
    by_name = {f.name: f for f in figures}
    w, h = info["size"]
    blocks: list[Block] = [
        Text(f"Model {result.model} ({result.family}) on a {w} x {h} image ({_source(result)})."),
    ]

    def show(name: str, *between: Block) -> None:
        if name in by_name:
            figure = by_name[name]
            blocks.extend([Heading(figure.title), *between])
            blocks.append(Images([f"{name}.png"], figure.caption))

    show("prediction")
    if "fcn" in info:
        fcn = info["fcn"]
        blocks.append(Heading("How FCN refines its prediction"))
        blocks.append(
            Text(
                "The /32 path scores the deepest feature; each skip adds its own scores at a "
                "finer stride. Everything after the score convolutions is linear (transposed "
                "convolutions without bias, or bilinear interpolation, then the crop), so each "
                "stage's scores pushed through the layers after it are its exact share of the "
                f"logits: they add up to them (largest difference {fcn['residual']:.2g})."
            )
        )
        rows = [
            [s["label"], str(s["stride"]), _pct(s["changed"]), _pct(s["agrees_with_final"])]
            for s in fcn["stages"]
        ]
        header = ["stage", "stride", "pixels it changed", "agrees with the final prediction"]
        blocks.append(Table(header, rows, "lrrr"))
        show("fcn_stages")
        show("fcn_class_scores")
        if fcn["kernels"]:
            rows = [
                [k["layer"], f"x{k['factor']}", _pct(k["deviation"]), _pct(k["cross_class"]),
                 "yes" if k["frozen"] else "no"]
                for k in fcn["kernels"]
            ]  # fmt: skip
            header = ["layer", "factor", "changed from bilinear", "mixes classes", "frozen"]
            show("fcn_kernels", Table(header, rows, "lrrrl"))
        else:
            blocks.append(Text("This model upsamples by bilinear interpolation: no kernels."))
    if "deeplab" in info:
        d = info["deeplab"]
        blocks.append(Heading("What each ASPP branch adds"))
        blocks.append(
            Text(
                "ASPP's projection is a 1x1 convolution over the concatenated branches, so it is "
                "the sum of one 1x1 convolution per branch; each branch's part of its output "
                f"(before BN) is exact, and they add up to it (largest difference "
                f"{d['residual']:.2g})."
            )
        )
        rows = [[name, _pct(share)] for name, share in d["branches"].items()]
        blocks.append(Table(["branch", "mean share"], rows, "lr"))
        show("aspp_branches")
        show("aspp_summary")
        if "decoder" in d:
            rows = [[name, _pct(share)] for name, share in d["decoder"].items()]
            rows.append(["low-level share of the decoder input energy",
                         _pct(d["low_level_input_share"])])  # fmt: skip
            blocks.append(Table(["decoder input", "mean share"], rows, "lr"))
            show("decoder_low_level")
    if "segnet" in info:
        rows = [
            [s["stage"], f"/{s['stride']}", _pct(s["density"]), f"{s['unpooled_energy']:.3g}",
             f"{s['output_energy']:.3g}"]
            for s in info["segnet"]
        ]  # fmt: skip
        header = ["unpools", "to stride", "non-zero after unpooling", "energy in", "energy out"]
        blocks.append(Heading("SegNet's decoder"))
        blocks.append(Table(header, rows, "lrrrr"))
        show("segnet_decoder")
    return blocks


def _source(result: Explanation) -> str:
    h, w = result.source_size
    if (h, w) == result.mask.shape:
        return "its own size"
    return f"the image is {w} x {h}; explained at the model's working size"


def write_explanation(
    result: Explanation, out: str | Path, figures: list[Rendered] | None = None
) -> list[Path]:
    """Write ``result`` into the folder ``out`` (made if needed); the files, the page first."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FcnlabError(
            f"cannot write to {out} ({error.strerror}); choose another --out."
        ) from None
    figures = render(result) if figures is None else figures
    info = summary(result)
    written = [out / "index.html"]
    try:
        for figure in figures:
            written.append(out / f"{figure.name}.png")
            written[-1].write_bytes(figure.png)
        written.append(out / "mask.png")
        mask_image(result.mask, result.palette).save(written[-1])
        if result.fcn is not None:
            for stage in result.fcn.stages:
                written.append(out / f"fused_{stage.name}.png")
                mask_image(stage.fused_mask, result.palette).save(written[-1])
        written.append(out / "explain.json")
        written[-1].write_text(json.dumps(info, indent=2))
        page = render_html(
            f"How {result.model} reached its prediction", _blocks(result, info, figures)
        )
        written[0].write_text(page, encoding="utf-8")
    except OSError as error:
        raise FcnlabError(
            f"cannot write to {out} ({error.strerror}); choose another --out."
        ) from None
    result.files, result.page = written, written[0]
    return written
