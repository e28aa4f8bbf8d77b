# Pump time on the virtual board: while the application runs the rig owns the clock, so every
# reading and every sleep goes through the wires. At the REPL sleeps and ticks take real time, as
# on a board; the RTC (time(), localtime()) reads the rig's clock there too, which follows the wall
# clock or, stepped, stays put. Shadows the built-in time module (reachable as utime).
import os as _os
import utime as _utime

import _wire

_cached_ms = None

ticks_add = _utime.ticks_add
ticks_diff = _utime.ticks_diff

# A board keeps no time zone: its local time is UTC, read from its RTC (the unix port's would be
# the host's clock in the host's zone).


def gmtime(secs=None):
    return _utime.gmtime(time() if secs is None else secs)


localtime = gmtime


def mktime(t):
    """Seconds since 1970 of a UTC (year, month, day, hour, minute, second, ...) tuple."""
    year, month = t[0], t[1]
    # Days from 1970-01-01 (a proleptic Gregorian count, March-based years).
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + t[2] - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + t[3] * 3600 + t[4] * 60 + t[5]

_TICKS_MASK = 0x3FFFFFFF
# The RTC reads 2021-01-01 (ms since 1970) plus rig time: a kept RTC, set once and never lost.
# A volatile one (rig rtc volatile) restarts there at every power-up and reset, as a Pico's does.
_RTC_EPOCH_MS = 1609459200000
_RTC_VOLATILE = _os.getenv("PUMPSIM_RTC") == "volatile"
# Rig time at power-up: ticks start at 0 there, as on a board.
_BOOT_MS = int(_os.getenv("PUMPSIM_BOOT_MS") or "0")
# What set the RTC (machine.RTC().datetime(...)) added to it; the rig keeps it across resets.
rtc_offset_ms = int(_os.getenv("PUMPSIM_RTC_OFFSET_MS") or "0")
# True while the application runs (boot_rom): the rig owns time. Else the REPL's ticks run on in
# real time from where the application left them (_repl_at: (ticks_ms, ticks_us, real ticks_us)).
app = False
_repl_at = (0, 0, _utime.ticks_us())


def to_repl():
    """The application has returned to the REPL: ticks go on from here in real time."""
    global app, _repl_at
    if app:
        elapsed = now_ms() - _BOOT_MS
        _repl_at = (elapsed, elapsed * 1000, _utime.ticks_us())
    app = False


def _repl_us():
    return _utime.ticks_diff(_utime.ticks_us(), _repl_at[2])


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
    return _RTC_EPOCH_MS + rtc_offset_ms + now_ms() - (_BOOT_MS if _RTC_VOLATILE else 0)


def set_rtc_ms(ms):
    """Set the RTC to ms since 1970: the rig keeps the difference (as the board's RTC would)."""
    global rtc_offset_ms
    rtc_offset_ms += ms - _rtc_ms()
    _wire.send_now(_wire.RTC_SET, rtc_offset_ms)


def time_ns():
    return _rtc_ms() * 1000000


def time():
    return _rtc_ms() // 1000


def ticks_ms():
    if not app:
        return (_repl_at[0] + _repl_us() // 1000) & _TICKS_MASK
    return (now_ms() - _BOOT_MS) & _TICKS_MASK


def ticks_us():
    if not app:
        return (_repl_at[1] + _repl_us()) & _TICKS_MASK
    return ((now_ms() - _BOOT_MS) * 1000) & _TICKS_MASK


ticks_cpu = ticks_us


def sleep_ms(ms):
    if not app:
        return _utime.sleep_ms(ms)
    until_ms = now_ms() + int(ms)
    while now_ms() < until_ms:
        sleep_until(until_ms)


def sleep_us(us):
    if not app:
        return _utime.sleep_us(us)
    # The clock counts milliseconds: shorter waits (pulse widths) take no pump time.
    if us >= 1000:
        sleep_ms(us // 1000)


def sleep(seconds):
    if not app:
        return _utime.sleep(seconds)
    sleep_ms(int(seconds * 1000))
