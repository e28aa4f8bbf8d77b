# The rig's main loop on its Pico: requests from the host on its USB CDC, one line each, the
# edge counter polled every millisecond while each motor attempt is decided anew (else once a
# gate: the PIO counts every edge), the buzzer's edges counted every gate. Ctrl-C is data here
# (a garbage byte must not stop the rig); the request `repl` leaves the loop for mpremote.
import select
import sys
import time

import micropython
from micropython import const

from rig.core import Clock, Rig, ToneMeter

_GATE_MS = const(20)
_LINE_MAX = const(256)


def run(hw, full_scale_mv, stroke_nl, board="rpi_pico"):
    clock = Clock(time.ticks_ms, time.ticks_diff)
    rig = Rig(hw, clock, full_scale_mv, stroke_nl, board)
    meter = ToneMeter(rig.tones, _GATE_MS)
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    line = bytearray()
    gate_end_ms = clock.now_ms() + _GATE_MS
    micropython.kbd_intr(-1)
    try:
        while True:
            # Asleep until a request comes, or the next poll of the counter is due.
            wait_ms = min(rig.poll_every_ms(_GATE_MS), max(0, gate_end_ms - clock.now_ms()))
            if poll.poll(wait_ms):
                c = sys.stdin.buffer.read(1)
                if c in (b"\n", b"\r"):
                    if bytes(line).strip() == b"repl":
                        sys.stdout.write('{"repl": true}\n')
                        return
                    if line:
                        sys.stdout.write(rig.handle(bytes(line)) + "\n")
                    line = bytearray()
                elif len(line) <= _LINE_MAX:  # longer: refused whole when it ends
                    line.extend(c)
            rig.poll()
            now_ms = clock.now_ms()
            if now_ms >= gate_end_ms:
                meter.gate(now_ms, hw.buzzer_edges())
                gate_end_ms = now_ms + _GATE_MS  # after a late gate, no gates of nothing to catch up
    finally:
        micropython.kbd_intr(3)
