"""Builds go where they are asked, and a deploy's own build into a folder of its own: two runs at
once never build into one folder, and none into the source tree."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pumpsim import deploy

ROOT = Path(__file__).resolve().parents[2]


def pumpsim(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pumpsim.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_build_writes_where_it_is_told(tmp_path):
    result = pumpsim("build", "--board", "emu", "--out", "out/emu", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = Path(json.loads(result.stdout)["build"])
    assert out == Path("out/emu")
    assert {p.name for p in (tmp_path / out).iterdir()} == {"boardcfg.mpy", "boot.py", "main.py", "pump"}


def test_build_defaults_to_build_board_in_the_current_folder(tmp_path):
    result = pumpsim("build", "--board", "rpi_pico", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "build" / "rpi_pico" / "boardcfg.mpy").is_file()


def test_a_deploy_without_a_build_builds_in_a_temporary_folder_it_then_removes(monkeypatch):
    copied = []

    def reset(port, *args):
        sources = [Path(a) for a in args if a.endswith(".mpy") and not a.startswith(":")]
        copied.extend(sources)
        assert all(p.is_file() for p in sources)

    monkeypatch.setattr(deploy, "_reset", reset)
    before = sorted((ROOT / "build").rglob("*")) if (ROOT / "build").exists() else []
    assert deploy.deploy("loop://", "emu") is None
    assert copied and all(Path(tempfile.gettempdir()) in p.parents for p in copied)
    assert not any(p.exists() for p in copied)
    after = sorted((ROOT / "build").rglob("*")) if (ROOT / "build").exists() else []
    assert after == before
