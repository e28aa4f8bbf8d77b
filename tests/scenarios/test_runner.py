"""The runner on a clock that runs by itself, and against a pump that does not do what the docs say
(a fake one): the reference model's reading then shows in the row."""

import pytest

from pumpsim.errors import Refused
from pumpsim.hil import report, scenario, scenario_runner
from pumpsim.hil.model import PumpModel

REALTIME = '''\
[scenario]
name = "ten minutes of 2000 µg/day"
days = 1

[[step]]
at = "0s"
action = "refill"
volume_ul = 10000
concentration_ug_per_ml = 2000

[[step]]
at = "0s"
action = "program"
mode = "continuous"
daily_dose_ug = 2000

[[step]]
at = "10min"
action = "expect-delivered"
from = "1min"

[[step]]
at = "10min"
action = "expect-state"
state = "infusing"
'''


@pytest.mark.pumpsim_days(0.01)
def test_on_a_clock_of_its_own_the_run_waits_for_each_step(bench):
    bench.raw_rig.clock("x600")  # 10 minutes in a second; the scenario itself asks nothing of the rig
    runner = scenario_runner.Runner(scenario.parse(REALTIME, "realtime.toml"), bench.client(), bench.rig)
    assert not runner.stepped
    rows = runner.run()
    assert runner.passed, scenario_runner.table(rows)
    assert bench.raw_rig.time()["clock_ms"] >= 600_000
    # 1000 µL/day: a stroke every 43.2 s, so nine minutes are twelve or so strokes, wherever the
    # stops fell (each is where the clock was when the run looked)
    assert 10 * 500 <= float(rows[0].seen.split()[1]) * 1000 <= 15 * 500, rows[0]


class FakeRig:
    """A rig of a stepped clock that never sees a stroke."""

    def __init__(self):
        self.clock_ms = 0

    def hello(self):
        return {"clock": "stepped", "can": ["stepped-clock"]}

    def measure(self):
        return {"clock_ms": self.clock_ms, "stroke_nl": 500, "pulses": 0, "delivered_nl": 0, "last_failed_ms": None}

    def time(self):
        return {"clock_ms": self.clock_ms, "clock": "stepped"}

    def advance(self, ms):
        self.clock_ms += ms
        return {"clock_ms": self.clock_ms}


class LaxPump:
    """A pump that takes whatever it is sent, but a bolus, which it refuses."""

    nonce = None

    def status(self):
        return {"eri_volts": 2.85, "eos_volts": 2.7, "alarms": [], "state": "infusing", "mode": "continuous"}

    def log(self):
        return [{"event": "boot", "t_ms": 0}]

    def refill(self, *args):
        return {}

    def request(self, verb, payload):
        return {}

    def bolus(self, dose_ug, minutes):
        raise Refused("E_STATE", "not now")


LAX = '''\
[scenario]
name = "a lax pump"
needs = ["stepped-clock"]
days = 1

[[step]]
at = "0s"
action = "refill"
volume_ul = 10000
concentration_ug_per_ml = 700  # no concentration of the drug library

[[step]]
at = "0s"
action = "refill"
volume_ul = 10000
concentration_ug_per_ml = 2000

[[step]]
at = "0s"
action = "program"
mode = "continuous"
daily_dose_ug = 500

[[step]]
at = "1h"
action = "bolus"
kind = "clinician"
dose_ug = 10
minutes = 10

[[step]]
at = "1d"
action = "expect-delivered"
from = "0s"
'''


def test_a_pump_that_differs_from_the_model_fails_its_rows_and_names_the_model_s_reading():
    runner = scenario_runner.Runner(scenario.parse(LAX, "lax.toml"), LaxPump(), FakeRig())
    rows = runner.run()
    assert [(r.line, r.passed) for r in rows] == [(6, False), (24, False), (31, False)], scenario_runner.table(rows)
    assert rows[0].seen == "accepted; the reference model: refused E_LIMIT (allowed_concentrations)"
    assert rows[1].seen == "refused E_STATE; the reference model: accepted" and rows[1].detail == "not now"
    (line,) = [line for line in scenario_runner.table(rows).splitlines() if line.startswith("1h ")]
    assert 'refused E_STATE; the reference model: accepted ("not now")' in line and line.endswith("FAIL")
    # The rig counted nothing of the day's 250 µL (and of the bolus the model gave).
    assert rows[2].expected.startswith("delivered 0s to 1d: 255.000 µL") and rows[2].seen.startswith("rig 0.000 µL")


EVERY_ACTION = """\
[scenario]
name = "every action"
needs = ["motor-stall", "battery", "power-cut"]
days = 1
%s
[[step]]
at = "1d"
action = "expect-state"
state = "infusing"
"""
STEPS = [
    'action = "config"\ncatheter_ul = 100\ntubing_ul = 150',
    'action = "refill"\nvolume_ul = 10000\nconcentration_ug_per_ml = 2000\nwithdrawn_ul = 0\nreminder_days = 30',
    'action = "program"\nmode = "flex"\nsteps = [[0, 500], [1200, 600]]',
    'action = "program"\nmode = "continuous"\ndaily_dose_ug = 500',
    'action = "program"\nmode = "patient-bolus"\ndose_ug = 20\nlockout_minutes = 120\nmax_per_day = 3',
    'action = "bolus"\nkind = "patient"',
    'action = "bolus"\nkind = "clinician"\ndose_ug = 10\nminutes = 10',
    'action = "bolus"\nkind = "prime"\nprime_ul = 100\nminutes = 10',
    'action = "ack"\ncode = "LOW_RESERVOIR"',
    'action = "motor-stall"\nmode = "next"\nattempts = 3',
    'action = "motor-stall"\nmode = "off"',
    'action = "battery"\nvoltage_mv = 3000',
    'action = "power-cycle"',
    'action = "program"\nmode = "minimum-rate"\nconfirm = true',
    'action = "program"\nmode = "stop"\nconfirm = true',
]


def test_every_action_is_one_the_report_replays():
    text = EVERY_ACTION % "".join('\n[[step]]\nat = "%dh"\n%s\n' % (i, step) for i, step in enumerate(STEPS))
    steps = scenario.parse(text, "every.toml").steps[:-1]
    assert {(s.action, s.variant) for s in steps} >= {(a, v) for a, act in scenario.ACTIONS.items()
                                                      for v in act.forms if not act.expectation} - {
        ("motor-stall", "on"), ("motor-stall", "intermittent")}
    model, notes = PumpModel(500), []
    for step in steps:
        action = {"t_ms": step.at_ms, **scenario_runner.programme_action(step)}
        model.advance(step.at_ms)
        report._apply(model, action, notes)
    assert not [n for n in notes if "does not know" in n], notes
    assert model.mode == "stop" and model.settings["catheter_ul"] == 100 and model.patient is not None
