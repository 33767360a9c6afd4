"""Whole files or nothing: every output (GeoJSON, GeoPackage, overlays, mask GeoTIFFs, CSV/JSONL summaries,
manifests, calibration) is written to a temporary file in the destination's folder, flushed to disk, then renamed
over the destination.

A file written in place is first truncated: a process killed at that moment (``kill -9``, a power cut) leaves an
empty or half-written file where a good one stood, and a full disk leaves a stub. A rename within one folder is
atomic, so a reader sees the old file or the new one, never a mix. A failure (a full disk, a file size limit, a
writer that raises) removes the temporary file, keeps the old one, and raises :class:`OutputError` naming the
destination; front-ends show it as one line, like an input error.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tools.raster import InputError


class OutputError(InputError):
    """An output file could not be written (disk full, no permission, size limit); the earlier file is kept."""


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _failure(path: Path, existed: bool, exc: BaseException) -> OutputError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    kept = f"the earlier {path.name} is kept unchanged" if existed else "nothing was written there"
    return OutputError(f"cannot write {path}: {reason}; {kept}")


@contextlib.contextmanager
def replacing(path: str | Path, *, sync_dir: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (OpenCV, rasterio, GDAL).

    The temporary name keeps the suffix so writers that choose a format by it still do. When the block ends
    without error the file is fsynced and renamed over ``path`` (and the folder fsynced unless ``sync_dir`` is
    False, for many small files the caller syncs once); otherwise it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.part{path.suffix}")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        _fsync_path(temporary)
        os.replace(temporary, path)
        if sync_dir:
            _fsync_path(path.parent, directory=True)
    except OSError as exc:
        raise _failure(path, existed, exc) from exc
    finally:
        with contextlib.suppress(OSError):  # renamed into place, never created, or its folder is missing
            temporary.unlink()


@contextlib.contextmanager
def open_atomic(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` whose content replaces ``path`` only once the block has finished without error."""
    if not mode.startswith("w"):
        raise ValueError(f"open_atomic writes whole files; mode {mode!r} is not a write mode")
    with replacing(path) as temporary, open(temporary, mode, **kwargs) as handle:
        yield handle


def write_atomic(path: str | Path, data: bytes | str, *, sync_dir: bool = True) -> Path:
    """Write ``data`` (text as UTF-8) as the whole of ``path``, or leave ``path`` as it was."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path, sync_dir=sync_dir) as temporary, open(temporary, "wb") as handle:
        handle.write(payload)
    return path
