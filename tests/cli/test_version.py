"""The version is written in one place, pyproject.toml: `pumpsim --version` and every firmware
build take it from there, so a board's `status` reports the version that was flashed."""

import subprocess
import sys
import tomllib
from pathlib import Path

from pumpsim import deploy

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_pumpsim_version_is_pyprojects():
    ran = subprocess.run([sys.executable, "-m", "pumpsim.cli", "--version"], capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0 and ran.stdout.strip() == "pumpsim %s" % VERSION


def test_a_build_gives_the_firmware_pyprojects_version(tmp_path):
    out = deploy.build("rpi_pico", out_dir=tmp_path / "build")
    # boardcfg.mpy, which the firmware's status reads its "fw" from (FW), holds it.
    assert VERSION.encode() in (out / "boardcfg.mpy").read_bytes()


def test_no_other_file_writes_the_version():
    # The firmware, the host, the boards' data: none spells the version out (tests may).
    found = [str(p.relative_to(ROOT)) for folder in ("firmware", "host", "hil", "boards")
             for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".toml", ".mjs")
             and ('"%s"' % VERSION in p.read_text(errors="replace") or "'%s'" % VERSION in p.read_text(errors="replace"))]
    assert found == []
