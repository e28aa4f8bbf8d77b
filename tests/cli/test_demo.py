"""`pumpsim demo` clears its folder before it runs, and so clears only a folder it made itself."""

import pytest

from pumpsim import cli
from pumpsim.demo import MARK, clear
from pumpsim.errors import PumpsimError


def test_a_folder_with_files_of_someone_elses_is_refused_and_kept(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert cli.main(["demo", "--dir", str(folder), "--days", "1"]) == 1
    assert "holds files the demo did not make" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "keep me"


def test_a_file_in_the_folders_place_is_refused(tmp_path):
    path = tmp_path / "demo"
    path.write_text("not a folder")
    with pytest.raises(PumpsimError):
        clear(path)
    assert path.read_text() == "not a folder"


def test_a_new_an_empty_or_a_demo_folder_is_cleared(tmp_path):
    new = tmp_path / "new"
    clear(new)
    assert [p.name for p in new.iterdir()] == [MARK]
    empty = tmp_path / "empty"
    empty.mkdir()
    clear(empty)
    assert [p.name for p in empty.iterdir()] == [MARK]
    (new / "flash.img").write_text("a demo's board")
    clear(new)  # a folder the demo made: cleared, marked again
    assert [p.name for p in new.iterdir()] == [MARK]
