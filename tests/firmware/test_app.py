"""Requests through the application's dispatch table: one reply each, refusals change nothing."""

import hashlib
import hmac
import json
import zlib

import pytest

from pump import app as app_module
from pump import jsonfx

KEY = bytes(range(32))


class Link:
    def __init__(self):
        self.out = []

    def write(self, data):
        self.out.append(data)


class HW:
    def __init__(self, clock, motor, store_dir):
        from pump.eventlog import EventLog
        from pump.store import Store

        self.board = "test"
        self.fw = "0.0.0-test"
        self.micropython = "0.0.0"
        self.stroke_nl = 500
        self.clock = clock
        self.motor = motor
        self.store = Store(store_dir)
        self.log = EventLog(store_dir)
        self.key = KEY
        self.reset_cause = "power-on"
        self.link = Link()
        self.battery = None
        self.eri_mv, self.reset_mv, self.eos_mv = 2850, 2750, 2700
        self.buzzer = Buzzer()
        self.max_sleep_ms = 0


class Buzzer:
    def __init__(self):
        self.played = []

    def tone(self, hz):
        self.played.append(hz)

    def off(self):
        self.played.append(0)


@pytest.fixture
def app(tmp_path, clock, motor):
    a = app_module.App(HW(clock, motor, str(tmp_path / "data")))
    a.pump.boot()
    return a


def request(app, seq, verb, payload, sign=True):
    body = (">%d %s %s" % (seq, verb, json.dumps(payload))).encode()
    if sign:
        nonce = app.session.nonce
        body += b" #" + hmac.new(KEY, nonce.encode() + b" " + body, hashlib.sha256).hexdigest().encode()
    items = []
    app.framer.feed(body + b"*%08x\n" % zlib.crc32(body), items)
    (item,) = items
    line = app.handle(item)
    head, payload = line.rstrip(b"\n").rsplit(b"*", 1)[0].split(b" ", 2)[1:]
    return head.decode(), json.loads(payload)


def test_hello_then_signed_programming(app):
    verb, hello = request(app, 1, "hello", {}, sign=False)
    assert verb == "ok" and len(hello["nonce"]) == 32
    verb, status = request(app, 2, "refill", {"volume_ul": 20000, "concentration_ug_per_ml": 2000})
    assert verb == "ok" and status["reservoir_ul"] == 20000.0
    verb, status = request(app, 3, "program", {"mode": "continuous", "daily_dose_ug": 500})
    assert status["state"] == "infusing" and status["rate_nl_per_day"] == 250_000


@pytest.mark.parametrize("verb, payload, code", [
    ("program", {"mode": "continuous", "daily_dose_ug": 0}, "E_ARG"),
    ("program", {"mode": "continuous", "daily_dose_ug": -5}, "E_ARG"),
    ("program", {"mode": "continuous", "daily_dose_ug": 5.5}, "E_ARG"),
    ("program", {"mode": "continuous", "daily_dose_ug": True}, "E_ARG"),
    ("program", {"mode": "continuous", "daily_dose_ug": 5000}, "E_LIMIT"),
    ("program", {"mode": "bogus", "daily_dose_ug": 500}, "E_ARG"),
    ("refill", {"volume_ul": 20000, "concentration_ug_per_ml": 0}, "E_ARG"),
    ("refill", {"volume_ul": 50000, "concentration_ug_per_ml": 2000}, "E_LIMIT"),
    ("config", {"low_reservoir_ul": 1500, "empty_reservoir_ul": 1500}, "E_ARG"),
    ("config", {"low_reservoir_ul": 100, "empty_reservoir_ul": 500}, "E_LIMIT"),
    ("warp", {}, "E_UNKNOWN"),
])
def test_refusals_name_the_problem_and_change_nothing(app, verb, payload, code):
    request(app, 1, "hello", {}, sign=False)
    request(app, 2, "refill", {"volume_ul": 20000, "concentration_ug_per_ml": 2000})
    request(app, 3, "program", {"mode": "continuous", "daily_dose_ug": 500})
    before = app.status()
    kind, reply = request(app, 4, verb, payload)
    assert kind == "err" and reply["code"] == code
    if code == "E_LIMIT":
        assert reply["limit"]
    assert jsonfx.dumps(app.status()) == jsonfx.dumps(before)


def test_unsigned_therapy_change_is_refused_and_counted(app):
    request(app, 1, "hello", {}, sign=False)
    kind, reply = request(app, 2, "program", {"mode": "continuous", "daily_dose_ug": 500}, sign=False)
    assert reply["code"] == "E_AUTH"
    assert app.status()["auth_failures"] == 1
    assert app.pump.therapy.daily_dose_ug() == 0


def test_maintenance_ends_the_loop(app):
    request(app, 1, "hello", {}, sign=False)
    kind, reply = request(app, 2, "maintenance", {})
    assert kind == "ok" and app.running is False


def test_five_failed_authentications_lock_programming(app, clock):
    request(app, 1, "hello", {}, sign=False)
    for seq in range(2, 7):
        kind, reply = request(app, seq, "program", {"mode": "continuous", "daily_dose_ug": 500}, sign=False)
        assert reply["code"] == "E_AUTH"
    kind, reply = request(app, 7, "program", {"mode": "continuous", "daily_dose_ug": 500})
    assert reply["code"] == "E_LOCKED"  # even with the right key, for a while
    assert app.status()["programming_locked_s"] == 600
    events = [e["event"] for e in app.pump.log.read()]
    assert events.count("auth_failure") == 1 and events.count("auth_lockout") == 1
    clock.now += 600_000
    kind, reply = request(app, 8, "program", {"mode": "continuous", "daily_dose_ug": 500})
    assert kind == "ok" and reply["daily_dose_ug"] == 500  # unlocked again


def test_a_full_week_of_flex_steps_fits_in_one_frame(app):
    request(app, 1, "hello", {}, sign=False)
    request(app, 2, "refill", {"volume_ul": 20000, "concentration_ug_per_ml": 2000})
    day = [[m * 110, 1000 + m] for m in range(13)]
    kind, status = request(app, 3, "program", {"mode": "flex", "steps": day,
                                               "week": {str(d): day for d in range(7)}})
    assert kind == "ok" and len(status["week"]) == 7 and len(status["steps"]) == 13
