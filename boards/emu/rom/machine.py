# The virtual board's machine module: the same API as on a dev board, wired to the rig.
# Shadows the unix port's built-in machine module.
import os

import _wire
import time as _time

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_RESET_CAUSES = {"pwron": PWRON_RESET, "hard": HARD_RESET, "wdt": WDT_RESET, "soft": SOFT_RESET}
_reset_cause = _RESET_CAUSES.get(os.getenv("PUMPSIM_RESET_CAUSE") or "pwron", PWRON_RESET)
_freq_hz = 125000000


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 4
    IRQ_FALLING = 8

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self._id = int(id)
        self._mode = Pin.IN if mode == -1 else mode
        self._level = 0
        if value is not None:
            self.value(value)

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode != -1:
            self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, level=None):
        if level is None:
            if self._mode == Pin.OUT:
                return self._level
            return _wire.call(_wire.INPUT, self._id)[1]
        self._level = 1 if level else 0
        device = _chip_selects.get(self._id)
        if device is not None:
            device.select(not self._level)  # a chip select is wired to its chip, not to the rig
            return
        _wire.send(_wire.PIN, (self._id << 8) | self._level)

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def toggle(self):
        self.value(1 - self._level)

    def __repr__(self):
        return "Pin(%d)" % self._id


class Signal:
    def __init__(self, pin, invert=False):
        self._pin = pin
        self._invert = invert

    def value(self, level=None):
        if level is None:
            return self._pin.value() ^ self._invert
        self._pin.value(bool(level) ^ self._invert)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


def _attach():
    import _fram

    found = _fram.attached()
    return {} if found is None else {found[0]: found[1]}


# The chips on the board's SPI bus, by the pin that selects each.
_chip_selects = _attach()


class SPI:
    """The SPI controller: its bytes go to whichever chip is selected (none: the bus reads 0)."""

    def __init__(self, id=0, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self._id = id
        self.init(baudrate, polarity=polarity, phase=phase)

    def init(self, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=0, sck=None, mosi=None,
             miso=None):
        self._baudrate = baudrate

    def deinit(self):
        pass

    @staticmethod
    def _selected():
        for device in _chip_selects.values():
            if device._selected:
                return device
        return None

    def write(self, buf):
        device = self._selected()
        if device is not None:
            device.clock_in(buf)

    def readinto(self, buf, write=0):
        device = self._selected()
        if device is None:
            for i in range(len(buf)):
                buf[i] = 0
            return
        device.clock_out(buf)

    def read(self, nbytes, write=0):
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)

    def write_readinto(self, write_buf, read_buf):
        self.readinto(read_buf)
        device = self._selected()
        if device is not None:
            device.clock_in(write_buf)


class ADC:
    def __init__(self, pin):
        self._id = pin._id if isinstance(pin, Pin) else int(pin)

    def read_u16(self):
        return _wire.call(_wire.ADC, self._id)[1]


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self._id = pin._id if isinstance(pin, Pin) else int(pin)
        self._freq_hz = freq
        self._duty_u16 = duty_u16
        self._report()

    def _report(self):
        _wire.send(_wire.PWM, (self._id << 48) | (self._freq_hz << 16) | self._duty_u16)

    def freq(self, hz=None):
        if hz is None:
            return self._freq_hz
        self._freq_hz = int(hz)
        self._report()

    def duty_u16(self, duty=None):
        if duty is None:
            return self._duty_u16
        self._duty_u16 = int(duty)
        self._report()

    def deinit(self):
        self._duty_u16 = 0
        self._report()


class WDT:
    def __init__(self, id=0, timeout=5000):
        _wire.send(_wire.WDT_START, int(timeout))

    def feed(self):
        _wire.send(_wire.WDT_FEED, 0)


class Timer:
    """A hardware timer: the supervisor ticks it in pump time, and its callback runs on a thread
    of its own while the main program goes on (the REPL waiting for input included)."""

    ONE_SHOT = 0
    PERIODIC = 1
    _count = 0

    def __init__(self, id=-1, *, mode=PERIODIC, period=-1, freq=-1, callback=None, hard=False):
        Timer._count += 1
        self._id = Timer._count
        if callback is not None:
            self.init(mode=mode, period=period, freq=freq, callback=callback)

    def init(self, *, mode=PERIODIC, period=-1, freq=-1, callback=None, hard=False):
        period_ms = int(period) if period > 0 else (1000 // int(freq) if freq > 0 else 1000)
        self._callback = callback
        _timers[self._id] = self
        _wire.start_timers(_timer_loop)
        _wire.send_now(_wire.TIMER, (self._id << 33) | ((mode == Timer.ONE_SHOT) << 32) | max(1, period_ms))

    def deinit(self):
        if _timers.pop(self._id, None) is not None:
            _wire.send_now(_wire.TIMER, self._id << 33)


_timers = {}


def _timer_loop():
    import sys

    while True:
        timer_id = _wire.next_tick()
        timer = _timers.get(timer_id)
        if timer is not None:
            _time.forget()  # the REPL's time moved on while the timer waited
            try:
                timer._callback(timer)
            except Exception as exc:  # as on a board: printed, and the timer goes on
                sys.print_exception(exc)
        _wire.send_now(_wire.TIMER_DONE, timer_id)


def _reset(cause):
    _wire.send_now(_wire.RESET, cause)
    # The supervisor ends this process; until then the board does nothing.
    while True:
        _wire.call(_wire.SLEEP, -1)


def reset():
    _reset(HARD_RESET)


def soft_reset():
    _reset(SOFT_RESET)


def reset_cause():
    return _reset_cause


def unique_id():
    return bytes(int(os.getenv("PUMPSIM_UID", "0")[i : i + 2] or "0", 16) for i in range(0, 16, 2))


def freq(hz=None):
    global _freq_hz
    if hz is None:
        return _freq_hz
    _freq_hz = hz


class RTC:
    """The board's RTC: the rig's clock since its epoch, as time.time() reads it. Setting it moves
    what the board reads, never the rig's clock (pump time in a stepped rig stays put)."""

    def __init__(self, id=0):
        pass

    def datetime(self, datetimetuple=None):
        """(year, month, day, weekday, hours, minutes, seconds, subseconds), weekday 0 = Monday."""
        if datetimetuple is None:
            t = _time.gmtime(_time.time())
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        year, month, day, _, hours, minutes, seconds = datetimetuple[:7]
        _time.set_rtc_ms(_time.mktime((year, month, day, hours, minutes, seconds, 0, 0)) * 1000)


def idle():
    if not _time.app:
        return _time.sleep_ms(1)  # at the REPL: until the next tick, in real time
    _time.sleep_until(_time.now_ms())


def lightsleep(ms=None):
    if ms is not None:
        _time.sleep_ms(ms)
    elif not _time.app:
        while True:  # nothing wakes it here but a reset
            _time.sleep(1)
    else:
        _time.sleep_until(-1)


deepsleep = lightsleep


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
