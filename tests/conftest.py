"""Shared fixtures: the real sample data in ../shared/data (read in place, skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("CHANGEAGENT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared sample folder; tests that need it skip cleanly when it is missing."""
    if not (SHARED_DATA / "manifest.json").exists():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    return SHARED_DATA
