"""A plain convolutional classifier: conv–ReLU blocks with max-pooling, then an MLP head.

The family of the paper's CNN (D'Amico, Bocchi & Negri): 3×3 convolutions with 'same'
padding, a 2×2 max-pool after every ``pool_every`` convolutions, no normalisation layers
(so the norm-based complexity is not blurred by rescaling symmetries of BatchNorm).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CNNConfig", "CNN"]


@dataclass
class CNNConfig:
    channels: tuple[int, ...] = (32, 64, 128)  # output channels of each convolution
    kernel_size: int = 3
    pool_every: int = 2        # a 2×2 max-pool after every this many convolutions
    hidden: tuple[int, ...] = (512,)  # widths of the MLP's hidden layers
    dropout: float = 0.0       # before each hidden layer's output Linear


class CNN(nn.Module):
    def __init__(self, config: CNNConfig, *, in_channels: int, image_size: int,
                 num_classes: int):
        super().__init__()
        layers, width = [], in_channels
        for i, out in enumerate(config.channels):
            layers += [nn.Conv2d(width, out, config.kernel_size,
                                 padding=config.kernel_size // 2), nn.ReLU()]
            if (i + 1) % config.pool_every == 0:
                layers.append(nn.MaxPool2d(2))
            width = out
        self.features = nn.Sequential(*layers)
        with torch.no_grad():  # the flattened size, whatever the pooling did
            flat = self.features(torch.zeros(1, in_channels, image_size, image_size)).numel()
        head = []
        for hidden in config.hidden:
            head += [nn.Linear(flat, hidden), nn.ReLU()]
            if config.dropout > 0:
                head.append(nn.Dropout(config.dropout))
            flat = hidden
        head.append(nn.Linear(flat, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
