"""Where does a trained model lose the 3×3 grid? Probes on the features of a learning-proof run.

Run: ``.venv/bin/python bench/train_proof.py --work W`` first (it keeps its data and checkpoint in W), then
``.venv/bin/python bench/grid_probe.py W``. Each probe is trained on the run's training pairs to predict the
18 cell labels (road and building × 9 cells, from the label maps through ``deltavlm.rules``) and scored on
the held-out pairs with the evaluator's grid metrics:

* ``linear probe, Q-former output``: a linear layer on the LLM-space visual tokens for the localisation
  instruction: what the language model has to work with;
* ``attention probe, CSRM tokens``: 16 learned queries cross-attending to the tokens the Q-former reads
  (the Q-former's own mechanism), from the features alone;
* the same probe allowed to add a learned position code to the tokens: what position information adds.

A large gap between the last two means the features do not say where they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deltavlm.inference import DeltaVLMRunner
from deltavlm.metrics.structured import grid_metrics
from deltavlm.modeling.batch import collate_text
from deltavlm.modeling.model import PairFeatures
from deltavlm.rules import CATEGORIES, CELL_IDS, summarize
from deltavlm.text import encode_turn
from deltavlm.train import latest_checkpoint
from tools.masks import load_change_mask
from tools.pairs import load_pair


def _labels(class_mask: np.ndarray) -> list[float]:
    cells = summarize(class_mask).category_cells
    return [float(cell in cells.get(category, [])) for category in CATEGORIES for cell in CELL_IDS]


def _features(runner: DeltaVLMRunner, split: Path, instruction: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(CSRM tokens N×2T×D, Q-former output N×Q×H, labels N×18) for every pair of a split folder."""
    config = runner.config
    turn = encode_turn(runner.tokenizers.llm, config.text, config.qformer.num_query_tokens, instruction, ())
    text = collate_text([turn], runner.tokenizers, config.qformer.max_text_tokens, padding_side="left")
    tokens, visual, labels = [], [], []
    for before in sorted((split / "A").glob("*.png")):
        pair = load_pair(before, split / "B" / before.name)
        features = PairFeatures.concat(runner.encode_pairs([(pair.t1, pair.t2)]))
        with torch.no_grad():
            visual.append(runner.model.visual_tokens(features, text)[0])
        tokens.append(features.tokens[0])
        labels.append(_labels(load_change_mask(split / "label" / before.name, kind="levir-mci").class_mask))
    return torch.stack(tokens).float(), torch.stack(visual).float(), torch.tensor(labels)


class AttentionProbe(nn.Module):
    """Learned queries over the tokens, then a linear layer to the 18 cell labels."""

    def __init__(self, tokens: int, dim: int, queries: int = 16, position: bool = False) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, dim) * 0.1)
        self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.position = nn.Parameter(torch.randn(tokens, dim) * 0.1) if position else None
        self.out = nn.Linear(queries * dim, 2 * len(CELL_IDS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.position is not None:
            x = x + self.position
        weights = torch.softmax(self.queries @ self.key(x).transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1)
        return self.out((weights @ self.value(x)).flatten(1))


class LinearProbe(nn.Module):
    """All tokens flattened into one linear layer: what is decodable at all, wherever it sits."""

    def __init__(self, tokens: int, dim: int) -> None:
        super().__init__()
        self.out = nn.Linear(tokens * dim, 2 * len(CELL_IDS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x.flatten(1))


def _fit_and_score(
    probe: nn.Module, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], epochs: int
) -> dict[str, float]:
    x, y = train
    mean, std = x.mean(0), x.std(0) + 1e-6
    optimiser = torch.optim.AdamW(probe.parameters(), lr=3e-3, weight_decay=0.01)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            rows = order[start : start + 64]
            optimiser.zero_grad()
            nn.functional.binary_cross_entropy_with_logits(probe((x[rows] - mean) / std), y[rows]).backward()
            optimiser.step()
    with torch.no_grad():
        predicted = (probe((test[0] - mean) / std) > 0).numpy()

    def as_cells(rows: np.ndarray) -> list[dict[str, list[str]]]:
        n = len(CELL_IDS)
        return [
            {c: [cell for i, cell in enumerate(CELL_IDS) if row[k * n + i]] for k, c in enumerate(CATEGORIES)}
            for row in rows
        ]

    metrics = grid_metrics(as_cells(test[1].numpy().astype(bool)), as_cells(predicted))
    return {category: round(scores.f1, 3) for category, scores in metrics.per_category.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="the --work folder of a bench/train_proof.py run")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    checkpoint = latest_checkpoint(args.work / "run")
    if checkpoint is None:
        print(f"{args.work}: no checkpoint under run/ (run bench/train_proof.py --work {args.work} first)")
        return 2
    runner = DeltaVLMRunner.from_checkpoint(checkpoint)
    record = json.loads((args.work / "changechat" / "changechat_test_loc.json").read_text())[0]
    instruction = record["conversations"][0]["value"].replace("<image>", "").strip()
    images = args.work / "source" / "images"
    train_tokens, train_visual, train_labels = _features(runner, images / "train", instruction)
    test_tokens, test_visual, test_labels = _features(runner, images / "test", instruction)
    _, tokens, dim = train_tokens.shape
    rows = {
        "linear probe, Q-former output": _fit_and_score(
            LinearProbe(*train_visual.shape[1:]), (train_visual, train_labels), (test_visual, test_labels), args.epochs
        ),
        "attention probe, CSRM tokens": _fit_and_score(
            AttentionProbe(tokens, dim), (train_tokens, train_labels), (test_tokens, test_labels), args.epochs
        ),
        "  + learned position code": _fit_and_score(
            AttentionProbe(tokens, dim, position=True),
            (train_tokens, train_labels),
            (test_tokens, test_labels),
            args.epochs,
        ),
    }
    print(f"checkpoint {checkpoint}; {len(train_labels)} training, {len(test_labels)} held-out pairs")
    print(f"{'held-out grid F1':<32}{'road':>8}{'building':>10}{'all':>8}")
    for name, scores in rows.items():
        print(f"{name:<32}{scores['road']:>8.3f}{scores['building']:>10.3f}{scores['all']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
