"""Class-balanced loss for change masks: focal loss plus soft dice.

Changed pixels are a few percent of most crops. Plain cross-entropy then learns "nothing changed"; the focal term
down-weights the easy unchanged pixels, and dice scores the overlap of the changed region whatever its size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: float = 0.75) -> torch.Tensor:
    """Mean binary focal loss; ``alpha`` weights the changed class."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_true = p * target + (1 - p) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_true) ** gamma * bce).mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 − soft dice over the whole batch (a batch with no change at all still gives a defined loss)."""
    p = torch.sigmoid(logits)
    intersection = (p * target).sum()
    return 1 - (2 * intersection + smooth) / (p.sum() + target.sum() + smooth)


def change_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Focal (×10, to match dice's scale) plus dice."""
    return 10.0 * focal_loss(logits, target) + dice_loss(logits, target)
