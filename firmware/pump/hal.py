# The only firmware module that touches hardware, through the standard MicroPython modules.
# Pins are found by role in the board's data (boardcfg), never by number in the firmware.
import os
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
_READ_BYTES = const(512)
_KEY_FILE = "pump.key"
_DATA_DIR = "data"  # relative to the flash root, the working directory at power-up
# Why the board is about to reset, written just before machine.reset(): rp2 reports a commanded
# reset as its watchdog's, which would read like a hang.
_RESET_FILE = "reset.txt"
# Present while the pump is in maintenance: "until_ms", in pump time. boot.py, which runs on every
# soft reset (into the raw REPL too), keeps the watchdog fed until then; then the pump resets into
# its therapy.
_MAINTENANCE_FILE = "maintenance.txt"
_CAUSES = {
    getattr(machine, "PWRON_RESET", 1): "power-on",
    getattr(machine, "HARD_RESET", 2): "hard",
    getattr(machine, "WDT_RESET", 3): "watchdog",
    6: "brownout",
    getattr(machine, "DEEPSLEEP_RESET", 4): "deepsleep",
    getattr(machine, "SOFT_RESET", 5): "soft",
}


class Clock:
    """Pump time in ms. On the virtual board the rig owns it; on a dev board it is the RTC."""

    def now_ms(self):
        return time.time_ns() // 1000000


class Motor:
    def __init__(self, step_pin, feedback_pin):
        self._step = step_pin
        self._feedback = feedback_pin
        self._step.value(0)

    def stroke(self):
        """One step; True when the feedback input confirms that the motor turned."""
        self._step.value(1)
        time.sleep_us(_PULSE_US)
        self._step.value(0)
        return self._feedback.value() == 1


class Buzzer:
    def __init__(self, pwm):
        self._pwm = pwm
        self._pwm.duty_u16(0)

    def tone(self, hz):
        self._pwm.freq(hz)
        self._pwm.duty_u16(32768)

    def off(self):
        self._pwm.duty_u16(0)


class Battery:
    """The battery voltage through a divider into the ADC, in mV."""

    def __init__(self, adc, full_scale_mv, divider):
        self._adc = adc
        self._scale = full_scale_mv * divider

    def millivolts(self):
        return self._adc.read_u16() * self._scale // 65535


