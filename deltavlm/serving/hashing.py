"""The pair id: one definition of "the same pair", shared by the server, its client and every per-pair cache.

The server names an uploaded pair by this hash, and the agent's HTTP client checks that the server's id
equals the id it computed locally from the same pixels; both sides must therefore hash identically.
It lives in ``deltavlm`` (the bottom layer) so that the server needs nothing from ``tools/``;
``tools.pairs`` re-exports it for the rest of the agent.
"""

from __future__ import annotations

import hashlib

import numpy as np


def pair_hash(t1: np.ndarray, t2: np.ndarray) -> str:
    """Hash of both dates' pixels and shapes; equal pixels give equal ids wherever they came from."""
    digest = hashlib.sha256()
    for array in (t1, t2):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:32]
