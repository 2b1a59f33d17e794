"""The deep networks of the reference runs: CNN, ResNet (BasicBlock, BatchNorm), ViT (pre-LN).

:func:`build` makes one from an architecture name and a dict of its config's fields (from
the YAML files in ``reference_runs/configs``), with an initialisation scale.
"""

from __future__ import annotations

import dataclasses

from scalingfit.errors import ScalingfitError

from .cnn import CNN, CNNConfig
from .resnet import ResNet, ResNetConfig
from .vit import ViT, ViTConfig

__all__ = ["ARCHITECTURES", "build", "model_config"]

#: architecture name -> (config dataclass, model class)
ARCHITECTURES = {"cnn": (CNNConfig, CNN), "resnet": (ResNetConfig, ResNet),
                 "vit": (ViTConfig, ViT)}


def model_config(arch: str, options: dict | None = None):
    """The config dataclass of ``arch`` with ``options`` applied; unknown keys are an error."""
    if arch not in ARCHITECTURES:
        raise ScalingfitError(f"unknown architecture {arch!r}; choose one of "
                              f"{', '.join(ARCHITECTURES)}.")
    config_class = ARCHITECTURES[arch][0]
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    options = dict(options or {})
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ScalingfitError(f"unknown {arch} model option(s) {', '.join(unknown)}; valid: "
                              f"{', '.join(fields)}.")
    for key, value in options.items():  # YAML lists become the tuples the fields declare
        if isinstance(value, list):
            options[key] = tuple(value)
    return config_class(**options)


def build(arch: str, options: dict | None = None, *, in_channels: int, image_size: int,
          num_classes: int, init_scale: float = 1.0):
    """A freshly initialised model; ``init_scale`` multiplies every Conv and Linear weight
    after the default initialisation (biases, normalisation and embeddings unchanged)."""
    from torch import nn

    config = model_config(arch, options)
    model = ARCHITECTURES[arch][1](config, in_channels=in_channels, image_size=image_size,
                                   num_classes=num_classes)
    if init_scale != 1.0:
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.data.mul_(init_scale)
    return model
