"""Atomic writes: a folder being written never shows at its destination half-done, and a failed write leaves the
old one in place (adapters, merged models and the published adapter are written this way)."""

import pytest

from core.files import folder_atomic, write_atomic


def test_a_folder_written_whole_replaces_the_old_one_and_leaves_no_temporary_folders(tmp_path):
    dest = tmp_path / "adapter"
    dest.mkdir()
    (dest / "old.txt").write_text("old")

    with folder_atomic(dest) as tmp:
        assert tmp.parent == tmp_path and tmp != dest
        (tmp / "new.txt").write_text("new")
        assert (dest / "old.txt").is_file()  # still the old folder while the new one is written

    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    assert dest.stat().st_mode & 0o777 == 0o755  # published, not private like a temporary folder


def test_a_write_that_fails_half_way_leaves_the_old_folder_as_it_was(tmp_path):
    dest = tmp_path / "adapter"
    dest.mkdir()
    (dest / "old.txt").write_text("old")

    with pytest.raises(RuntimeError):
        with folder_atomic(dest) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("killed while saving")

    assert sorted(p.name for p in dest.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_a_folder_appears_where_there_was_none(tmp_path):
    dest = tmp_path / "out" / "merged"
    with folder_atomic(dest) as tmp:
        write_atomic(tmp / "config.json", "{}")

    assert (dest / "config.json").read_text() == "{}"


def test_threads_writing_the_same_file_at_once_never_rename_each_others_temporary_away(tmp_path):
    # Parallel graph branches save the run's clock.json at the same moment; one fixed temporary name made one of
    # them fail with FileNotFoundError.
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "clock.json"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: write_atomic(path, f'{{"elapsed": {i}}}'), range(2000)))

    assert path.read_text().startswith('{"elapsed": ')
    assert [p.name for p in tmp_path.iterdir()] == ["clock.json"]
    assert path.stat().st_mode & 0o777 == 0o644
