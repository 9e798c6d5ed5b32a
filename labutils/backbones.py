"""The pretrained backbones Task 4 can use: how to build each, its input convention and fine-tuning depths.

A constructor and a ``preprocess_input`` are named as ``"module:attribute"`` paths and imported
when a backbone is first built, so only the backbones a run uses are loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["BACKBONES", "FINE_TUNE_DEPTHS", "BackboneSpec", "check_transfer_parameters", "resolve_weights"]

#: How deep fine-tuning reaches into a transfer backbone: its top block only, about its top half, or all of it.
FINE_TUNE_DEPTHS: tuple[str, ...] = ("top", "half", "all")


@dataclass(frozen=True)
class BackboneSpec:
    """How to build and fine-tune one pretrained network.

    ``constructor`` and ``preprocess`` are ``"module:attribute"`` paths: a function called like the
    ``keras.applications`` constructors (``include_top``, ``weights``, ``input_shape``, ``pooling``)
    and the ``preprocess_input`` it expects. ``packaged`` backbones take their ImageNet weights from
    an installed package (no download); the others download them through Keras. ``inner_features``
    names inner layers whose outputs, flattened, the head reads beside the pooled top features:
    mid-level feature maps that keep where in the image each pattern is (a hand sign is a shape),
    which the global pooling of the top features throws away.
    """

    name: str
    constructor: str
    preprocess: str
    min_size: int  # smallest input side the network accepts
    fine_tune_from: dict[str, str]  # FINE_TUNE_DEPTHS -> first layer made trainable
    preprocessing: str  # what preprocess_input does, for the narration
    packaged: bool = False
    inner_features: tuple[str, ...] = ()

    def application(self):
        module, attribute = self.constructor.split(":")
        return getattr(importlib.import_module(module), attribute)

    def preprocess_input(self, images):
        module, attribute = self.preprocess.split(":")
        return getattr(importlib.import_module(module), attribute)(images)

    def weights_source(self) -> str:
        """Where ``weights="imagenet"`` comes from, in words."""
        if self.packaged:
            from .pretrained.efficientnet_lite import packaged_weights_source

            return packaged_weights_source()
        return "keras.applications download"


def _keras_spec(
    name: str, constructor: str, module: str, top: str, half: str, first: str, preprocessing: str
) -> BackboneSpec:
    return BackboneSpec(
        name,
        f"keras.applications:{constructor}",
        f"keras.applications.{module}:preprocess_input",
        32,
        {"top": top, "half": half, "all": first},
        preprocessing,
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "efficientnet_lite0",
            "labutils.pretrained.efficientnet_lite:efficientnet_lite0",
            "labutils.pretrained.efficientnet_lite:preprocess_input",
            32,
            {"top": "block7a_expand_conv", "half": "block5a_expand_conv", "all": "stem_conv"},
            "(x - 127) / 128 on 0-255 RGB",
            packaged=True,
            inner_features=("block5c_add",),
        ),
        _keras_spec(
            "vgg16",
            "VGG16",
            "vgg16",
            "block5_conv1",
            "block4_conv1",
            "block1_conv1",
            "RGB to BGR, ImageNet channel means subtracted (0-255 scale)",
        ),
        _keras_spec(
            "mobilenet_v2",
            "MobileNetV2",
            "mobilenet_v2",
            "block_16_expand",
            "block_8_expand",
            "Conv1",
            "scaled to [-1, 1]",
        ),
        _keras_spec(
            "efficientnet_b0",
            "EfficientNetB0",
            "efficientnet",
            "block7a_expand_conv",
            "block5a_expand_conv",
            "stem_conv",
            "none outside the model: 0-255 values, the network rescales and normalises itself",
        ),
        _keras_spec(
            "resnet50",
            "ResNet50",
            "resnet50",
            "conv5_block3_1_conv",
            "conv4_block1_1_conv",
            "conv1_conv",
            "RGB to BGR, ImageNet channel means subtracted (0-255 scale)",
        ),
    )
}


def _spec(backbone: str) -> BackboneSpec:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
    return BACKBONES[backbone]


def check_transfer_parameters(
    backbones: list[str], image_sizes: dict[str, int], fine_tune_backbones: list[str], fine_tune_depth: str
) -> None:
    """Check notebook 04's backbone parameters together, naming the parameter at fault."""
    if not backbones:
        raise ValueError("BACKBONES is empty: name at least one of " + ", ".join(sorted(BACKBONES)))
    for backbone in backbones:
        if backbone not in BACKBONES:
            raise ValueError(f"BACKBONES: unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
        if backbone not in image_sizes:
            raise ValueError(f"IMAGE_SIZES has no size for {backbone!r} (a backbone of BACKBONES)")
        size = image_sizes[backbone]
        if not isinstance(size, int) or isinstance(size, bool) or size < BACKBONES[backbone].min_size:
            raise ValueError(
                f"IMAGE_SIZES[{backbone!r}] must be an integer >= {BACKBONES[backbone].min_size}, got {size!r}"
            )
    for backbone in fine_tune_backbones:
        if backbone not in backbones:
            raise ValueError(f"FINE_TUNE_BACKBONES: {backbone!r} is not one of BACKBONES {list(backbones)}")
    if fine_tune_depth not in FINE_TUNE_DEPTHS:
        raise ValueError(f"FINE_TUNE_DEPTH must be one of {FINE_TUNE_DEPTHS}, got {fine_tune_depth!r}")


def resolve_weights(weights, backbone: str) -> str | None:
    """The ``weights`` argument for one backbone: ``"imagenet"``, ``None``, or a file path in which
    ``{backbone}`` is replaced by the backbone's name (one parameter serves several backbones).

    ``weights`` may also be a dict from backbone name to one of those; a backbone it does not
    name gets ``"imagenet"``.
    """
    _spec(backbone)
    if isinstance(weights, dict):
        unknown = sorted(set(weights) - set(BACKBONES))
        if unknown:
            raise ValueError(f"WEIGHTS names unknown backbones {unknown}; choose from {sorted(BACKBONES)}")
        weights = weights.get(backbone, "imagenet")
    if weights is None or weights == "imagenet":
        return weights
    if not isinstance(weights, str) or not weights.strip():
        raise ValueError(f"WEIGHTS must be 'imagenet', None or a weights file path, got {weights!r}")
    if weights.lower() in {"none", "null", "random"}:
        return None
    return weights.replace("{backbone}", backbone)
