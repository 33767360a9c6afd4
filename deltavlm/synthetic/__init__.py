"""Synthetic bi-temporal scenes with exact labels, for tests, demos and smoke training.

Real LEVIR-MCI data is research-only and cannot ship with the project, so tests and demos need pairs whose labels
are known by construction. A scene is laid out once (:mod:`.layout`) and rendered twice (:mod:`.render`): the second
rendering adds the labelled changes and, independently, unlabelled pseudo-changes. Registration is exact, because a
shift would be a change nobody labelled. Pixel sizes follow LEVIR-CD's 0.5 m ground sampling.

The public API is re-exported here: :func:`generate_pair`, :func:`write_levir_mci`, :func:`write_example`.
"""

from deltavlm.synthetic.generate import generate_pair, label_png, pair_seed, write_example, write_levir_mci
from deltavlm.synthetic.pairs import ExamplePaths, PlacedChange, SyntheticPair

__all__ = [
    "ExamplePaths",
    "PlacedChange",
    "SyntheticPair",
    "generate_pair",
    "label_png",
    "pair_seed",
    "write_example",
    "write_levir_mci",
]
