# pump.app.run end to end on a fake board: the fake clock jumps to each deadline the firmware
# waits for, the fake link plays a script of frames. Prints what the rig and the line saw.
# Usage: micropython run_app.py DATA_DIR
import json
import sys

import fakes
from pump import app

KEY = bytes(range(32))
DAY_MS = fakes.DAY_MS
T0 = 60000  # programmed a minute after boot


def sign(seq, verb, payload):
    return lambda line: fakes.signed(KEY, line.nonce(), seq, verb, payload)


script = [
    (1000, fakes.frame(1, "hello")),
    (2000, sign(2, "refill", '{"volume_ul":20000,"concentration_ug_per_ml":2000}')),
    (T0, sign(3, "program", '{"mode":"continuous","daily_dose_ug":500}')),
    (T0 + DAY_MS, b"\x03\x03garbage\n>4 status {}*00000000\n" + fakes.frame(5, "status")),
    (T0 + 10 * DAY_MS, fakes.frame(6, "status")),
    (T0 + 10 * DAY_MS + 1, sign(7, "program", '{"mode":"continuous","daily_dose_ug":true}')),
    (T0 + 10 * DAY_MS + 2, sign(8, "maintenance", "{}")),
]
hw = fakes.FakeHardware(sys.argv[1], KEY, script)
hw.link.max_waits = 20000
kbd_during = []
real_write = hw.link.write


def write(data):
    kbd_during.append(hw.link.kbd_intr)
    real_write(data)


hw.link.write = write
result = app.run(hw)
print(json.dumps({
    "motor_strokes": hw.motor.strokes,
    "waits": hw.link.waits,
    "clock_ms": hw.clock.now,
    "kbd_intr_while_running": sorted(set(kbd_during)),
    "kbd_intr_after": hw.link.kbd_intr,
    "watchdog_kept_fed": hw.watchdog.kept_fed,
    "running": result.running,
    "lines": [line.decode() for line in hw.link.out],
}))
