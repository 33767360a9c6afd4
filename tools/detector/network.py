"""The change network: one EfficientNet-Lite0 encoder shared by both dates, the absolute feature difference at
four scales, and a small U-Net-style decoder giving a change logit per pixel at full resolution (the FC-Siam-diff /
TinyCD family).

Sharing the encoder makes the two dates comparable feature by feature; differencing features instead of pixels
makes the network ignore what a pretrained encoder already maps to the same place (tone, haze, a pixel of shift).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from tools.detector.efficientnet import FEATURE_CHANNELS, EfficientNetLite0Features, load_imagenet_weights


class NetworkConfig(BaseModel):
    """The network's shape; stored with every checkpoint so a model is rebuilt exactly as trained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decoder: tuple[int, int, int, int] = Field((16, 24, 32, 64), description="Decoder channels at strides 2–16.")
    pretrained: bool = Field(True, description="Start the encoder from the ImageNet weights.")


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SiameseChangeNet(nn.Module):
    """``forward(t1, t2)`` on N×3×H×W normalised images (H, W multiples of 16) → N×1×H×W change logits."""

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetworkConfig()
        widths = self.config.decoder
        self.encoder = EfficientNetLite0Features()
        if self.config.pretrained:
            load_imagenet_weights(self.encoder)
        self.deepest = _conv_bn(FEATURE_CHANNELS[3], widths[3])
        self.fuse = nn.ModuleList(
            _conv_bn(widths[i + 1] + FEATURE_CHANNELS[i], widths[i]) for i in range(len(FEATURE_CHANNELS) - 1)
        )
        self.head = nn.Sequential(_conv_bn(widths[0], widths[0]), nn.Conv2d(widths[0], 1, 1))
        nn.init.constant_(self.head[-1].bias, -2.0)  # start near "no change": most pixels of most pairs are unchanged

    def forward(self, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
        both = self.encoder(torch.cat([t1, t2], dim=0))
        n = t1.shape[0]
        diffs = [torch.abs(f[:n] - f[n:]) for f in both]
        x = self.deepest(diffs[3])
        for i in (2, 1, 0):
            x = F.interpolate(x, size=diffs[i].shape[2:], mode="bilinear", align_corners=False)
            x = self.fuse[i](torch.cat([x, diffs[i]], dim=1))
        x = F.interpolate(x, size=t1.shape[2:], mode="bilinear", align_corners=False)
        return self.head(x)

    def train(self, mode: bool = True) -> SiameseChangeNet:
        """Train as usual but keep the encoder's batch-norm statistics frozen at ImageNet's.

        A CPU batch holds a few crops of a few datasets; re-estimating the encoder's statistics from them would
        forget the pretrained ones, which transfer to unseen imagery better than a handful of crops.
        """
        super().train(mode)
        if mode and self.config.pretrained:
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self
