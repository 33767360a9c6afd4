"""Where a thread's finished turns are kept, beside its checkpoints, so that checkpoints stay one turn's size.

A checkpoint holds the thread's state (the pair, the ledger, the last few requests a follow-up reads); the record
of every turn goes once into a table of its own (SQLite, on the checkpointer's connection and lock, or a dict in
memory) and is never copied again. After each turn the thread's older checkpoints are pruned: only the newest is
needed to resume, so a long thread's database and memory grow with the number of turns, not with its square.
Records are text (the agent's JSON): the graph layer stores them without knowing their shape.
"""

from __future__ import annotations

from collections.abc import Iterable

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

TABLE = "turn_records"
_NEWEST = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
"""The newest checkpoint of a thread's top graph (the order ``SqliteSaver.get_tuple`` takes as latest)."""


class TurnLog:
    """Turn records per thread, numbered from 0, in the checkpointer's own store."""

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        self.saver = saver
        self._memory: dict[str, dict[int, str]] = {}
        if isinstance(saver, SqliteSaver):
            with saver.cursor() as cur:
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} (thread_id TEXT NOT NULL, turn INTEGER NOT NULL, "
                    "record TEXT NOT NULL, PRIMARY KEY (thread_id, turn))"
                )

    def write(self, thread_id: str, turn: int, record: str) -> None:
        """Keep the record of ``turn`` (a turn run again after a failed save replaces its record)."""
        if isinstance(self.saver, SqliteSaver):
            with self.saver.cursor() as cur:
                cur.execute(
                    f"INSERT OR REPLACE INTO {TABLE} (thread_id, turn, record) VALUES (?, ?, ?)",
                    (thread_id, turn, record),
                )
        else:
            self._memory.setdefault(thread_id, {})[turn] = record

    def read(self, thread_id: str, below: int, turns: Iterable[int] | None = None) -> dict[int, str]:
        """The records of turns ``0 .. below - 1`` that were written (only ``turns`` among them, when given), by
        turn."""
        wanted = None if turns is None else {t for t in turns if 0 <= t < below}
        if isinstance(self.saver, SqliteSaver):
            query = f"SELECT turn, record FROM {TABLE} WHERE thread_id = ? AND turn < ?"
            params: list[object] = [thread_id, below]
            if wanted is not None:
                query += f" AND turn IN ({', '.join('?' * len(wanted))})"
                params += sorted(wanted)
            with self.saver.cursor(transaction=False) as cur:
                rows = cur.execute(query + " ORDER BY turn", params).fetchall()
            return {int(turn): str(record) for turn, record in rows}
        kept = self._memory.get(thread_id, {})
        return {t: r for t, r in sorted(kept.items()) if t < below and (wanted is None or t in wanted)}

    def forget(self, thread_id: str) -> None:
        """Drop the thread's records and checkpoints."""
        self.saver.delete_thread(thread_id)
        if isinstance(self.saver, SqliteSaver):
            with self.saver.cursor() as cur:
                cur.execute(f"DELETE FROM {TABLE} WHERE thread_id = ?", (thread_id,))
        else:
            self._memory.pop(thread_id, None)

    def newest(self, thread_id: str) -> str | None:
        """The id of the thread's newest checkpoint (None for a new thread), read without loading the checkpoint:
        a caller that kept the state it saved last knows whether that state is still the thread's."""
        if isinstance(self.saver, SqliteSaver):
            with self.saver.cursor(transaction=False) as cur:
                row = cur.execute(
                    _NEWEST,
                    (thread_id,),
                ).fetchone()
            return str(row[0]) if row is not None else None
        if isinstance(self.saver, InMemorySaver):
            saved = self.saver.storage.get(thread_id, {}).get("")  # .get: the storage is a defaultdict
            return max(saved) if saved else None
        raise TypeError(f"no checkpoint ids for {type(self.saver).__name__}")

    def prune(self, thread_id: str) -> str | None:
        """Keep only the thread's newest checkpoint (and its pending writes): all a restart needs to resume.

        Returns the kept checkpoint's id (None when the thread has none)."""
        if isinstance(self.saver, SqliteSaver):
            with self.saver.cursor() as cur:
                newest = cur.execute(
                    _NEWEST,
                    (thread_id,),
                ).fetchone()
                if newest is None:
                    return None
                for table in ("checkpoints", "writes"):
                    cur.execute(
                        f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id <> ?", (thread_id, newest[0])
                    )
            return str(newest[0])
        if isinstance(self.saver, InMemorySaver):
            # In place, never delete-and-put back: a reader between the two would see an empty thread.
            # The newest checkpoint's channel versions only: its channel values (the whole state) need no loading.
            saved = self.saver.storage.get(thread_id, {}).get("")
            if not saved:
                return None
            # Only this thread's entries are visited (never every thread's), so a turn costs the same whatever
            # number of threads the process holds: the dropped checkpoints name the writes and blobs they own.
            keep = max(saved)
            versions = self.saver.serde.loads_typed(saved[keep][0])["channel_versions"]
            for checkpoint_id in [c for c in list(saved) if c != keep]:
                dropped = saved.pop(checkpoint_id, None)
                self.saver.writes.pop((thread_id, "", checkpoint_id), None)
                if dropped is None:
                    continue
                for channel, version in self.saver.serde.loads_typed(dropped[0])["channel_versions"].items():
                    if versions.get(channel) != version:  # a channel's older version: no kept checkpoint reads it
                        self.saver.blobs.pop((thread_id, "", channel, version), None)
            return keep
        raise TypeError(f"no pruning for {type(self.saver).__name__}")
