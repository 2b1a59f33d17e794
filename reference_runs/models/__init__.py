"""The networks of the reference runs: CNN, ResNet (BasicBlock, BatchNorm), ViT (pre-LN), MLP.

:func:`build` makes one from an architecture name and a dict of its config's fields (from
the YAML files in ``reference_runs/configs``), with an initialisation scale.
"""

from __future__ import annotations

import dataclasses

from scalingfit.errors import ScalingfitError

from ..config import from_dict
from .cnn import CNN, CNNConfig
from .mlp import MLP, MLPConfig
from .resnet import ResNet, ResNetConfig
from .vit import ViT, ViTConfig

__all__ = ["ARCHITECTURES", "build", "model_config"]

#: architecture name -> (config dataclass, model class)
ARCHITECTURES = {"cnn": (CNNConfig, CNN), "resnet": (ResNetConfig, ResNet),
                 "vit": (ViTConfig, ViT), "mlp": (MLPConfig, MLP)}


def model_config(arch: str, options: dict | None = None):
    """The config dataclass of ``arch`` with ``options`` applied; unknown keys and values
    of the wrong type are errors (a single number where a list is expected is a list of
    one: ``--model.channels=8`` is one convolution of 8 channels)."""
    if arch not in ARCHITECTURES:
        raise ScalingfitError(f"unknown architecture {arch!r}; choose one of "
                              f"{', '.join(ARCHITECTURES)}.")
    return from_dict(ARCHITECTURES[arch][0], dict(options or {}),
                     source=f"the {arch} model options")


def build(arch: str, options: dict | None = None, *, in_channels: int, image_size: int,
          num_classes: int, init_scale: float = 1.0):
    """A freshly initialised model; ``init_scale`` multiplies every Conv and Linear weight
    after the default initialisation (biases, normalisation and embeddings unchanged)."""
    from torch import nn

    config = model_config(arch, options)
    try:
        model = ARCHITECTURES[arch][1](config, in_channels=in_channels, image_size=image_size,
                                       num_classes=num_classes)
    except ValueError as err:  # shapes that do not fit together: a setting to change
        raise ScalingfitError(f"the {arch} model options {dataclasses.asdict(config)} do not "
                              f"fit {image_size}×{image_size} inputs: {err}.") from err
    if init_scale != 1.0:
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.data.mul_(init_scale)
    return model
