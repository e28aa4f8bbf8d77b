"""Requests through the dispatch table: one reply each; a refused request changes nothing."""

import json
import zlib

import pytest

from .helpers import Bench

PROGRAM = {"mode": "continuous", "daily_dose_ug": 500}
REFILL = {"volume_ul": 20000, "concentration_ug_per_ml": 2000}


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path / "data").infusing()


REFUSED = [
    ("program", dict(PROGRAM, daily_dose_ug=0), "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug=-5), "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug=True), "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug=False), "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug=500.0), "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug=2.5), "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug="500"), "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug=None), "E_ARG", None),
    ("program", {"mode": "continuous"}, "E_ARG", None),
    ("program", dict(PROGRAM, daily_dose_ug=2001), "E_LIMIT", "max_daily_dose_ug"),
    ("program", dict(PROGRAM, daily_dose_ug=10**30), "E_LIMIT", "max_daily_dose_ug"),
    ("program", dict(PROGRAM, mode="turbo"), "E_ARG", None),
    ("program", dict(PROGRAM, mode=["continuous"]), "E_ARG", None),
    ("program", dict(PROGRAM, mode={"continuous": 1}), "E_ARG", None),
    ("program", {}, "E_ARG", None),
    ("refill", dict(REFILL, concentration_ug_per_ml=0), "E_ARG", None),
    ("refill", dict(REFILL, concentration_ug_per_ml=-2000), "E_ARG", None),
    ("refill", dict(REFILL, concentration_ug_per_ml=True), "E_ARG", None),
    ("refill", dict(REFILL, concentration_ug_per_ml=2000.0), "E_ARG", None),
    ("refill", dict(REFILL, concentration_ug_per_ml=3), "E_LIMIT", "allowed_concentrations"),
    ("refill", dict(REFILL, concentration_ug_per_ml=2001), "E_LIMIT", "allowed_concentrations"),
    ("refill", dict(REFILL, volume_ul=0), "E_ARG", None),
    ("refill", dict(REFILL, volume_ul=-1), "E_ARG", None),
    ("refill", dict(REFILL, volume_ul=1.5), "E_ARG", None),
    ("refill", dict(REFILL, volume_ul=40001), "E_LIMIT", "reservoir_capacity_ul"),
    ("refill", {"volume_ul": 20000}, "E_ARG", None),
    ("config", {"low_reservoir_ul": 1500, "empty_reservoir_ul": 1500}, "E_ARG", None),
    ("config", {"low_reservoir_ul": 999}, "E_LIMIT", "low_reservoir_ul"),
    ("config", {"catheter_ul": 501}, "E_LIMIT", "catheter_ul"),
    ("config", {"tubing_ul": 100, "catheter_ul": 5000}, "E_LIMIT", "catheter_ul"),
    ("config", {"bogus": 1, "tubing_ul": 100}, "E_ARG", None),
    ("config", {"low_reservoir_ul": True}, "E_ARG", None),
    ("config", {}, "E_ARG", None),
    ("ack", {"code": ["EMPTY_RESERVOIR"]}, "E_ARG", None),
    ("ack", {"code": "NOT_AN_ALARM"}, "E_ARG", None),
    ("warp", {}, "E_UNKNOWN", None),
]


@pytest.mark.parametrize("verb, payload, code, limit", REFUSED,
                         ids=["%s %s" % (r[0], json.dumps(r[1])) for r in REFUSED])
def test_a_refused_request_names_the_problem_and_changes_nothing(bench, verb, payload, code, limit):
    therapy, flash = bench.therapy(), bench.flash()
    kind, reply = bench.request(verb, payload)
    assert kind == "err" and reply["code"] == code and reply["reason"]
    assert reply.get("limit") == limit
    assert bench.therapy() == therapy and bench.flash() == flash


