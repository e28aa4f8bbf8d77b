"""10,000 mutated frames and raw garbage, control bytes included, at a running virtual board: it
never crashes or stops pumping, it answers with errors, and its therapy does not change."""

import random
import time

import pytest
import serial

from pumpsim.hil.fuzz import fuzzed_line
from pumpsim.hil.verify import DAY_MS, check_delivered, continuous_volume_nl

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

FRAMES = 10_000


def test_ten_thousand_fuzzed_frames_change_nothing(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    keep = ("mode", "daily_dose_ug", "concentration_ug_per_ml", "steps", "boluses", "patient_bolus",
            "low_reservoir_ul", "empty_reservoir_ul", "tubing_ul", "catheter_ul")
    before = {k: client.status()[k] for k in keep}
    boots = bench.rig.measure()["boots"]
    rng = random.Random(4)
    line = serial.serial_for_url(bench.port, timeout=0.01)
    replies = b""
    sent = 0
    try:
        while sent < FRAMES:
            batch = b"".join(fuzzed_line(rng) for _ in range(50))
            sent += 50
            line.write(batch)
            replies += line.read(1 << 20)
        # Every reply is read before the next request, or a late one would become its answer.
        deadline, quiet_since = time.monotonic() + 60, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
            chunk = line.read(1 << 20)
            replies += chunk
            if chunk:
                quiet_since = time.monotonic()
    finally:
        line.close()
    answers = [r for r in replies.split(b"\n") if r.startswith(b"<")]
    assert len(answers) >= FRAMES * 0.9, len(answers)
    assert all(b" err " in a or b" ok " in a for a in answers)
    assert not [a for a in answers if b" ok " in a and b'"state"' not in a]  # only status answered ok
    assert bench.rig.measure()["boots"] == boots  # never crashed or reset
    status = client.status()
    assert {k: status[k] for k in keep} == before
    assert status["state"] == "infusing"
    start = bench.rig.measure()
    bench.advance_days(1)
    end = bench.rig.measure()
    check_delivered(end["delivered_nl"] - start["delivered_nl"], continuous_volume_nl(500, 2000, DAY_MS),
                    end["stroke_nl"])
    assert [e["event"] for e in client.log()].count("auth_lockout") >= 1
