"""The firmware on the MicroPython unix port, the interpreter it ships on: its pure modules, the
hardware layer's byte I/O, app.run end to end on a fake board, and mpy-cross on every file."""

import hashlib
import hmac
import json
import math
import random
import subprocess
import sys
import zlib
from fractions import Fraction

import pytest

from .conftest import FIRMWARE, UNIT, run_script
from .fakes import DAY_MS, frame
from .test_fsm_table import SPEC, STATES, TRIGGERS


def crc_frame(body):
    return body + b"*%08x\n" % zlib.crc32(body)


def test_pure_modules_on_micropython(micropython, tmp_path):
    rng = random.Random(7)
    hmac_cases = [(rng.randbytes(k), rng.randbytes(m)) for k in (0, 32, 64, 65, 100) for m in (0, 3, 64, 300)]
    crc_bodies = [b"", b">1 status {}", bytes(range(256))]
    lines = [frame(1, "status"), b"\x03\x03noise" + frame(2, "hello", '{"a":[1,2]}'),
             b">3 status {}*00000000\n", b">4 status {}\n", crc_frame(b">5 status [1]"),
             crc_frame(b">6 status {\x03}"), crc_frame(b">7 status {}\xb5"),
             crc_frame(b'>8 status {"pad":"' + b"x" * 2100 + b'"}'), b"junk\n", b"\r\n",
             crc_frame(b">4294967296 status {}"), crc_frame(b">4294967295 status {}")]
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({
        "hmac": [[k.hex(), m.hex()] for k, m in hmac_cases],
        "crc": [b.hex() for b in crc_bodies],
        "lines": [line.hex() for line in lines],
    }))
    out = json.loads(run_script(micropython, "pure_check.py", tmp_path / "data", inputs).splitlines()[-1])

    assert out["hmac"] == [hmac.new(k, m, hashlib.sha256).hexdigest() for k, m in hmac_cases]
    assert out["crc"] == ["%08x" % zlib.crc32(b) for b in crc_bodies]
    assert out["lines"] == [[1, "status"], [2, "hello"], [0, "E_CRC"], [0, "E_FRAME"], [0, "E_FRAME"],
                            [0, "E_FRAME"], [0, "E_FRAME"], [0, "E_FRAME"], [0, "E_FRAME"],
                            [0, "E_FRAME"], [4294967295, "status"]]
    assert out["noise_bytes"] == len(b"\x03\x03noise") + len(b"junk")

    line = out["encoded"].encode()
    assert line.isascii() and line.endswith(b"\n")
    body, crc = line[:-1].rsplit(b"*", 1)
    assert crc == b"%08x" % zlib.crc32(body)
    assert b'"reservoir_ul":17500.000' in body and b'"n":-0.001' in body
    assert json.loads(body.split(b" ", 2)[2])["unit"] == "\u00b5g"

    assert out["fsm"] == {"%s %s" % (t, s): SPEC.get((t, s), "refused " + s) for s in STATES for t in TRIGGERS}

    even = out["schedule_500_2000"]
    assert even["strokes"] == even["counted"] == 5000
    assert even["first"] == [172_800 * k for k in range(1, 6)] and even["last"] == 10 * DAY_MS
    assert even["reservoir_nl"] == 40_000_000 - 5000 * 500
    uneven = out["schedule_333_500"]
    rate = Fraction(333 * 10**6, 500) / DAY_MS  # nL per ms
    assert uneven["first"] == [math.ceil(k * 500 / rate) for k in range(1, 6)]
    assert uneven["strokes"] == Fraction(333 * 10**6, 500) // 500

    assert sorted(out["store_loads"]) == ["newer", "newer", "older", "older"]
    assert out["store_intact"] == "newer"


