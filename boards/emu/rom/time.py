# Pump time on the virtual board: the rig owns the clock, so every reading and every sleep goes
# through the wires. Shadows the built-in time module (the built-in stays reachable as utime).
import os as _os
import utime as _utime

import _wire

_cached_ms = None

ticks_add = _utime.ticks_add
ticks_diff = _utime.ticks_diff
gmtime = _utime.gmtime
localtime = _utime.localtime
mktime = _utime.mktime

_TICKS_MASK = 0x3FFFFFFF
# The RTC reads 2021-01-01 (ms since 1970) plus rig time: a kept RTC, set once and never lost.
# A volatile one (rig rtc volatile) restarts there at every power-up and reset, as a Pico's does.
_RTC_EPOCH_MS = 1609459200000
_RTC_VOLATILE = _os.getenv("PUMPSIM_RTC") == "volatile"
# Rig time at power-up: ticks start at 0 there, as on a board.
_BOOT_MS = int(_os.getenv("PUMPSIM_BOOT_MS") or "0")


def _settle(kind, now_ms):
    # A stepped clock does not move while the board runs, so it may be cached until the next sleep.
    global _cached_ms
    _cached_ms = now_ms if kind in (_wire.STEPPED, _wire.STEPPED_ARMED) else None
    _wire.armed = kind in (_wire.STEPPED_ARMED, _wire.RUNNING_ARMED)
    return now_ms


def forget():
    global _cached_ms
    _cached_ms = None


def now_ms():
    if _cached_ms is not None:
        return _cached_ms
    kind, value = _wire.call(_wire.NOW, 0)
    return _settle(kind, value)


def sleep_until(until_ms):
    """Sleep until pump time until_ms (-1: forever) or until serial input; returns the time."""
    global _cached_ms
    _cached_ms = None
    kind, value = _wire.call(_wire.SLEEP, until_ms)
    return _settle(kind, value)


def _rtc_ms():
    return _RTC_EPOCH_MS + now_ms() - (_BOOT_MS if _RTC_VOLATILE else 0)


def time_ns():
    return _rtc_ms() * 1000000


def time():
    return _rtc_ms() // 1000


def ticks_ms():
    return (now_ms() - _BOOT_MS) & _TICKS_MASK


def ticks_us():
    return ((now_ms() - _BOOT_MS) * 1000) & _TICKS_MASK


ticks_cpu = ticks_us


def sleep_ms(ms):
    until_ms = now_ms() + int(ms)
    while now_ms() < until_ms:
        sleep_until(until_ms)


def sleep_us(us):
    # The clock counts milliseconds: shorter waits (pulse widths) take no pump time.
    if us >= 1000:
        sleep_ms(us // 1000)


def sleep(seconds):
    sleep_ms(int(seconds * 1000))
