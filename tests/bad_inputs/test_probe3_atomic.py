"""Issue 26, BAD 3: an export overwritten by a writer that dies mid-write leaves the old file, not a stub.

The write is cut short deterministically: a child process lowers its file-size limit (``RLIMIT_FSIZE``) below
the new file's size, so the kernel refuses the rest of the write exactly as a full disk would. Before the fix
``write_geojson`` truncated the old export first and left a fragment; now the old file is untouched, no
temporary file is left, and the error names the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tools.atomic import OutputError, open_atomic, replacing, write_atomic

ROOT = Path(__file__).resolve().parents[2]
LIMITED_WRITE = textwrap.dedent(
    """
    import json, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    kind, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    big = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"n": "x" * 400},
           "geometry": {"type": "Point", "coordinates": [i, i]}} for i in range(4000)]}
    if kind == "geojson":
        from tools.geojson import write_geojson
        write_call = lambda: write_geojson(big, path)
    else:
        import numpy as np
        from tools.overlay import save_png
        noise = np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)
        write_call = lambda: save_png(noise, path)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        write_call()
    except Exception as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
    """
)


def _limited_write(kind: str, path: Path, limit: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", LIMITED_WRITE, kind, str(path), str(limit)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(("kind", "name"), [("geojson", "changes.geojson"), ("overlay", "overlay.png")])
def test_a_write_cut_short_keeps_the_old_file_and_names_it(tmp_path, kind, name):
    target = tmp_path / name
    old = b'{"type": "FeatureCollection", "features": []}\n' * 100
    target.write_bytes(old)
    done = _limited_write(kind, target, limit=len(old) + 10_000)
    assert done.returncode == 3, done.stderr[-2000:]
    assert target.read_bytes() == old
    assert done.stdout.startswith("OutputError cannot write " + str(target))
    assert "the earlier " + name + " is kept unchanged" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_the_helpers_replace_whole_files_or_nothing(tmp_path):
    target = tmp_path / "deep" / "summary.csv"
    write_atomic(target, "a,b\n")
    assert target.read_text() == "a,b\n"
    with pytest.raises(RuntimeError), open_atomic(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "a,b\n"
    with replacing(target) as temporary:
        assert temporary.parent == target.parent and temporary.suffix == ".csv"
        temporary.write_text("c,d\n")
        assert target.read_text() == "a,b\n"
    assert target.read_text() == "c,d\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.csv"]
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputError, match=r"cannot write .*afile/missing.csv: .*; nothing was written there"):
        write_atomic(tmp_path / "afile" / "missing.csv", "x")
    assert json.loads(write_atomic(tmp_path / "x.json", "[1]").read_text()) == [1]
    np.testing.assert_equal(np.frombuffer(write_atomic(tmp_path / "b", b"\x01").read_bytes(), np.uint8), [1])
