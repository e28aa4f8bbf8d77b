# The only firmware module that touches hardware, through the standard MicroPython modules.
# Pins are found by role in the board's data (boardcfg), never by number in the firmware.
import os
import struct
import sys
import time

import machine
import micropython
import select

from pump import nvram
from pump.records import Records

try:
    from micropython import const
except ImportError:
    def const(__x):  # positional-only (the leading __), as micropython.const is
        return __x

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


# Where an RP2040's RTC starts after every power-up, watchdog reset or machine.reset():
# 2021-01-01 00:00, in ms since 1970 (MicroPython's epoch). Pump time counts from it.
_RTC_EPOCH_MS = 1609459200000  # not const(): above a small int on a 32-bit port
# The clock's own record: the newest pump time a reply showed, and the offset a set-clock gave
# pump time from the RTC.
_CLOCK_RECORD = "<qq"
_CLOCK_RECORD_LEN = const(16)
RTC = "rtc"  # pump time is the RTC's (plus the offset of a set-clock, if any)
RESTORED = "restored"  # the RTC read earlier than the saved clock: carried on from it
SET = "set"  # set by set-clock


class Clock:
    """Pump time in ms since the RTC's epoch. It never runs backwards and is never earlier than
    anything saved: at boot, an RTC that reads earlier than the newest saved time (a Pico's RTC
    restarts at its epoch after every reset) is not believed, and pump time goes on from that
    saved time plus the time since boot (ticks_ms). An RTC that reads no earlier is kept (the
    virtual board's rig owns it). While running, ticks carry pump time whenever the RTC is not
    believed; they wrap, so pump time must be read at least every few days (the main loop reads
    it hourly at the least)."""

    def __init__(self, store=None):
        self.source = RTC
        self.offset_ms = 0
        self.saved_ms = None  # the newest time this clock's own record holds
        self._ms = None  # the last reading
        self._ticks = None  # not None: pump time runs on ticks from _ms
        self._store = store
        if store is not None:
            payload = store.load()
            if payload is not None and len(payload) == _CLOCK_RECORD_LEN:
                self.saved_ms, self.offset_ms = struct.unpack(_CLOCK_RECORD, payload)

    @staticmethod
    def rtc_ms():
        return time.time_ns() // 1000000 - _RTC_EPOCH_MS

    def now_ms(self):
        last, ms = self._ticks, self._ms
        if last is None or ms is None:
            now_ms = self.rtc_ms() + self.offset_ms
            if ms is None or now_ms >= ms:
                self._ms = now_ms
                return now_ms
            last = self._carry(ms)  # the RTC went back while running: not believed any more
        ticks = time.ticks_ms()
        elapsed_ms = time.ticks_diff(ticks, last)
        if elapsed_ms > 0:
            ms += elapsed_ms
            self._ms, self._ticks = ms, ticks
        return ms

    def _carry(self, from_ms):
        self._ms = from_ms
        self._ticks = ticks = time.ticks_ms()
        return ticks

    def restore(self, saved_ms):
        """At boot, given the newest time the records and the log hold (None: nothing saved):
        pump time from the RTC, or from the newest saved time plus the time since boot when the
        RTC reads earlier. True when it had to be restored: how long the power was off is
        unknown."""
        if self.saved_ms is not None and (saved_ms is None or self.saved_ms > saved_ms):
            saved_ms = self.saved_ms
        rtc_ms = self.rtc_ms() + self.offset_ms
        if saved_ms is None or rtc_ms >= saved_ms:
            self.source = SET if self.offset_ms else RTC
            self._ms, self._ticks = rtc_ms, None
            return False
        # Ticks start at 0 at every reset: ticks_ms is the time since boot.
        uptime_ms = time.ticks_diff(time.ticks_ms(), 0)
        self._carry(saved_ms + max(0, uptime_ms))
        self.source = RESTORED
        return True

    def set(self, new_ms):
        """set-clock: pump time is new_ms from now on. A kept RTC carries the offset across
        resets; one that restarted at its epoch is still not believed."""
        self.offset_ms = new_ms - self.rtc_ms()
        if self._ticks is None:
            self._ms = new_ms
        else:
            self._carry(new_ms)
        self.source = SET
        self.persist(new_ms, True)

    def persist(self, now_ms, always=False):
        """Save now_ms before a reply shows it: after a reset pump time never comes back earlier
        than what the host was told. One slot per write, in turn: a torn write leaves the other."""
        if self._store is None or (not always and self.saved_ms is not None and now_ms <= self.saved_ms):
            return
        self._store.save(struct.pack(_CLOCK_RECORD, now_ms, self.offset_ms), stroke=True)
        self.saved_ms = now_ms


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

    def keep_fed(self, end_rtc_ms):
        """Maintenance: the watchdog cannot be stopped, so a timer feeds it while the REPL runs,
        until the RTC reads end_rtc_ms (start_maintenance); then the board resets into its
        therapy."""
        global _feeder
        stop_feeding()
        if self._wdt is None or not hasattr(machine, "Timer"):
            return
        wdt = self._wdt

        def tick(timer):
            if Clock.rtc_ms() < end_rtc_ms:
                wdt.feed()
                return
            timer.deinit()
            _remove(_MAINTENANCE_FILE)
            reset("maintenance_timeout")

        # -1: a virtual timer, the only kind rp2 has (its default)
        _feeder = machine.Timer(-1, period=max(1, self.timeout_ms // 2), callback=tick)


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
            # The stub's sys.stdin.buffer is typing.BinaryIO, without the board's readinto.
            got = self._in.readinto(self._byte)  # pyright: ignore[reportAttributeAccessIssue]
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
        # The stubs' io.StringIO has no write and no getvalue, so is no stream to them; the board's is.
        sys.print_exception(exc, buf)  # pyright: ignore[reportArgumentType]
    else:  # CPython, for tests of this module
        import traceback  # pyright: ignore[reportMissingImports]  # not on the board: never runs there

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=buf)
    last = ""
    for line in buf.getvalue().split("\n"):  # pyright: ignore[reportAttributeAccessIssue]  # StringIO: above
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
    """Write why the board is about to reset (and when, in pump time, given the pump's clock):
    the next boot logs that cause."""
    try:
        with open(_RESET_FILE, "w") as f:
            f.write(cause if clock is None else "%s %d" % (cause, clock.now_ms()))
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
        if len(parts) == 1:
            return parts[0], None
    if maintenance is not None:
        return "maintenance_end", None
    return machine_cause, None


def start_maintenance(until_ms, clock):
    """Write the flag that keeps the watchdog fed across soft resets until pump time until_ms.
    The flag holds the end in RTC time, which runs on across soft resets: pump time may run on
    ticks from a restored clock, which only the pump's own main loop keeps. Returns that end."""
    end_rtc_ms = Clock.rtc_ms() + max(0, until_ms - clock.now_ms())
    try:
        with open(_MAINTENANCE_FILE, "w") as f:
            f.write("%d" % end_rtc_ms)
    except OSError:  # the timer below still feeds the watchdog until the first soft reset
        pass
    return end_rtc_ms


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


def _fram(cfg):
    """The board's FRAM when it has one (board.json: fram_bytes) and it answers; else None."""
    size = getattr(cfg, "FRAM_BYTES", 0)
    if not size:
        return None
    pins = cfg.PINS
    spi = machine.SPI(cfg.FRAM_SPI, baudrate=cfg.FRAM_BAUD_HZ, polarity=0, phase=0,
                      sck=machine.Pin(pins["FRAM_SCK"]), mosi=machine.Pin(pins["FRAM_MOSI"]),
                      miso=machine.Pin(pins["FRAM_MISO"]))
    fram = nvram.Fram(spi, machine.Pin(pins["FRAM_CS"], machine.Pin.OUT, value=1), size)
    return fram if fram.probe() else None


class Hardware:
    def __init__(self, cfg):
        self.board = cfg.NAME
        self.fw = cfg.FW  # the version this build was made from (pyproject.toml)
        self.micropython = "%d.%d.%d" % sys.implementation.version[:3]  # the interpreter it runs on
        self.stroke_nl = cfg.STROKE_NL
        pins = cfg.PINS
        self.records = Records(_fram(cfg), _DATA_DIR)
        self.nvram = self.records.medium
        self.clock = Clock(self.records.clock)
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
        self.store = self.records.state
        self.store.lost = self.records.lost
        self.log = self.records.log
        self.key = _read_key()
        self.reset_cause, self.reset_at_ms = boot_cause(_CAUSES.get(machine.reset_cause(), "unknown"))
        stop_feeding()  # boot.py's, if maintenance was on: from here the pump feeds the watchdog

    def start_maintenance(self, until_ms):
        return start_maintenance(until_ms, self.clock)

    def fault(self, exc):
        """An error the firmware did not expect: log it, then reset. After the reboot the records
        bring therapy back; staying up in an unknown state, or in the REPL, would stop it."""
        try:
            self.log.append(self.clock.now_ms(), "firmware_fault",
                            {"type": type(exc).__name__, "where": where(exc)})
        except Exception:  # the log may be what failed: the reset matters more
            pass
        reset("firmware_fault", self.clock)
