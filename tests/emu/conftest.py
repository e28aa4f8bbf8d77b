"""Fixtures for the virtual board itself, with a toy application as its firmware."""

import subprocess
import sys

import pytest
import serial

from pumpsim.targets.emu import supervisor
from pumpsim.targets.emu.flashfs import FlashFiles
from pumpsim.hil.rig import Rig

# A toy application: strokes every 172.8 s of pump time (500 a day), echoes what it reads, and
# returns to the REPL on 'q'. It exercises the virtual board without the pump firmware.
TOY_MAIN = """
import machine, time, select, sys, micropython
micropython.kbd_intr(-1)
step = machine.Pin(2, machine.Pin.OUT)
poll = select.poll()
poll.register(sys.stdin, select.POLLIN)
due = time.time_ns() // 1000000 + 172800
while True:
    now = time.time_ns() // 1000000
    if now >= due:
        step.value(1)
        step.value(0)
        due += 172800
    if poll.poll(due - now):
        c = sys.stdin.buffer.read(1)
        if c == b'q':
            break
        sys.stdout.write('got %d at %d\\n' % (c[0], now))
micropython.kbd_intr(3)
"""


def mpremote(port, *args, timeout=30):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def toy_board(tmp_path):
    directory = tmp_path / "board"
    FlashFiles(directory).write("main.py", TOY_MAIN)
    info = supervisor.start(directory)
    rig = Rig.open(info["rig"])
    try:
        yield info, rig
    finally:
        rig.close()
        supervisor.stop(directory)


def read_for(port, seconds):
    import time
    end = time.monotonic() + seconds
    out = b""
    while time.monotonic() < end:
        out += port.read(4096)
    return out


def read_prompt(port, timeout_s=10.0, settle_s=0.3):
    """What the port says up to a REPL prompt (however slow the machine), and whatever follows
    within settle_s of it: a second prompt would still be seen."""
    import time
    end = time.monotonic() + timeout_s
    out = b""
    while not out.endswith(b">>> ") and time.monotonic() < end:
        out += port.read(4096)
    return out + read_for(port, settle_s)


@pytest.fixture
def line(toy_board):
    info, _ = toy_board
    port = serial.serial_for_url(info["port"], timeout=0.05)
    yield port
    port.close()


def wait_for(predicate, timeout_s, what, interval_s=0.05):
    import time
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "waited %.0f s for %s" % (timeout_s, what)
        time.sleep(interval_s)
