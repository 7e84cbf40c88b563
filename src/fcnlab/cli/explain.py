"""``fcnlab explain``: figures that show how a trained model reached its prediction.

    fcnlab explain runs/quickstart/best.pt street.png --out explain

The work is :func:`fcnlab.explain.explain`; this command parses, calls it and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fcnlab.cli.base import console
from fcnlab.errors import FcnlabError
from fcnlab.explain.api import DEFAULT_MAX_SIDE


def explain_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="An fcnlab checkpoint (.pt) of an FCN, DeepLab or SegNet model.")
    ],
    image: Annotated[Path, typer.Argument(help="The image to explain.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder: PNGs, masks and index.html.")
    ] = Path("explain"),
    max_side: Annotated[
        int,
        typer.Option(help="Shrink images whose longest side is longer than this (0: any size)."),
    ] = DEFAULT_MAX_SIDE,
) -> None:
    """Show how the model reached its prediction: FCN stages and kernels, ASPP branches, ..."""
    from fcnlab.explain import explain

    if max_side < 0:
        raise FcnlabError(f"--max-side must be at least 0 (0: any size), not {max_side}.")
    result = explain(checkpoint, image, out, max_side or None)
    h, w = result.mask.shape
    lines = [f"{result.model} on {image.name} ({w} x {h})"]
    if result.fcn is not None:
        lines.append(
            f"{len(result.fcn.stages)} FCN stages add up to the logits "
            f"(largest difference {result.fcn.residual:.2g})"
        )
    if result.deeplab is not None:
        lines.append(
            f"{len(result.deeplab.branches)} ASPP branches add up to the projection "
            f"(largest difference {result.deeplab.residual:.2g})"
        )
    if result.segnet is not None:
        lines.append(f"{len(result.segnet.stages)} SegNet decoder stages")
    lines.append(f"{len(result.files)} files in {out}; open {result.page}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
