# The only firmware module that touches hardware, through the standard MicroPython modules.
# Pins are found by role in the board's data (boardcfg), never by number in the firmware.
import sys
import time

import machine
import micropython
import select

from pump.eventlog import EventLog
from pump.store import Store

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_PULSE_US = const(20)
_KEY_FILE = "pump.key"
_CAUSES = {
    getattr(machine, "PWRON_RESET", 1): "power-on",
    getattr(machine, "HARD_RESET", 2): "hard",
    getattr(machine, "WDT_RESET", 3): "watchdog",
    getattr(machine, "DEEPSLEEP_RESET", 4): "deepsleep",
    getattr(machine, "SOFT_RESET", 5): "soft",
}


class Clock:
    """Pump time in ms. On the virtual board the rig owns it; on a dev board it is the RTC."""

    def now_ms(self):
        return time.time_ns() // 1000000


class Motor:
    def __init__(self, step_pin):
        self._step = step_pin
        self._step.value(0)

    def stroke(self):
        # One rising edge per stroke: the rig counts edges, whatever the firmware believes.
        self._step.value(1)
        time.sleep_us(_PULSE_US)
        self._step.value(0)


class SerialLink:
    """The USB serial line. While the pump runs, every byte on it is data, Ctrl-C included."""

    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)

    def start(self):
        micropython.kbd_intr(-1)

    def stop(self):
        micropython.kbd_intr(3)

    def wait(self, timeout_ms):
        return bool(self._poll.poll(timeout_ms))

    def read_available(self):
        data = bytearray()
        # After POLLIN only a one-byte read is sure not to block.
        while self._poll.poll(0):
            byte = self._in.read(1)
            if not byte:
                break
            data += byte
        return data

    def write(self, data):
        self._out.write(data)


def _read_key():
    try:
        with open(_KEY_FILE, "rb") as f:
            key = f.read()
    except OSError:
        return None
    return key if len(key) >= 16 else None


class Hardware:
    def __init__(self, cfg):
        self.board = cfg.NAME
        self.stroke_nl = cfg.STROKE_NL
        self.clock = Clock()
        self.motor = Motor(machine.Pin(cfg.PINS["MOTOR_STEP"], machine.Pin.OUT))
        self.link = SerialLink()
        self.store = Store("data")
        self.log = EventLog("data")
        self.key = _read_key()
        self.reset_cause = _CAUSES.get(machine.reset_cause(), "unknown")
