"""``fileio.atomic_folder``: a folder of files replaced as a whole, or left as it was."""

from __future__ import annotations

import pytest

from emovox.fileio import atomic_folder


def test_a_new_folder_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as staging:
        assert staging.is_dir() and not any(staging.iterdir())
        (staging / "config.json").write_text("{}")
        assert (target / "old.txt").read_text() == "old"  # readers still see the old folder
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging left behind


def test_a_failing_writer_leaves_the_old_folder_and_no_staging(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("v1")
    with pytest.raises(RuntimeError, match="disk"), atomic_folder(target) as staging:
        (staging / "weights").write_text("half")
        raise RuntimeError("disk full")
    assert (target / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_missing_target_is_created_with_its_parents(tmp_path):
    target = tmp_path / "a" / "b" / "model"
    with atomic_folder(target) as staging:
        (staging / "x").write_text("1")
    assert (target / "x").read_text() == "1"