def test_the_hardware_layer_reads_every_byte_as_data(micropython):
    sent = b"ab\x03\x00>1 status {}\n\xff"
    path = "%s:%s" % (FIRMWARE, UNIT)
    result = subprocess.run([micropython, str(UNIT / "scripts" / "hal_check.py")], input=sent,
                            capture_output=True, env={"MICROPYPATH": path}, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    out = json.loads(result.stdout.decode().splitlines()[-1])
    assert out["ready"] and bytes(out["data"]) == sent
    assert out["step_levels"] == [0, 1, 0]  # low at start, then one rising edge per stroke
    assert out["turned"] is False and out["now_is_int"]


def interpreters():
    return ["micropython", "cpython"]


@pytest.mark.parametrize("interpreter", interpreters())
def test_app_run_end_to_end_on_a_fake_board(request, tmp_path, interpreter):
    binary = request.getfixturevalue("micropython") if interpreter == "micropython" else sys.executable
    out = json.loads(run_script(binary, "run_app.py", tmp_path / "data").splitlines()[-1])

    # What the rig counts: 500 µg/day at 2000 µg/mL in 500 nL strokes, for 10 days.
    assert out["motor_strokes"] == 5000
    # One wait per stroke and a few for the line: the firmware sleeps to its next event.
    assert 5000 <= out["waits"] <= 5100
    assert out["kbd_intr_while_running"] == [-1] and out["kbd_intr_after"] == 3
    assert out["watchdog_kept_fed"] and not out["running"]

    parsed = []
    for text in out["lines"]:
        assert text.isascii() and text.endswith("\n")
        body, crc = text[:-1].rsplit("*", 1)
        assert crc == "%08x" % zlib.crc32(body.encode())
        head, verb, payload = body.split(" ", 2)
        parsed.append((head[0], int(head[1:]), verb, json.loads(payload), payload))
    replies = [p for p in parsed if p[0] == "<"]
    events = [p for p in parsed if p[0] == "!"]
    assert [(seq, verb) for _, seq, verb, _, _ in replies] == [
        (1, "ok"), (2, "ok"), (3, "ok"), (0, "err"), (0, "err"), (5, "ok"), (6, "ok"), (7, "err"), (8, "ok")]
    assert [r[3]["code"] for r in replies if r[2] == "err"] == ["E_FRAME", "E_CRC", "E_ARG"]

    day1, day10 = replies[5][3], replies[6][3]
    assert day1["strokes"] == 500 and day1["state"] == "infusing"
    assert day10["strokes"] == 5000 and day10["delivered_nl"] == 2_500_000
    assert day10["reservoir_nl"] == 17_500_000 and day10["reservoir_ul"] == 17500.0
    assert '"reservoir_ul":17500.000' in replies[6][4] and '"delivered_ul":2500.000' in replies[6][4]
    assert day10["clock_ms"] == 60_000 + 10 * DAY_MS and day10["noise_bytes"] == 9
    assert replies[-1][3] == {"repl": True, "minutes": 30, "until_s": (60_000 + 10 * DAY_MS + 2 + 1_800_000) // 1000}

    # The empty pump alarmed at boot; the refill cleared it: one event each, numbered from 1.
    assert [seq for _, seq, _, _, _ in events] == [1, 2, 3, 4]
    raised = {(e["code"], e["priority"]) for _, _, _, e, _ in events[:2] if e["active"]}
    cleared = {(e["code"], e["priority"]) for _, _, _, e, _ in events[2:] if not e["active"]}
    assert raised == cleared == {("EMPTY_RESERVOIR", "high"), ("LOW_RESERVOIR", "medium")}
    assert all(e["t_s"] in (0, 2) for _, _, _, e, _ in events)


def test_every_firmware_file_compiles_with_mpy_cross(mpy_cross, tmp_path):
    sources = sorted(FIRMWARE.rglob("*.py"))
    assert {"main.py", "hal.py", "app.py", "link.py", "store.py", "fsm.py"} <= {p.name for p in sources}
    for source in sources:
        target = tmp_path / (source.stem + ".mpy")
        result = subprocess.run([mpy_cross, "-o", str(target), str(source)], capture_output=True, text=True)
        assert result.returncode == 0, "%s: %s" % (source.name, result.stderr)
        assert target.read_bytes()[:1] == b"M"
