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


def send(kind, arg):
    """A message that needs no answer: it waits for the next call (or flush) to go out, so that
    a stroke's pin changes travel together with the read of its feedback."""
    global _queued
    struct.pack_into(_FMT, _out, _queued, kind, arg)
    _queued += 9
    if _queued == len(_out) or not batching:
        flush()


def flush():
    global _queued
    if _queued:
        _port.write(memoryview(_out)[:_queued])
        _queued = 0


def send_now(kind, arg):
    send(kind, arg)
    flush()


def call(kind, arg):
    send(kind, arg)
    flush()
    if _port.readinto(_in) != 9:
        # The supervisor is gone: a board without power does not run.
        raise SystemExit(1)
    return struct.unpack(_FMT, _in)


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
NV_WRITE = ord("W")
POWER_LOST = ord("K")
STEPPED = ord("T")
RUNNING = ord("U")
# The same clock replies in lower case: the rig has armed a power cut at a flash write, so every
# write must ask it first.
STEPPED_ARMED = ord("t")
RUNNING_ARMED = ord("u")

armed = False
