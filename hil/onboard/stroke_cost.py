# Runs on the board, under MicroPython (`mpremote run`), on a pump deployed without a key, whose
# application leaves the REPL free: the real firmware on its real hardware layer makes strokes as
# fast as it can, and says what each cost in heap and in CPU time. What the rig counts meanwhile
# (pulses, flash erases, FRAM writes) is read by the host around this run (hil/bench.py).
import gc
import json
import time
from array import array

import boardcfg
from pump import core, hal, therapy

BATCHES = const(10)
PER_BATCH = const(20)

hw = hal.Hardware(boardcfg)
pump = core.Pump(hw.clock, hw.motor, hw.store, hw.stroke_nl, hw.log, hw.battery,
                 (hw.eri_mv, hw.reset_mv, hw.eos_mv))
pump.boot()
pump.refill(20000, 50)
pump.program_steps(therapy.CONTINUOUS, [(0, 1200)])  # 24 mL/day: the pump's maximum rate
gc.collect()
after_boot_b = gc.mem_alloc()
heap_b = gc.mem_alloc() + gc.mem_free()
us = array("i", [0] * (BATCHES * PER_BATCH))
bytes_per_batch = []
peak_b = after_boot_b
strokes_before = pump.strokes
for batch in range(BATCHES):
    gc.collect()
    gc.disable()  # what a batch allocates stays counted
    start_b = gc.mem_alloc()
    for i in range(PER_BATCH):
        due_ms = pump.therapy.next_stroke_ms()
        t0 = time.ticks_us()
        pump.stroke(due_ms)
        us[batch * PER_BATCH + i] = time.ticks_diff(time.ticks_us(), t0)
    end_b = gc.mem_alloc()
    gc.enable()
    bytes_per_batch.append(end_b - start_b)
    peak_b = max(peak_b, end_b)
log_b = gc.mem_alloc()
print(json.dumps({
    "strokes": pump.strokes - strokes_before, "per_batch": PER_BATCH, "stroke_us": list(us),
    "bytes_per_batch": bytes_per_batch, "heap_b": heap_b, "after_boot_b": after_boot_b,
    "peak_b": peak_b, "nvram": hw.nvram, "freq_hz": __import__("machine").freq(),
}))
