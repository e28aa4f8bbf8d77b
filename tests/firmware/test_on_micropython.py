"""The same firmware logic on the real MicroPython unix port, the interpreter it ships on."""

import hashlib
import hmac
import json
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from pumpsim.targets.emu.supervisor import find_micropython

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"

SCRIPT = r"""
import json, os, sys
from pump import link, therapy, store, app, jsonfx, eventlog

KEY = bytes(range(32))
out = {}
out["hmac"] = link.hexlify(link.hmac_sha256(KEY, b"abc"))
out["crc"] = link.crc_hex(b">1 status {}")
out["ascii"] = jsonfx.dumps({"reason": "2400 \u00b5g/day"})

t = therapy.Therapy(500, 6000)
t.concentration_ug_per_ml = 2000
t.mode, t.steps = therapy.CONTINUOUS, [(0, 500)]
n = 0
while t.next_stroke_ms() <= 90 * therapy.DAY_MS:
    t.stroked(t.next_stroke_ms(), 500)
    n += 1
out["strokes_90d"] = n

class Clock:
    now = 0
    def now_ms(self):
        return self.now

class Motor:
    strokes = 0
    def stroke(self):
        self.strokes += 1
        return True

class Link:
    def __init__(self):
        self.out = []
    def write(self, data):
        self.out.append(data)

class Buzzer:
    def tone(self, hz):
        pass
    def off(self):
        pass

class HW:
    board = "test"
    fw = "0.0.0-test"
    micropython = "0.0.0"
    stroke_nl = 500
    key = KEY
    reset_cause = "power-on"
    battery = None
    eri_mv, reset_mv, eos_mv = 2850, 2750, 2700
    max_sleep_ms = 0

hw = HW()
hw.clock, hw.motor, hw.link, hw.buzzer = Clock(), Motor(), Link(), Buzzer()
hw.store = store.Store(sys.argv[1])
hw.log = eventlog.EventLog(sys.argv[1])
a = app.App(hw)
a.pump.boot()
items = []
a.framer.feed(FRAMES[0], items)
hello = a.handle(items.pop())
nonce = json.loads(hello.split(b" ", 2)[2].rsplit(b"*", 1)[0])["nonce"]
def signed(seq, verb, payload):
    body = (">%d %s %s" % (seq, verb, payload)).encode()
    body += b" #" + link.hexlify(link.hmac_sha256(KEY, nonce.encode() + b" " + body)).encode()
    return body + b"*" + link.crc_hex(body).encode() + b"\n"
for seq, verb, payload in ((2, "refill", '{"volume_ul":20000,"concentration_ug_per_ml":2000}'),
                           (3, "program", '{"mode":"continuous","daily_dose_ug":500}')):
    a.framer.feed(signed(seq, verb, payload), items)
    reply = a.handle(items.pop())
    assert b" ok " in reply, reply
hw.clock.now = 10 * therapy.DAY_MS
a.pump.run_due(hw.clock.now)
out["motor_10d"] = hw.motor.strokes
a.framer.feed(FRAMES[1], items)
out["status"] = a.handle(items.pop()).decode()
print(json.dumps(out))
"""


def test_firmware_logic_runs_on_the_unix_port(tmp_path):
    frames = []
    for seq, verb in ((1, "hello"), (4, "status")):
        body = (">%d %s {}" % (seq, verb)).encode()
        frames.append(body + b"*%08x\n" % zlib.crc32(body))
    script = tmp_path / "check.py"
    script.write_text("FRAMES = %r\n" % frames + SCRIPT)
    env = dict(os.environ, MICROPYPATH=str(FIRMWARE))
    result = subprocess.run([find_micropython(), str(script), str(tmp_path / "data")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["hmac"] == hmac.new(bytes(range(32)), b"abc", hashlib.sha256).hexdigest()
    assert out["crc"] == "%08x" % zlib.crc32(b">1 status {}")
    assert out["strokes_90d"] == 45_000
    assert out["ascii"].isascii() and json.loads(out["ascii"]) == {"reason": "2400 µg/day"}
    assert out["motor_10d"] == 5000
    line = out["status"].rstrip("\n")
    body, crc = line.rsplit("*", 1)
    assert crc == "%08x" % zlib.crc32(body.encode())
    status = json.loads(body.split(" ", 2)[2])
    assert status["reservoir_ul"] == 17500.0 and status["delivered_nl"] == 2_500_000


def test_every_firmware_file_compiles_with_mpy_cross(tmp_path):
    from pumpsim import deploy

    out = deploy.build("emu", out_dir=tmp_path / "emu")
    sources = sorted(p.stem for p in (FIRMWARE / "pump").glob("*.py"))
    assert sorted(p.stem for p in (out / "pump").glob("*.mpy")) == sources
    assert (out / "boardcfg.mpy").exists() and (out / "main.py").read_text() == (FIRMWARE / "main.py").read_text()
    for path in (out / "pump").glob("*.mpy"):
        assert path.read_bytes()[:2] == b"M\x06"  # .mpy format 6, what MicroPython 1.2x loads


@pytest.mark.parametrize("board, stroke_nl", [("emu", 500), ("rpi_pico", 250)])
def test_board_data_becomes_boardcfg(board, stroke_nl):
    from pumpsim import deploy

    info, pins = deploy.board_config(board)
    source = deploy.boardcfg_source(info, pins, "0.0.0")
    namespace = {}
    exec(source, namespace)
    assert namespace["STROKE_NL"] == stroke_nl
    assert {"MOTOR_STEP", "MOTOR_FEEDBACK", "BATTERY_ADC", "BUZZER"} <= set(namespace["PINS"])
