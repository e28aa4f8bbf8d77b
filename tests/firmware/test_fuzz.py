"""10,000+ random and mutated frames through the firmware's framing and dispatch: nothing
escapes, every line gets one reply, and no therapy state changes."""

import json
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pump import jsonfx

from test_app import HW

VERBS = ["hello", "status", "log", "alarms", "refill", "program", "bolus", "config", "ack",
         "alarm-test", "maintenance", "warp", ""]
PAYLOADS = [
    {}, {"mode": "continuous", "daily_dose_ug": 900}, {"mode": "flex", "steps": [[0, 500], [60, 900]]},
    {"mode": "stop"}, {"volume_ul": 40000, "concentration_ug_per_ml": 50}, {"dose_ug": 100, "minutes": 1},
    {"patient": True}, {"code": "EMPTY_RESERVOIR"}, {"low_reservoir_ul": 1}, {"since": -1},
]


def valid_body(seq, verb, payload, mac):
    body = (">%d %s %s" % (seq, verb, json.dumps(payload))).encode()
    if mac:
        body += b" #" + (b"%064x" % mac)  # never the right MAC: the fuzzer has no key
    return body


def crc_line(body):
    return body + b"*%08x\n" % zlib.crc32(body)


@st.composite
def frames(draw):
    kind = draw(st.sampled_from(["valid", "mutated", "garbage"]))
    body = valid_body(draw(st.integers(0, 2**32)), draw(st.sampled_from(VERBS)),
                      draw(st.sampled_from(PAYLOADS)), draw(st.one_of(st.none(), st.integers(0, 2**256 - 1))))
    if kind == "garbage":
        return draw(st.binary(max_size=300)) + b"\n"
    line = crc_line(body)
    if kind == "mutated":
        data = bytearray(line[:-1])
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
            i = draw(st.integers(0, max(0, len(data) - 1)))
            if op == "flip" and data:
                data[i] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del data[i:]
            elif op == "insert":
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            else:
                data[i:i] = data[i:i + draw(st.integers(1, 20))]
        line = bytes(data) + b"\n"
    return line


def therapy_of(app):
    status = app.status()
    for noise in ("noise_bytes", "auth_failures", "programming_locked_s", "clock_s", "clock_ms"):
        status.pop(noise)
    return jsonfx.dumps(status)


def test_fuzzed_frames_change_nothing(tmp_path):
    from pump import app as app_module

    from conftest import CountingMotor, FakeClock

    app = app_module.App(HW(FakeClock(), CountingMotor(), str(tmp_path / "data")))
    app.pump.boot()
    app.pump.refill(20_000, 2000)
    app.pump.program_steps("continuous", [(0, 500)])
    before = therapy_of(app)
    seen = {"frames": 0}

    @settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(frames(), min_size=2, max_size=4))
    def fuzz(lines):
        for line in lines:
            items = []
            app.framer.feed(line, items)
            seen["frames"] += 1
            newlines = line.count(b"\n") + line.count(b"\r")  # a \r ends a line too
            assert len(items) <= newlines
            for item in items:
                reply = app.handle(item)
                assert reply.endswith(b"\n") and reply.isascii()
                head = reply.split(b" ", 2)[1]
                assert head == b"err" or item[1].verb in ("hello", "status", "log", "alarms")
            assert app.running, "a fuzzed frame reached maintenance"
        assert therapy_of(app) == before

    fuzz()
    assert seen["frames"] >= 10_000
