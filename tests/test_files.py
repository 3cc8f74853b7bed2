"""beafx.files: atomic writes leave the old file or the new one, never a part of one."""
import os

import pytest

from beafx.files import atomic_path, write_text_atomic


def test_write_text_atomic_creates_folders_and_replaces(tmp_path):
    path = tmp_path / "a" / "b" / "record.json"
    assert write_text_atomic(path, "first") == path and path.read_text() == "first"
    write_text_atomic(path, "second")
    assert path.read_text() == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]


def test_the_temporary_name_is_this_process_own(tmp_path):
    with atomic_path(tmp_path / "tables.md") as tmp:
        assert tmp.parent == tmp_path and str(os.getpid()) in tmp.name and tmp.name != "tables.md"
        tmp.write_text("x")
    assert (tmp_path / "tables.md").read_text() == "x"
