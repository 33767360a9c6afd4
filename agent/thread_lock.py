"""One writer per conversation thread at a time, across processes.

A turn reads the thread's latest checkpoint, runs the graph and writes the next one. Two writers doing that
at once on one thread fork the checkpoint lineage and the last writer's branch wins, so finished turns are
lost. :class:`ThreadLocks` serialises the turns of a thread: with a SQLite store by an advisory file lock
(one lock file per thread, so other threads are not held up; the lock dies with the process, so a killed ask
never blocks the thread), in memory by a lock per thread. A writer that waits longer than ``wait_s`` gets
:class:`ThreadBusy`, a clear error, instead of a lost turn.

The lock belongs to the database *file*, not to the path as typed: a symlink or a hard link to the same
database reaches the same lock (keyed by the resolved file's device and inode), otherwise two writers reaching
one file by two names would each hold "their" lock and fork the lineage again. The lock files live in a
per-user folder of the system's temporary directory named by that key, because hard links may sit in
different folders and only the (device, inode) pair is common to them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tools.raster import InputError

DEFAULT_WAIT_S = 300.0
"""How long a turn waits for the thread's previous turn (a DeltaVLM answer on a CPU can take a minute)."""
_POLL_S = 0.02


class ThreadBusy(InputError):
    """Another writer kept the thread for longer than the wait allowed."""


def lock_folder(db: str | Path) -> Path:
    """The lock folder of the database file ``db`` reaches: one per (device, inode) of the resolved file.

    The database is created empty when absent (SQLite takes an empty file as a new database), so that it has
    an inode to key by before the first turn."""
    real = Path(os.path.realpath(db))
    try:
        with open(real, "ab"):
            pass
        status = real.stat()
    except OSError as exc:
        raise InputError(f"conversation database {db} cannot be opened for its lock: {exc.strerror or exc}") from exc
    base = Path(tempfile.gettempdir()) / f"changeagent-locks-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    if base.stat().st_uid != os.getuid():
        raise InputError(f"the lock folder {base} belongs to another user; set TMPDIR to a folder of your own")
    return base / f"{status.st_dev:x}-{status.st_ino:x}"


class ThreadLocks:
    """Per-thread exclusive locks; file locks beside ``db`` when given, else in-process locks."""

    def __init__(self, db: str | Path | None = None, wait_s: float = DEFAULT_WAIT_S) -> None:
        self.folder = lock_folder(db) if db is not None else None
        self.wait_s = wait_s
        self._guard = threading.Lock()
        self._local: dict[str, threading.Lock] = {}

    def _lock_path(self, thread_id: str) -> Path:
        assert self.folder is not None
        digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.folder / f"{digest}.lock"

    @contextlib.contextmanager
    def hold(self, thread_id: str) -> Iterator[None]:
        """Exclusive use of ``thread_id`` for the duration of the block."""
        with self._guard:
            local = self._local.setdefault(thread_id, threading.Lock())
        if not local.acquire(timeout=self.wait_s):
            raise self._busy(thread_id)
        try:
            if self.folder is None:
                yield
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self._lock_path(thread_id), "a+") as handle:
                deadline = time.monotonic() + self.wait_s
                while True:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise self._busy(thread_id) from None
                        time.sleep(_POLL_S)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            local.release()

    def _busy(self, thread_id: str) -> ThreadBusy:
        return ThreadBusy(
            f"thread {thread_id} is busy: another ask is still answering in it (waited {self.wait_s:g} s); "
            "try again when it has finished, or use another thread"
        )
