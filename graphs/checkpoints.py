"""Where threads are kept: in memory, or in SQLite so that they survive a restart.

Checkpoints hold typed values. The serializer revives exactly the classes the state declares (and refuses any
other class a tampered or foreign database might name), so loading a thread never imports arbitrary code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver


def serializer(types: Iterable[type]) -> JsonPlusSerializer:
    """A checkpoint serializer that revives ``types`` (and the standard safe types) only."""
    return JsonPlusSerializer(allowed_msgpack_modules=[(t.__module__, t.__name__) for t in types])


def checkpointer(connection: sqlite3.Connection | None, types: Iterable[type]) -> BaseCheckpointSaver:
    """A SQLite checkpointer on ``connection``, or an in-memory one when there is none."""
    serde = serializer(types)
    return SqliteSaver(connection, serde=serde) if connection is not None else InMemorySaver(serde=serde)
