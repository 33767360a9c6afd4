"""Shared fixtures: the real sample data in ../shared/data (read in place, skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Gradio's usage analytics would send a request from a daemon thread of every client and server: nothing here may
# reach the network, and a daemon thread still inside a socket call can crash the interpreter's exit.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHARED_DATA = Path(os.environ.get("CHANGEAGENT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared sample folder; tests that need it skip cleanly when it is missing."""
    if not (SHARED_DATA / "manifest.json").exists():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def page_client():
    """Connects ``gradio_client.Client`` s to a served page and closes them after the test: an open client keeps a
    heartbeat thread polling the page after it is gone, until the interpreter exits."""
    from gradio_client import Client

    made = []

    def connect(url: str, **options):
        client = Client(url, verbose=False, **options)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()
