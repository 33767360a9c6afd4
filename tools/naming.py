"""File-safe names for caller-chosen text (pair names, thread ids), shared by every writer of files."""

from __future__ import annotations

import hashlib
import re


def file_safe_name(text: str, fallback: str) -> str:
    """``text`` as a file or folder name; names and thread ids are caller-chosen (e.g. "site 4/2026").

    Unsafe characters become ``_``; when anything had to change, a hash of the original is appended so that
    two different texts never share a name ("a/b" and "a_b" stay apart).
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:48].strip("._") or fallback
    return safe if safe == text else f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