class Watchdog:
    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self._wdt = None

    def start(self):
        """Once started it cannot be stopped (rp2): only a pump that is going to feed it starts it."""
        timeout_ms = self.timeout_ms
        self._wdt = machine.WDT(timeout=timeout_ms) if timeout_ms else None

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def keep_fed(self, until_ms, clock=None):
        """Maintenance: the watchdog cannot be stopped, so a timer feeds it while the REPL runs,
        until pump time until_ms; then the board resets into its therapy."""
        global _feeder
        stop_feeding()
        if self._wdt is None or not hasattr(machine, "Timer"):
            return
        clock = clock or Clock()
        wdt = self._wdt

        def tick(timer):
            if clock.now_ms() < until_ms:
                wdt.feed()
                return
            timer.deinit()
            _remove(_MAINTENANCE_FILE)
            reset("maintenance_timeout", clock)

        _feeder = machine.Timer(period=max(1, self.timeout_ms // 2), callback=tick)


_feeder = None


def stop_feeding():
    global _feeder
    if _feeder is not None:
        _feeder.deinit()
        _feeder = None


class SerialLink:
    """The USB serial line. While the pump runs, every byte on it is data, Ctrl-C included."""

    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._buf = bytearray(_READ_BYTES)
        self._byte = bytearray(1)

    def start(self):
        micropython.kbd_intr(-1)

    def stop(self):
        micropython.kbd_intr(3)
        # Back to the REPL: a dev board's watchdog keeps running and must be fed meanwhile.

    def wait(self, timeout_ms):
        return bool(self._poll.poll(timeout_ms))

    def read_available(self):
        """What has arrived, at most one buffer's worth: a host that never stops sending must not
        run the board out of memory, and the rest is read on the next turn of the loop."""
        n = 0
        buf = self._buf
        # After POLLIN only a one-byte read is sure not to block.
        while n < _READ_BYTES and self._poll.poll(0):
            got = self._in.readinto(self._byte)
            if not got:
                break
            buf[n] = self._byte[0]
            n += 1
        return memoryview(buf)[:n]

    def write(self, data):
        self._out.write(data)


def where(exc):
    """The innermost place an exception passed: "app.py:311 in loop"."""
    import io

    buf = io.StringIO()
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc, buf)
    else:  # CPython, for tests of this module
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=buf)
    last = ""
    for line in buf.getvalue().split("\n"):
        line = line.strip()
        if line.startswith("File "):
            last = line
    parts = last.split('"')
    if len(parts) < 3:
        return "unknown"
    rest = parts[2].replace(",", "").split()  # line N in NAME
    line_no = rest[1] if len(rest) > 1 else "?"
    func = rest[3] if len(rest) > 3 else "?"
    return "%s:%s in %s" % (parts[1].split("/")[-1], line_no, func)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _take(path):
    """A small file's text, removed once read; None when there is none."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    _remove(path)
    return text


def note_reset(cause, clock=None):
    """Write why the board is about to reset (and when): the next boot logs that cause."""
    try:
        with open(_RESET_FILE, "w") as f:
            f.write("%s %d" % (cause, (clock or Clock()).now_ms()))
    except OSError:  # the reset matters more than its reason
        pass


def reset(cause, clock=None):
    """Reset the board on purpose, having written why."""
    note_reset(cause, clock)
    machine.reset()


def boot_cause(machine_cause):
    """(cause, at_ms) of this boot. A reset the firmware or the deployer wrote down is logged by
    its reason; a board reset during maintenance (mpremote reset, Ctrl-D) ended it. at_ms: when
    the intended reset was asked for, else None. Power-on always reads power-on."""
    intended = _take(_RESET_FILE)
    maintenance = _take(_MAINTENANCE_FILE)
    if machine_cause == "power-on":
        return machine_cause, None
    if intended:
        parts = intended.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            return parts[0], int(parts[1])
    if maintenance is not None:
        return "maintenance_end", None
    return machine_cause, None


def start_maintenance(until_ms):
    """Write the flag that keeps the watchdog fed across soft resets until until_ms."""
    try:
        with open(_MAINTENANCE_FILE, "w") as f:
            f.write("%d" % until_ms)
    except OSError:  # the timer below still feeds the watchdog until the first soft reset
        pass
    return until_ms


def resume_maintenance(wdt_ms):
    """boot.py, on every reset: while maintenance lasts, the watchdog left running across a soft
    reset goes on being fed. True when it does."""
    try:
        with open(_MAINTENANCE_FILE) as f:
            until_ms = int(f.read())
    except (OSError, ValueError):
        return False
    watchdog = Watchdog(wdt_ms)
    watchdog.start()
    watchdog.feed()
    watchdog.keep_fed(until_ms)
    return True


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
        pins = cfg.PINS
        self.motor = Motor(machine.Pin(pins["MOTOR_STEP"], machine.Pin.OUT),
                           machine.Pin(pins["MOTOR_FEEDBACK"], machine.Pin.IN))
        self.buzzer = Buzzer(machine.PWM(machine.Pin(pins["BUZZER"], machine.Pin.OUT)))
        self.battery = Battery(machine.ADC(machine.Pin(pins["BATTERY_ADC"])),
                               cfg.BATTERY_ADC_FULL_SCALE_MV, cfg.BATTERY_DIVIDER)
        self.eri_mv = cfg.ERI_MV
        self.eos_mv = cfg.EOS_MV
        self.reset_mv = cfg.LOW_BATTERY_RESET_MV
        self.watchdog = Watchdog(cfg.WDT_MS)
        self.wdt_ms = cfg.WDT_MS
        self.max_sleep_ms = cfg.MAX_SLEEP_MS
        self.link = SerialLink()
        self.data_dir = _DATA_DIR
        self.store = Store(self.data_dir)
        self.log = EventLog(self.data_dir)
        self.key = _read_key()
        self.reset_cause, self.reset_at_ms = boot_cause(_CAUSES.get(machine.reset_cause(), "unknown"))
        stop_feeding()  # boot.py's, if maintenance was on: from here the pump feeds the watchdog

    def start_maintenance(self, until_ms):
        return start_maintenance(until_ms)

    def fault(self, exc):
        """An error the firmware did not expect: log it, then reset. After the reboot the records
        bring therapy back; staying up in an unknown state, or in the REPL, would stop it."""
        try:
            self.log.append(self.clock.now_ms(), "firmware_fault",
                            {"type": type(exc).__name__, "where": where(exc)})
        except Exception:  # the log may be what failed: the reset matters more
            pass
        reset("firmware_fault", self.clock)
