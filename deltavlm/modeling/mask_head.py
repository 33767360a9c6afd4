"""A change-mask head on the Bi-VE feature maps: background / road / building at input resolution.

It reads the same ``ln_vision`` outputs the CSRM reads (patch tokens of both dates, CLS dropped), so a
conversation gets a learned mask from the forward it already paid for. Input per pixel of the patch grid
is ``[F_t1; F_t2; F_t2 - F_t1]``; a 1×1 reduction, then ×2 upsampling stages (conv 3×3, GroupNorm, GELU)
until the grid reaches the image size, a 1×1 classifier, and a final bilinear resize to the requested
output size. Trained with cross-entropy + soft Dice; off by default until trained. The release's own
head was binary and unfinished; this one keeps the two categories apart.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deltavlm.config import MaskHeadConfig


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


def _block(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
        nn.GroupNorm(_groups(out_channels), out_channels),
        nn.GELU(),
    ]


class ChangeMaskHead(nn.Module):
    """Per-pixel class logits from the two dates' feature maps."""

    def __init__(self, config: MaskHeadConfig, feature_dim: int, grid: int, image_size: int) -> None:
        super().__init__()
        self.grid = grid
        channels = config.channels
        self.reduce = nn.Sequential(*_block(3 * feature_dim, channels, 1))
        stages: list[nn.Module] = []
        for _ in range(max(math.ceil(math.log2(image_size / grid)), 0)):
            out = max(channels // 2, 8)
            stages += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                *_block(channels, out, 3),
            ]
            channels = out
        self.upsample = nn.Sequential(*stages)
        self.classify = nn.Conv2d(channels, config.num_classes, 1)

    def forward(self, f_t1: torch.Tensor, f_t2: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """B×T×D features (CLS first) → B×C×H×W logits at ``output_size``."""
        maps = [self._as_map(f) for f in (f_t1, f_t2)]
        x = torch.cat([maps[0], maps[1], maps[1] - maps[0]], dim=1)
        logits = self.classify(self.upsample(self.reduce(x)))
        return F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)

    def _as_map(self, features: torch.Tensor) -> torch.Tensor:
        patches = features[:, 1:, :]
        batch, tokens, dim = patches.shape
        if tokens != self.grid * self.grid:
            raise ValueError(f"expected {self.grid * self.grid} patch tokens, got {tokens}")
        return patches.transpose(1, 2).reshape(batch, dim, self.grid, self.grid)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float = 1.0) -> torch.Tensor:
    """1 − mean per-class soft Dice; classes absent from both prediction and target score 1 (no penalty)."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1).to(logits.dtype)
    probs = logits.float().softmax(dim=1) * valid
    onehot = F.one_hot(target.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2).to(probs.dtype) * valid
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2 * intersection + smooth) / (denominator + smooth)).mean()


def mask_loss(logits: torch.Tensor, target: torch.Tensor, config: MaskHeadConfig) -> torch.Tensor:
    """Cross-entropy + Dice on class-index targets (B×H×W; ``ignore_index`` pixels skipped)."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    target = target.long()
    if not bool((target != config.ignore_index).any()):
        # Cross-entropy over zero pixels is 0/0; a batch with nothing to learn contributes nothing.
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits.float(), target, ignore_index=config.ignore_index)
    dice = soft_dice_loss(logits, target, config.ignore_index)
    return config.ce_weight * ce + config.dice_weight * dice
