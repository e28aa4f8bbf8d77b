# Runs the firmware's pure modules on the interpreter it ships on (the MicroPython unix port) and
# prints what they computed, as one JSON line; the pytest side checks it with CPython's own tools.
# Usage: micropython pure_check.py DATA_DIR INPUTS_JSON
import binascii
import json
import os
import sys

import fakes
from pump import fsm, link
from pump.core import Pump
from pump.errors import TransitionError
from pump.eventlog import EventLog
from pump.jsonfx import Milli
from pump.store import Store

data_dir = sys.argv[1]
try:
    os.mkdir(data_dir)
except OSError:
    pass  # it exists
with open(sys.argv[2]) as f:
    inputs = json.load(f)
unhex = binascii.unhexlify
out = {}

out["hmac"] = [link.hexlify(link.hmac_sha256(unhex(k), unhex(m))) for k, m in inputs["hmac"]]
out["crc"] = [link.crc_hex(unhex(b)) for b in inputs["crc"]]

framer = link.Framer()
items = []
for line in inputs["lines"]:
    framer.feed(unhex(line), items)
out["lines"] = [[seq, getattr(r, "verb", None) or r.code] for seq, r in items]
out["noise_bytes"] = framer.noise_bytes

out["encoded"] = link.encode("<", 5, "ok", {"reservoir_ul": Milli(17500000), "unit": "\u00b5g",
                                            "n": Milli(-1)}).decode()

class Ctx:
    def can_infuse(self):
        return True

    def can_infuse_but_stalled(self):
        return True


transitions = {}
for state in fsm.STATES:
    for trigger in fsm.TRIGGERS:
        m = fsm.Machine(Ctx(), state)
        try:
            transitions[trigger + " " + state] = m.fire(trigger)
        except TransitionError:
            transitions[trigger + " " + state] = "refused " + m.state
out["fsm"] = transitions


def schedule(dose_ug, conc, days):
    clock, motor = fakes.FakeClock(), fakes.CountingMotor()
    pump = Pump(clock, motor, fakes.MemoryStore(), 500, EventLog(data_dir))
    pump.boot()
    pump.refill(40000, conc)
    pump.program_steps("continuous", [(0, dose_ug)])
    times = []
    end_ms = days * fakes.DAY_MS
    while True:
        due = pump.next_event_ms()
        if due is None or due > end_ms:
            break
        clock.now = due
        before = motor.strokes
        pump.run_due(due)
        if motor.strokes > before:
            times.append(due)
    return {"strokes": motor.strokes, "counted": pump.strokes, "first": times[:5],
            "last": times[-1], "reservoir_nl": pump.reservoir_nl}


out["schedule_500_2000"] = schedule(500, 2000, 10)
out["schedule_333_500"] = schedule(333, 500, 1)

store_dir = data_dir + "/store"
store = Store(store_dir)
store.save(b"older")  # a change of settings: both slots
store.save(b"newer", True)  # a stroke's record: one slot
loads = []
for name in sorted(os.listdir(store_dir)):
    path = store_dir + "/" + name
    with open(path, "rb") as f:
        whole = f.read()
    for damage in (whole[: len(whole) // 2], whole[:-5] + bytes([whole[-5] ^ 1]) + whole[-4:]):  # torn; CRC
        with open(path, "wb") as f:
            f.write(damage)
        loaded = Store(store_dir).load()
        loads.append(None if loaded is None else loaded.decode())
    with open(path, "wb") as f:
        f.write(whole)
out["store_loads"] = loads
out["store_intact"] = Store(store_dir).load().decode()

print(json.dumps(out))
