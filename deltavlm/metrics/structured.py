"""Metrics of the structured ChangeChat answers: yes/no, counts per category, 3×3 grid cells per category.

They take truths and parsed predictions (``None`` where an answer did not parse) and say how unparsed
answers were scored, because a model that answers nonsense must not look better than one that answers
wrongly:

* binary: an unparsed answer counts as the wrong label (a false negative on a changed pair, a false
  positive on an unchanged one); positives are "changed";
* counts: an unparsed answer, or a category the answer does not mention, predicts 0 (the release's parser
  reads missing numbers as none);
* grid: an unparsed answer, or a category it does not mention, predicts no cells. Micro precision/recall/F1
  pool the 9 cell labels of every sample (scikit-learn's ``average="micro"``, 0 when undefined, as its
  ``zero_division`` default); accuracy is exact-set (subset) accuracy; Jaccard is scikit-learn's
  ``jaccard_score(average="samples")``: the mean over samples of |truth ∩ prediction| / |truth ∪ prediction|,
  where a sample with no cells on either side scores 0 (its ``zero_division`` default). That convention makes
  Jaccard low on categories that rarely change (the paper's Table 5 has roads at Jaccard 14 with F1 68).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from deltavlm.rules import CATEGORIES, CELL_IDS


class BinaryMetrics(BaseModel):
    accuracy: float
    precision: float
    recall: float
    f1: float
    n: int
    unparsed: int
    tp: int
    fp: int
    tn: int
    fn: int


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def binary_metrics(truth: Sequence[bool], predicted: Sequence[bool | None]) -> BinaryMetrics:
    """Accuracy, precision, recall and F1 of yes/no answers, "changed" being the positive class."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} truths but {len(predicted)} predictions")
    tp = fp = tn = fn = unparsed = 0
    for t, p in zip(truth, predicted, strict=True):
        if p is None:
            unparsed += 1
            p = not t
        if t and p:
            tp += 1
        elif t:
            fn += 1
        elif p:
            fp += 1
        else:
            tn += 1
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return BinaryMetrics(
        accuracy=_ratio(tp + tn, len(truth)),
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
        n=len(truth),
        unparsed=unparsed,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
    )


class CountMetrics(BaseModel):
    mae: dict[str, float]
    rmse: dict[str, float]
    n: int
    unparsed: int


def count_metrics(
    truth: Sequence[Mapping[str, int]],
    predicted: Sequence[Mapping[str, int] | None],
    categories: Sequence[str] = CATEGORIES,
) -> CountMetrics:
    """MAE and RMSE of the count per category (plus ``all``: the two categories' errors pooled)."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} truths but {len(predicted)} predictions")
    if not truth:
        raise ValueError("no samples")
    errors: dict[str, list[int]] = {c: [] for c in categories}
    unparsed = 0
    for t, p in zip(truth, predicted, strict=True):
        if p is None:
            unparsed += 1
            p = {}
        for c in categories:
            errors[c].append(int(p.get(c, 0)) - int(t.get(c, 0)))
    errors["all"] = [e for c in categories for e in errors[c]]
    return CountMetrics(
        mae={c: sum(abs(e) for e in v) / len(v) for c, v in errors.items()},
        rmse={c: math.sqrt(sum(e * e for e in v) / len(v)) for c, v in errors.items()},
        n=len(truth),
        unparsed=unparsed,
    )


class GridScores(BaseModel):
    precision: float
    recall: float
    f1: float
    accuracy: float
    jaccard: float


class GridMetrics(BaseModel):
    per_category: dict[str, GridScores]
    n: int
    unparsed: int


def _grid_scores(truth: Sequence[set[str]], predicted: Sequence[set[str]]) -> GridScores:
    tp = sum(len(t & p) for t, p in zip(truth, predicted, strict=True))
    fp = sum(len(p - t) for t, p in zip(truth, predicted, strict=True))
    fn = sum(len(t - p) for t, p in zip(truth, predicted, strict=True))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return GridScores(
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
        accuracy=_ratio(sum(t == p for t, p in zip(truth, predicted, strict=True)), len(truth)),
        jaccard=_ratio(sum(_ratio(len(t & p), len(t | p)) for t, p in zip(truth, predicted, strict=True)), len(truth)),
    )


def grid_metrics(
    truth: Sequence[Mapping[str, Sequence[str]]],
    predicted: Sequence[Mapping[str, Sequence[str]] | None],
    categories: Sequence[str] = CATEGORIES,
) -> GridMetrics:
    """Micro P/R/F1 over the 9 cell labels, sample Jaccard and subset accuracy, per category and over all.

    ``all``: micro scores pool every label of both categories; Jaccard and accuracy are per sample over its
    18 (category, cell) labels, as scikit-learn would score the 18-label rows (accuracy needs both sets right).
    """
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} truths but {len(predicted)} predictions")
    if not truth:
        raise ValueError("no samples")
    unparsed = sum(p is None for p in predicted)
    cells = set(CELL_IDS)
    t_sets = {c: [set(t.get(c, ())) & cells for t in truth] for c in categories}
    p_sets = {c: [set((p or {}).get(c, ())) & cells for p in predicted] for c in categories}
    per_category = {c: _grid_scores(t_sets[c], p_sets[c]) for c in categories}
    pooled_t = [t_sets[c][i] for c in categories for i in range(len(truth))]
    pooled_p = [p_sets[c][i] for c in categories for i in range(len(truth))]
    pooled = _grid_scores(pooled_t, pooled_p)
    exact = sum(all(t_sets[c][i] == p_sets[c][i] for c in categories) for i in range(len(truth)))
    labelled_t = [{(c, cell) for c in categories for cell in t_sets[c][i]} for i in range(len(truth))]
    labelled_p = [{(c, cell) for c in categories for cell in p_sets[c][i]} for i in range(len(truth))]
    jaccard = sum(_ratio(len(t & p), len(t | p)) for t, p in zip(labelled_t, labelled_p, strict=True)) / len(truth)
    per_category["all"] = pooled.model_copy(update={"accuracy": exact / len(truth), "jaccard": jaccard})
    return GridMetrics(per_category=per_category, n=len(truth), unparsed=unparsed)
