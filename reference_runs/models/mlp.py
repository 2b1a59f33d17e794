"""A fully connected classifier: the input flattened, Linear–ReLU hidden layers, a Linear head.

No normalisation layers, like the CNN, so the norm-based complexity is not blurred by
rescaling symmetries. For the paper's norm convention it is measured as a CNN is (every
Linear layer), which is what the published code's formula does for a plain feedforward net.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["MLPConfig", "MLP"]


@dataclass
class MLPConfig:
    hidden: tuple[int, ...] = (256, 256)  # widths of the hidden layers
    dropout: float = 0.0                  # after each hidden layer's ReLU


class MLP(nn.Module):
    def __init__(self, config: MLPConfig, *, in_channels: int, image_size: int,
                 num_classes: int):
        super().__init__()
        layers, width = [], in_channels * image_size * image_size
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1))
