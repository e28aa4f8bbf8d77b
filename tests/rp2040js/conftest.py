"""The rp2040js tier: the firmware on official MicroPython for the Pico, on an emulated RP2040.

It needs two files the project does not ship, named by environment variables:
PUMPSIM_RP2_FIRMWARE (MicroPython's RPI_PICO v1.28.0 uf2) and PUMPSIM_RP2_BOOTROM (the RP2040 boot
ROM as an ES module). Without them the tier is skipped and says where to get them.

One image is built per run: a blank Pico boots, gets its key, then the firmware by `make flash`
over its pty, as a Pico on USB would; every other test starts from a copy of that flash.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from pumpsim.hil.plugin import Bench

ROOT = Path(__file__).resolve().parents[2]
SKIP = ("the rp2040js tier needs PUMPSIM_RP2_FIRMWARE, MicroPython's RPI_PICO v1.28.0 uf2 "
        "(micropython.org/download/RPI_PICO: RPI_PICO-...-v1.28.0.uf2), and PUMPSIM_RP2_BOOTROM, the "
        "RP2040 boot ROM as an ES module exporting bootromB1 (demo/bootrom.ts of the rp2040js "
        "repository, github.com/wokwi/rp2040js)")
# The emulator on a busy machine runs Python code at a fraction of a Pico's speed: be patient.
CLIENT_TIMEOUT_S = 60.0


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PUMPSIM_RP2_FIRMWARE") and os.environ.get("PUMPSIM_RP2_BOOTROM"):
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.skip(reason=SKIP))


def wait_for(predicate, timeout_s, what, interval_s=1.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s" % (what, timeout_s))
        time.sleep(interval_s)


def read_until(port, marker, timeout_s):
    """What the port says until marker (bytes) has come; AssertionError with it when it does not."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError("%r did not come within %.0f s; got %r" % (marker, timeout_s, seen[-300:]))
        seen += port.read(4096)
    return seen


def repl_prompt(port_path, timeout_s=120.0):
    """Ctrl-C then Ctrl-B on a MicroPython REPL: it stops what runs and prints its banner."""
    with serial.Serial(port_path, timeout=0.2) as port:
        port.write(b"\r\x03\x02")
        return read_until(port, b">>> ", timeout_s)


def cli(*args, timeout_s=600):
    result = subprocess.run([sys.executable, "-m", "pumpsim.cli", *args], capture_output=True,
                            text=True, timeout=timeout_s)
    assert result.returncode == 0, "pumpsim %s: %s" % (" ".join(args), result.stderr.strip())
    return result.stdout


def pump_answers(port_path, key):
    from pumpsim.client import PumpClient
    from pumpsim.errors import PumpsimError

    try:
        with PumpClient.open(port_path, key=key, timeout=CLIENT_TIMEOUT_S) as client:
            return client.status()
    except PumpsimError:
        return None


def _build_image(directory):
    from pumpsim import deploy
    from pumpsim.targets.emu import supervisor
    from pumpsim.targets.rp2040js import supervisor as rp2040js

    board = directory / "board"
    started = time.monotonic()
    info = rp2040js.start(board)
    try:
        banner = repl_prompt(info["port"])
        boot_s = time.monotonic() - started
        assert b"MicroPython v1.28.0" in banner and b"RP2040" in banner, banner
        key = deploy.new_key()
        (board / "host.key").write_text(key.hex() + "\n")
        # As for a Pico on USB: the key first (once main.py runs, the pump holds the serial line),
        # then the firmware by make flash.
        cli("provision", "--port", info["port"], "--key", str(board / "host.key"))
        installed = Path(sys.prefix) / "bin" / ".installed"
        started = time.monotonic()
        subprocess.run(["make", "-C", str(ROOT), "-o", str(installed), "flash", "BOARD=rpi_pico",
                        "PORT=" + info["port"], "VENV=" + sys.prefix],
                       check=True, capture_output=True, timeout=600)
        deploy_s = time.monotonic() - started
        wait_for(lambda: pump_answers(info["port"], key), 300, "the deployed pump answering")
    finally:
        supervisor.stop(board)
    figures = {"boot_to_repl_s": round(boot_s, 2), "deploy_s": round(deploy_s, 1)}
    (directory / "figures.json").write_text(json.dumps(figures))
    return board


@pytest.fixture(scope="session")
def pico_image(tmp_path_factory, worker_id):
    """The flash of a Pico deployed once per run (shared by every xdist worker) and its key."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base
    directory = shared / "rp2040js-image"
    with open(shared / "rp2040js-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "figures.json").exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            _build_image(directory)
    board = directory / "board"
    return board / "flash.bin", bytes.fromhex((board / "host.key").read_text().strip())


@pytest.fixture
def pico(pico_image, tmp_path):
    """A deployed Pico with its rig, started by `pumpsim emu start --target rp2040js`."""
    from pumpsim.targets.emu import supervisor

    flash, key = pico_image
    directory = tmp_path / "pico"
    directory.mkdir()
    shutil.copy(flash, directory / "flash.bin")
    (directory / "host.key").write_text(key.hex() + "\n")
    info = json.loads(cli("emu", "start", "--target", "rp2040js", "--dir", str(directory)))
    wait_for(lambda: pump_answers(info["port"], key), 300, "the pump answering after its boot")
    bench = Bench(info["port"], info["rig"], key, directory)
    bench.rig.timeout_s = CLIENT_TIMEOUT_S
    try:
        yield bench
    finally:
        bench.close()
        supervisor.stop(directory)
