"""The runner on a clock that runs by itself, and against a pump that does not do what the docs say
(a fake one): the reference model's reading then shows in the row."""

import pytest

from pumpsim.errors import Refused
from pumpsim.hil import scenario

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
    runner = scenario.Runner(scenario.parse(REALTIME, "realtime.toml"), bench.client(), bench.rig)
    assert not runner.stepped
    rows = runner.run()
    assert runner.passed, scenario.table(rows)
    assert bench.raw_rig.time()["clock_ms"] >= 600_000
    # 1000 µL/day: a stroke every 43.2 s, so nine minutes are some twelve strokes
    assert "rig 6.000 µL" in rows[0].seen or "rig 6.500 µL" in rows[0].seen, rows[0]


class FakeRig:
    """A rig of a stepped clock that never sees a stroke."""

    def __init__(self):
        self.clock_ms = 0

    def hello(self):
        return {"clock": "stepped", "can": ["stepped-clock"]}

    def measure(self):
        return {"clock_ms": self.clock_ms, "stroke_nl": 500, "delivered_nl": 0, "last_failed_ms": None}

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
    runner = scenario.Runner(scenario.parse(LAX, "lax.toml"), LaxPump(), FakeRig())
    rows = runner.run()
    assert [(r.line, r.passed) for r in rows] == [(6, False), (24, False), (31, False)], scenario.table(rows)
    assert rows[0].seen == "accepted; the reference model: refused E_LIMIT (allowed_concentrations)"
    assert rows[1].seen == "refused E_STATE; the reference model: accepted" and rows[1].detail == "not now"
    (line,) = [line for line in scenario.table(rows).splitlines() if line.startswith("1h ")]
    assert 'refused E_STATE; the reference model: accepted ("not now")' in line and line.endswith("FAIL")
    # The rig counted nothing of the day's 250 µL (and of the bolus the model gave).
    assert rows[2].expected.startswith("delivered 0s to 1d: 255.000 µL") and rows[2].seen.startswith("rig 0.000 µL")
