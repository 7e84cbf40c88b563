"""The model options: one typed schema for the arguments that shape a network.

:class:`ModelOptions` is used three times with no second copy of a name, type or default:
the experiment config's ``model`` section extends it (``fcnlab.config.ModelConfig``),
``create_model`` builds from it, and a checkpoint's ``model`` entry is its fields plus the model
name and class count (:meth:`ModelOptions.to_args` / :meth:`ModelOptions.from_args`).

Which options a model reads is declared by its registry entries (``ArchEntry.options``,
``BackboneEntry.options``); setting one that the model does not read is refused.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fcnlab.errors import FcnlabError
from fcnlab.schema import PositiveInt, Range, Section, field_names


@dataclass
class ModelOptions(Section):
    """Arguments that shape the network (not its weights)."""

    _what: typing.ClassVar[str] = "model option"
    #: Stride of the deepest feature: FCN defaults to 32 (the paper), DeepLab to 16; smaller
    #: strides dilate the backbone where it allows. SegNet runs at its encoder's own stride.
    output_stride: Literal[8, 16, 32] | None = None
    #: Channels of fc6/fc7 for FCN on VGG/AlexNet (4096 in the paper).
    fc_width: PositiveInt = 4096
    #: FCN upsampling: transposed convolution (bilinear-initialised) or fixed bilinear.
    upsample: Literal["transposed", "bilinear"] = "transposed"
    #: Keep FCN's last upsampling fixed at bilinear.
    freeze_final_upsample: bool = False
    #: An auxiliary head on the /16 feature (training loss only).
    aux: bool = False
    #: MobileNetV2 width multiplier (ImageNet weights exist for 1.0 only).
    width_mult: Annotated[float, Range(0, 4, open_low=True)] = 1.0

    @classmethod
    def names(cls) -> list[str]:
        return field_names(ModelOptions)

    @classmethod
    def pick(cls, source: Any) -> ModelOptions:
        """The options held by ``source`` (a config section or any object with the fields)."""
        return cls(**{name: getattr(source, name) for name in cls.names()})

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> ModelOptions:
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise FcnlabError(
                f"unknown model option(s) {', '.join(unknown)}; valid ones are "
                f"{', '.join(cls.names())}."
            )
        return cls(**kwargs)

    def changed(self) -> list[str]:
        """The options set to something other than their default."""
        default = ModelOptions()
        return [n for n in self.names() if getattr(self, n) != getattr(default, n)]

    def to_args(self, name: str, num_classes: int, output_stride: int) -> dict[str, Any]:
        """The checkpoint's ``model`` entry: rebuilds the model with ``create_model(**args)``."""
        options = {n: getattr(self, n) for n in self.names()}
        return {"name": name, "num_classes": num_classes, **options, "output_stride": output_stride}

    @classmethod
    def arg_names(cls) -> tuple[str, ...]:
        """Every key a checkpoint's ``model`` entry may hold."""
        return ("name", "num_classes", *cls.names())
