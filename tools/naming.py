"""File-safe names for caller-chosen text (pair names, thread ids), shared by every writer of files.

A pair is named after its scene: the stem of its t1 file, or the parent folder when the stem is only a date role
(``city/t1.tif``, ``site/A.png``, ``x/before.tif``), since that layout would name every pair ``t1``. Exports carry
that name in their file name and in their ``pair`` property, so files from two places never collide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

GENERIC_DATE_NAMES = frozenset(
    {
        "t1", "t2", "t0", "a", "b", "before", "after", "pre", "post", "old", "new", "first", "second",
        "image1", "image2", "img1", "img2", "im1", "im2", "date1", "date2", "time1", "time2", "1", "2",
        "earlier", "later", "reference", "target", "source",
    }
)  # fmt: skip
"""Stems that say which date a file is, not which place: the folder above them names the scene instead."""


def file_safe_name(text: str, fallback: str) -> str:
    """``text`` as a file or folder name; names and thread ids are caller-chosen (e.g. "site 4/2026").

    Unsafe characters become ``_``; when anything had to change, a hash of the original is appended so that
    two different texts never share a name ("a/b" and "a_b" stay apart).
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:48].strip("._") or fallback
    return safe if safe == text else f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def scene_name(path: str | Path) -> str:
    """The scene a t1 file shows: its stem, or its folder's name when the stem is a generic date name."""
    path = Path(path)
    stem = path.stem
    if stem.lower() in GENERIC_DATE_NAMES or re.fullmatch(r"(?i)(t|date|time|img|image)[_-]?\d", stem):
        parent = path.parent.name
        if parent and parent.lower() not in GENERIC_DATE_NAMES:
            return parent
        grandparent = path.parent.parent.name  # LEVIR-style A/NAME.png is not generic; x/A/t1.png is rare
        if grandparent:
            return grandparent
    return stem


def distinct_names(paths: Sequence[str | Path]) -> list[str]:
    """A scene name per path, unique within the list: colliding names take more of their folders (``north_city``,
    ``south_city``), and a number as the last resort, so no two pairs of one batch share a name."""
    names = [scene_name(p) for p in paths]
    for depth in range(2, 6):
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            return names
        names = [_with_folders(Path(p), depth) if n in clashes else n for p, n in zip(paths, names, strict=True)]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if names.count(name) == 1 else f"{name}_{seen[name]}")
    return unique


def _with_folders(path: Path, depth: int) -> str:
    """The scene name prefixed by the folders above it, up to ``depth`` parts in all."""
    base = scene_name(path)
    folders = [p for p in path.parent.parts if p not in ("/", "\\", "") and p != base]
    parts = [*folders[-(depth - 1) :], base] if folders else [base]
    return "_".join(parts)
