"""Evaluation metrics of the paper's tables: caption scores (coco-caption), yes/no, counts, 3×3 grid."""

from deltavlm.metrics.captions import CaptionScores, score_captions
from deltavlm.metrics.structured import (
    BinaryMetrics,
    CountMetrics,
    GridMetrics,
    binary_metrics,
    count_metrics,
    grid_metrics,
)

__all__ = [
    "BinaryMetrics",
    "CaptionScores",
    "CountMetrics",
    "GridMetrics",
    "binary_metrics",
    "count_metrics",
    "grid_metrics",
    "score_captions",
]
