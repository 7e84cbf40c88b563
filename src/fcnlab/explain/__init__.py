"""``fcnlab explain``: figures that show how a trained model reached its prediction.

    import fcnlab

    result = fcnlab.explain("runs/quickstart/best.pt", "street.png", out="explain/")
    result.fcn.stages[0].contribution   # C x H x W: what the /32 path adds to the logits
    result.page                         # explain/index.html

- FCN (:mod:`fcnlab.explain.fcn`): each stage's class scores before fusion (the /32 path,
  then each skip: pool4, pool3, ...), pushed through the upsampling after it, which add up
  exactly to the logits; the prediction after each fusion; the learned transposed-convolution
  kernels next to their bilinear initialisation.
- DeepLab (:mod:`fcnlab.explain.deeplab`): each ASPP branch's exact contribution to the
  projection before its BN; v3+: the low-level feature's part of the decoder.
- SegNet (:mod:`fcnlab.explain.segnet`): the feature energy of each unpooling stage.

:func:`explain` loads a checkpoint, explains one image and (with ``out``) writes PNGs, masks,
``explain.json`` and ``index.html`` (:mod:`fcnlab.explain.page`); :class:`Explainer` keeps a
loaded model for many images (the web demo's explain view). The model code is not changed:
the decompositions run the model's own layers. This package can be called as the function:
``fcnlab.explain(...)`` is :func:`explain`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from fcnlab.explain.api import DEFAULT_MAX_SIDE, Explainer, explain, family_of
from fcnlab.explain.result import (
    BranchMap,
    DecoderStage,
    DeepLabExplanation,
    Explanation,
    FCNExplanation,
    KernelView,
    SegNetExplanation,
    StageMap,
)

__all__ = [
    "DEFAULT_MAX_SIDE",
    "BranchMap",
    "DecoderStage",
    "DeepLabExplanation",
    "Explainer",
    "Explanation",
    "FCNExplanation",
    "KernelView",
    "SegNetExplanation",
    "StageMap",
    "explain",
    "family_of",
]


class _CallablePackage(types.ModuleType):
    """``fcnlab.explain`` is both this package and the function: the import system binds the
    package to ``fcnlab.explain``, so the package forwards calls to :func:`explain`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Explanation:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
