"""CSRM, the cross-temporal selective reasoning module, in the three variants the config can name.

All variants take the Bi-VE outputs F_t1, F_t2 (B×T×D, CLS included) and return the tokens the Q-former
cross-attends to, B×2T×D (514 tokens in the full config): the two dates joined along tokens.

* ``release``: the authors' released layout. One context and one gate layer shared by both dates, each a
  Linear over ``[F_diff; F_t]`` (the release's ``context1``/``gate1`` act on the difference without bias,
  ``context2``/``gate2`` on F_t with bias; concatenated they are this one Linear), dropout on context and
  gate, then a fusion Linear over ``[F_t; F_diff; F'_t]`` (``context3``, not in the paper).
* ``paper``: the equations as printed: separate context and gate weights per date, F'_t passed on directly.
* ``none``: the paper's "w/o CSRM" ablation, the raw ``[F_t1; F_t2]``.

The same module runs in training and inference (the release skipped it in training).
"""

from __future__ import annotations

import torch
from torch import nn

from deltavlm.config import CSRMConfig


def _selected(context: nn.Linear, gate: nn.Linear, dropout: nn.Dropout, joint: torch.Tensor) -> torch.Tensor:
    """F'_t = σ(W_g[diff; F_t] + b_g) ⊙ tanh(W_c[diff; F_t] + b_c), dropout on both factors."""
    return dropout(torch.sigmoid(gate(joint))) * dropout(torch.tanh(context(joint)))


class ReleaseCSRM(nn.Module):
    """Weights shared across dates, plus the release's fusion layer."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.context = nn.Linear(2 * dim, dim)
        self.gate = nn.Linear(2 * dim, dim)
        self.fuse = nn.Linear(3 * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, f_t1: torch.Tensor, f_t2: torch.Tensor) -> torch.Tensor:
        diff = f_t2 - f_t1
        steps = []
        for f_t in (f_t1, f_t2):
            selected = _selected(self.context, self.gate, self.dropout, torch.cat([diff, f_t], dim=-1))
            steps.append(self.fuse(torch.cat([f_t, diff, selected], dim=-1)))
        return torch.cat(steps, dim=1)


class PaperCSRM(nn.Module):
    """Separate context and gate weights for t1 and t2; F'_t goes to the Q-former as is."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.context = nn.ModuleList([nn.Linear(2 * dim, dim) for _ in range(2)])
        self.gate = nn.ModuleList([nn.Linear(2 * dim, dim) for _ in range(2)])
        self.dropout = nn.Dropout(dropout)

    def forward(self, f_t1: torch.Tensor, f_t2: torch.Tensor) -> torch.Tensor:
        diff = f_t2 - f_t1
        steps = [
            _selected(context, gate, self.dropout, torch.cat([diff, f_t], dim=-1))
            for context, gate, f_t in zip(self.context, self.gate, (f_t1, f_t2), strict=True)
        ]
        return torch.cat(steps, dim=1)


class NoCSRM(nn.Module):
    """The "w/o CSRM" ablation: both dates' raw features, joined along tokens."""

    def forward(self, f_t1: torch.Tensor, f_t2: torch.Tensor) -> torch.Tensor:
        return torch.cat([f_t1, f_t2], dim=1)


def build_csrm(config: CSRMConfig, dim: int) -> nn.Module:
    """The CSRM variant the config names."""
    if config.mode == "release":
        return ReleaseCSRM(dim, config.dropout)
    if config.mode == "paper":
        return PaperCSRM(dim, config.dropout)
    return NoCSRM()
