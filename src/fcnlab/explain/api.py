"""Loading a checkpoint for explaining, and :func:`explain`, the one call that does it all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fcnlab.card import ModelCard
from fcnlab.errors import FcnlabError
from fcnlab.explain.deeplab import explain_deeplab
from fcnlab.explain.fcn import explain_fcn
from fcnlab.explain.result import Explanation
from fcnlab.explain.segnet import explain_segnet
from fcnlab.masks import predicted_classes
from fcnlab.models import Segmenter
from fcnlab.models.heads.deeplab import DeepLabV3Head, DeepLabV3PlusHead
from fcnlab.models.heads.fcn import FCNHead
from fcnlab.models.heads.segnet import SegNetDecoder
from fcnlab.preprocess import calibration_batch

#: Longest image side explained by default; larger images are shrunk to it first.
DEFAULT_MAX_SIDE = 1024
_EXPORTED = (".onnx", ".ts")


def family_of(model: Segmenter, name: str = "this model") -> str:
    """``fcn``, ``deeplab`` or ``segnet``; any other model is refused in one sentence."""
    head = getattr(model, "head", None)
    if isinstance(head, FCNHead):
        return "fcn"
    if isinstance(head, DeepLabV3Head | DeepLabV3PlusHead):
        return "deeplab"
    if isinstance(head, SegNetDecoder):
        return "segnet"
    kind = type(head).__name__ if head is not None else type(model).__name__
    raise FcnlabError(
        f"explain opens FCN, DeepLabv3/v3+ and SegNet models; {name} has a {kind} head, "
        "which it cannot take apart."
    )


class Explainer:
    """One model, ready to explain images; not thread-safe (the demo holds a lock)."""

    def __init__(self, model: Segmenter, card: ModelCard) -> None:
        self.family = family_of(model, card.name)
        self.model, self.card = model.eval(), card

    @classmethod
    def load(cls, checkpoint: str | Path) -> Explainer:
        """Load an fcnlab checkpoint (``.pt``); exported models have no layers to open."""
        from fcnlab.engine.checkpoint import load_checkpoint, model_from_checkpoint

        path = Path(checkpoint)
        if path.suffix.lower() in _EXPORTED:
            raise FcnlabError(
                f"explain needs an fcnlab checkpoint (.pt); {path.name} is an exported model "
                "whose layers cannot be opened, so explain the checkpoint it was exported from."
            )
        data = load_checkpoint(path)
        source = f"checkpoint {path}"
        return cls(model_from_checkpoint(data, source), ModelCard.from_checkpoint(data, source))

    def explain(self, image: Image.Image, max_side: int | None = DEFAULT_MAX_SIDE) -> Explanation:
        """Explain the prediction on ``image`` (shrunk first so that its longest side is at
        most ``max_side``; None: any size)."""
        if max_side is not None and max_side < 1:
            raise FcnlabError(
                f"max_side must be at least 1 (or None for any size), not {max_side}."
            )
        source_size = (image.height, image.width)
        image = _shrunk(image.convert("RGB"), max_side)
        x = calibration_batch(self.card, image)
        h, w = x.shape[-2:]
        if (image.height, image.width) != (h, w):
            image = image.resize((w, h), Image.Resampling.BILINEAR)
        with torch.inference_mode():
            logits = self.model(x)
            result = Explanation(
                model=self.card.name,
                family=self.family,
                classes=tuple(self.card.classes),
                palette=tuple(tuple(c) for c in self.card.palette),
                image=np.asarray(image, dtype=np.uint8).copy(),
                logits=logits[0].float().numpy(),
                mask=predicted_classes(logits)[0].numpy(),
                source_size=source_size,
            )
            if self.family == "fcn":
                result.fcn = explain_fcn(self.model, x, logits)
            elif self.family == "deeplab":
                result.deeplab = explain_deeplab(self.model, x)
            else:
                result.segnet = explain_segnet(self.model, x)
        return result


def _shrunk(image: Image.Image, max_side: int | None) -> Image.Image:
    longest = max(image.width, image.height)
    if max_side is None or longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def explain(
    checkpoint: str | Path,
    image: str | Path | Image.Image,
    out: str | Path | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> Explanation:
    """How the model of ``checkpoint`` reaches its prediction on ``image``.

    FCN: each stage's class scores (the /32 path, then each skip), which add up exactly to
    the logits, the prediction after each fusion, and the learned transposed-convolution
    kernels next to their bilinear start. DeepLab: each ASPP branch's exact contribution to
    the projection, and in v3+ the low-level feature's share of the decoder. SegNet: the
    feature energy of each unpooling stage.

    Args:
        checkpoint: an fcnlab checkpoint (``.pt``) of an FCN, DeepLab or SegNet model.
        image: an image file or a PIL image.
        out: a folder to write the figures (PNG), masks, ``explain.json`` and ``index.html``
            into; None writes nothing.
        max_side: images with a longer side are shrunk to it first (None: any size).

    Returns:
        An :class:`~fcnlab.explain.result.Explanation` with the arrays, and the paths
        written in ``files`` and ``page``.
    """
    from fcnlab.data.decode import read_image

    explainer = Explainer.load(checkpoint)
    picture = image if isinstance(image, Image.Image) else read_image(image)
    result = explainer.explain(picture, max_side)
    if out is not None:
        from fcnlab.explain.page import write_explanation  # matplotlib: only when writing

        write_explanation(result, out)
    return result