def test_the_limits_themselves_are_allowed(bench):
    assert bench.request("program", dict(PROGRAM, daily_dose_ug=2000))[1]["daily_dose_ug"] == 2000
    assert bench.request("refill", dict(REFILL, volume_ul=40000))[1]["reservoir_nl"] == 40_000_000


# Every field of every verb, with every JSON type: never an exception out of the dispatch.
FIELDS = {
    "program": ["mode", "daily_dose_ug", "steps", "week", "dose_ug", "lockout_minutes", "max_per_day"],
    "refill": ["volume_ul", "concentration_ug_per_ml", "withdrawn_ul", "reminder_days"],
    "bolus": ["dose_ug", "minutes", "patient", "prime_ul"],
    "config": ["low_reservoir_ul", "empty_reservoir_ul", "tubing_ul", "catheter_ul",
               "discrepancy_limit_permille"],
    "log": ["since"],
    "ack": ["code"],
    "status": ["anything"],
    "hello": ["anything"],
}
BASES = {
    "program": [{"mode": "continuous"}, {"mode": "flex"}, {"mode": "patient-bolus", "dose_ug": 5,
                                                           "lockout_minutes": 5, "max_per_day": 2}],
    "refill": [dict(REFILL)],
    "bolus": [{}, {"minutes": 5}],
}
VALUES = [None, True, False, 0, -1, 1.5, 10**30, "", "x", "0", [], {}, [[]], [[0, 1]], [[0, 1.5]],
          {"0": [[0, 500]]}, {"9": [[0, 500]]}, {"x": 1}]


def test_no_value_of_any_type_escapes_the_dispatch(bench):
    replies = 0
    for verb, fields in FIELDS.items():
        for base in BASES.get(verb, [{}]):
            for field in fields:
                for value in VALUES:
                    payload = dict(base)
                    payload[field] = value
                    kind, reply = bench.request(verb, payload)  # raises if anything escapes
                    assert kind in ("ok", "err")
                    if kind == "err":
                        assert reply["code"].startswith("E_") and reply["reason"]
                    replies += 1
    assert replies > 700


def test_every_request_gets_exactly_one_reply_with_its_seq(bench):
    data = b"".join([
        b"junk\n",
        b">41 status {}*00000000\n",
        b'>42 status {}*%08x\n' % zlib.crc32(b">42 status {}"),
        b">43 program {}*%08x\n" % zlib.crc32(b">43 program {}"),
        b"\x03\x03\n",
    ])
    replies = bench.send(data)
    assert [(seq, verb) for _, seq, verb, _, _ in replies] == [(0, "err"), (0, "err"), (42, "ok"),
                                                               (43, "err"), (0, "err")]
    assert replies[3][3]["code"] == "E_AUTH"


def status_fields_of_the_protocol():
    """The fields docs/protocol.md's status table names, read from the doc itself."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    table = text.split("### Status object", 1)[1].split("\n#", 1)[0]
    fields = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            fields.update(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    return fields


def test_status_has_every_field_of_the_protocol(bench):
    kind, status = bench.request("status")
    assert kind == "ok"
    assert set(status) == status_fields_of_the_protocol()
    assert status["state"] == "infusing" and status["mode"] == "continuous"
    assert status["reservoir_nl"] == 20_000_000 and status["rate_nl_per_day"] == 250_000
    for name in ("reservoir_nl", "delivered_nl", "strokes", "daily_dose_ug", "rate_nl_per_day",
                 "clock_ms", "stroke_nl", "boots"):
        assert type(status[name]) is int, name


def test_maintenance_replies_then_ends_the_loop(bench):
    assert bench.app.running
    kind, reply = bench.request("maintenance")
    now_s = bench.app.pump.clock.now_ms() // 1000
    assert kind == "ok" and reply == {"repl": True, "minutes": 30, "until_s": now_s + 1800}
    assert not bench.app.running


def test_maintenance_without_the_key_keeps_the_pump_running(bench):
    kind, reply = bench.request("maintenance", sign=False)
    assert reply["code"] == "E_AUTH" and bench.app.running
