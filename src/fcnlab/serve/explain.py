"""The demo's explain view: ``POST /explain`` answers the explain figures of one upload.

Explaining needs the model's own layers, so it works when the demo serves an fcnlab
checkpoint (``.pt``): the checkpoint is loaded a second time, in eager PyTorch, on the first
request (the predictor may run a converted copy: bf16, folded BN, ONNX). For an exported
model the route answers 501 with a sentence. Images are shrunk to :data:`EXPLAIN_MAX_SIDE`
first (the figures do not need more, and the decomposition holds several maps per class at
that size); figures are rendered in memory and sent as data URLs, never written to disk.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from PIL import Image

from fcnlab.explain import Explainer

#: Longest side of the image explained by the demo (larger uploads are shrunk to it).
EXPLAIN_MAX_SIDE = 512
_EXPORTED = (".onnx", ".ts")


class ExplainView:
    """Explains uploads for the model file ``source``; the caller serialises the calls."""

    def __init__(self, source: str | Path) -> None:
        self.source = Path(source)
        self._explainer: Explainer | None = None

    @property
    def available(self) -> bool:
        return self.source.suffix.lower() not in _EXPORTED and self.source.is_file()

    def unavailable(self) -> str:
        if self.source.suffix.lower() in _EXPORTED:
            return (
                f"this demo serves an exported model ({self.source.name}); explain needs the "
                "fcnlab checkpoint (.pt) it was exported from, so serve that to explain."
            )
        return "this demo was not started from a checkpoint file, so it cannot explain."

    def __call__(self, image: Image.Image) -> dict[str, Any]:
        """``{"model", "family", "width", "height", "explained_width", "explained_height",
        "figures": [{"name", "title", "caption", "image"}], "summary"}``."""
        if not self.available:
            raise HTTPException(501, self.unavailable())
        from fcnlab.explain.figures import render  # matplotlib: only once someone explains
        from fcnlab.explain.page import summary

        if self._explainer is None:
            self._explainer = Explainer.load(self.source)
        result = self._explainer.explain(image, EXPLAIN_MAX_SIDE)
        height, width = result.mask.shape
        return {
            "model": result.model,
            "family": result.family,
            "width": image.width,
            "height": image.height,
            "explained_width": width,
            "explained_height": height,
            "figures": [
                {
                    "name": figure.name,
                    "title": figure.title,
                    "caption": figure.caption,
                    "image": "data:image/png;base64," + base64.b64encode(figure.png).decode(),
                }
                for figure in render(result)
            ],
            "summary": summary(result),
        }
