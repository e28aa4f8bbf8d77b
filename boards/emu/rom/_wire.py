# The virtual board's wires to its supervisor: fixed 9-byte messages on an inherited socket,
# a type byte and a signed 64-bit argument (see docs/architecture.md).
import os
import struct

_FMT = "<bq"
_fd = int(os.getenv("PUMPSIM_WIRE_FD") or "-1")
_port = open(_fd, "r+b") if _fd >= 0 else None
_out = bytearray(9 * 64)
_queued = 0
# Only the application batches: in the REPL every pin change reaches the rig at once.
batching = False
_in = bytearray(9)


def _pack(kind, arg):
    global _queued
    struct.pack_into(_FMT, _out, _queued, kind, arg)
    _queued += 9
    if _queued == len(_out) or not batching:
        _flush()


def _flush():
    global _queued
    if _queued:
        _port.write(memoryview(_out)[:_queued])
        _queued = 0


def _call(kind, arg):
    _pack(kind, arg)
    _flush()
    try:
        got = _port.readinto(_in)
    except KeyboardInterrupt:
        # Ctrl-C at the REPL while the answer was on its way: take it, or the next call would.
        _port.readinto(_in)
        raise
    if got != 9:
        # The supervisor is gone: a board without power does not run.
        raise SystemExit(1)
    return struct.unpack(_FMT, _in)


# Taken around every use of the wires once a timer runs its callbacks on a thread of its own.
_lock = None


def send(kind, arg):
    """A message that needs no answer: it waits for the next call (or flush) to go out, so that
    a stroke's pin changes travel together with the read of its feedback."""
    if _lock is None:
        return _pack(kind, arg)
    with _lock:
        _pack(kind, arg)


def flush():
    if _lock is None:
        return _flush()
    with _lock:
        _flush()


def send_now(kind, arg):
    if _lock is None:
        _pack(kind, arg)
        return _flush()
    with _lock:
        _pack(kind, arg)
        _flush()


def call(kind, arg):
    if _lock is None:
        return _call(kind, arg)
    with _lock:
        return _call(kind, arg)


def start_timers(loop):
    """Timers' callbacks run on a thread woken by the supervisor's ticks (fd PUMPSIM_TIMER_FD),
    as a timer interrupt would run them between the main program's bytecodes."""
    global _lock, _timer_port
    import _thread

    if _lock is not None:
        return
    _timer_port = open(int(os.getenv("PUMPSIM_TIMER_FD") or "-1"), "rb")
    _lock = _thread.allocate_lock()
    _thread.start_new_thread(loop, ())


_timer_port = None
_tick = bytearray(9)


def next_tick():
    """The id of the next timer due, as the supervisor ticks them in pump time."""
    if _timer_port.readinto(_tick) != 9:
        raise SystemExit(1)
    return struct.unpack(_FMT, _tick)[1]


# Message types, as bytes so that both ends agree on one table.
BOOT = ord("B")
PIN = ord("P")
SLEEP = ord("S")
NOW = ord("N")
ADC = ord("A")
INPUT = ord("I")
PWM = ord("Q")
WDT_START = ord("G")
WDT_FEED = ord("H")
RESET = ord("R")
TIMER = ord("F")  # a timer was set (id << 33 | one_shot << 32 | period_ms) or stopped (period 0)
TIMER_DONE = ord("f")  # a timer's callback has run (arg: its id)
NV_WRITE = ord("W")
POWER_LOST = ord("K")
STEPPED = ord("T")
RUNNING = ord("U")
# The same clock replies in lower case: the rig has armed a power cut at a flash write, so every
# write must ask it first.
STEPPED_ARMED = ord("t")
RUNNING_ARMED = ord("u")
FLASH_ERASE = ord("E")  # a block of the flash was erased (arg: the block)
RTC_SET = ord("C")  # the RTC was set: arg is what it now adds to the rig's clock, in ms

armed = False
