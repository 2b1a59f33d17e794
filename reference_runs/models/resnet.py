"""A CIFAR-style ResNet: 3×3 stem, stages of BasicBlocks with BatchNorm, average pool, Linear.

``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` is ResNet-18 for 32×32 inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["ResNetConfig", "BasicBlock", "ResNet"]


@dataclass
class ResNetConfig:
    widths: tuple[int, ...] = (64, 128, 256, 512)  # channels of each stage
    blocks: tuple[int, ...] = (2, 2, 2, 2)         # BasicBlocks per stage


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers and a skip connection (a 1×1 conv–BN when the shape changes)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig, *, in_channels: int, image_size: int,
                 num_classes: int):
        super().__init__()
        if len(config.widths) != len(config.blocks):
            raise ValueError(f"widths {config.widths} and blocks {config.blocks} must have "
                             "the same length (one entry per stage)")
        del image_size  # the average pool makes the head independent of it
        first = config.widths[0]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, first, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(first), nn.ReLU())
        stages, width = [], first
        for i, (planes, count) in enumerate(zip(config.widths, config.blocks, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(width, planes, stride)]
            blocks += [BasicBlock(planes, planes) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            width = planes
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        # Global average pool as a mean: AdaptiveAvgPool2d has no vmap batching rule.
        return self.fc(self.stages(self.stem(x)).mean(dim=(2, 3)))
