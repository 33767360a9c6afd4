"""Issue 26, BAD 4: one conversation database reached by two paths (a symlink, a hard link) shares one lock per
thread, so concurrent asks through both names cannot fork the checkpoint lineage and lose turns."""

from __future__ import annotations

import os

import pytest

from agent.thread_lock import ThreadBusy, ThreadLocks


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_second_name_for_the_database_waits_for_the_same_lock(tmp_path, link):
    db = tmp_path / "threads.sqlite"
    db.write_bytes(b"")
    other = tmp_path / "elsewhere" / "alias.sqlite"
    other.parent.mkdir()
    (os.symlink if link == "symlink" else os.link)(db, other)
    holder = ThreadLocks(db)
    waiter = ThreadLocks(other, wait_s=0.2)
    with holder.hold("shared"):
        with pytest.raises(ThreadBusy, match="thread shared is busy"), waiter.hold("shared"):
            pass
        with waiter.hold("another"):  # other threads of the file are not held up
            pass
    with waiter.hold("shared"):
        pass


def test_two_different_databases_do_not_share_locks(tmp_path):
    first, second = ThreadLocks(tmp_path / "a.sqlite"), ThreadLocks(tmp_path / "b.sqlite", wait_s=0.2)
    with first.hold("t"), second.hold("t"):
        pass
