"""Firmware logic under CPython: firmware/ goes on sys.path here, it is never installed."""

import sys
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))


class FakeClock:
    def __init__(self, now_ms=0):
        self.now = now_ms

    def now_ms(self):
        return self.now


class CountingMotor:
    def __init__(self):
        self.strokes = 0

    def stroke(self):
        self.strokes += 1
        return True


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def motor():
    return CountingMotor()


@pytest.fixture
def make_pump(tmp_path, clock, motor):
    from pump.core import Pump
    from pump.eventlog import EventLog
    from pump.store import Store

    def make(stroke_nl=500):
        data = str(tmp_path / "data")
        store = Store(data)
        return Pump(clock, motor, store, stroke_nl, EventLog(data))

    return make
