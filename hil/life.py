"""The rules of a pump's clinic life, as a hypothesis RuleBasedStateMachine over hil/drive.py.

Every rule is one `pumpsim` command (or two, for a fault that needs a power cut to be seen) done
to a virtual board and to the reference model at once; the invariants are checked after each by
`Driver.check()`. A failing example shrinks to the shortest transcript that still fails, which the
failure prints as `pumpsim` commands.
"""

import sys

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from pumpsim.hil.drive import BATTERY_LEVELS_MV, Board, Driver
from pumpsim.hil.model import PRIORITY

MINUTE_MS, DAY_MS = 60_000, 86_400_000
CONCENTRATIONS = (500, 1000, 2000, 2000, 50)


def flex_steps():
    minutes = st.lists(st.integers(0, 47).map(lambda half_hours: half_hours * 30), min_size=1, max_size=4,
                       unique=True).map(sorted)
    return minutes.flatmap(lambda ms: st.lists(st.integers(100, 1000), min_size=len(ms), max_size=len(ms))
                           .map(lambda doses: list(zip(ms, doses))))


class PumpLife(RuleBasedStateMachine):
    image = None  # (flash folder, key) of a deployed board: set before a run
    first_divergence = None
    longest_ms = 21 * DAY_MS

    def __init__(self):
        super().__init__()
        self.board = Board(*self.image)
        self.driver = Driver(self.board)

    def teardown(self):
        note("\n".join(self.driver.transcript))
        if self.driver.divergence is not None and not PumpLife.first_divergence:
            # Printed at once: should shrinking run out of time, the unshrunk case still shows.
            PumpLife.first_divergence = str(self.driver.divergence)
            print("first divergence, before shrinking:\n" + PumpLife.first_divergence, file=sys.stderr)
        self.board.close()

    @property
    def model(self):
        return self.driver.model

    def boluses_allowed(self):
        # A bolus while the bridge of a concentration change runs is sized across two drugs
        # (contract hazard 2), checked by its own test; the model sizes it at one.
        return self.model.mode in ("continuous", "flex", "minimum-rate") and self.model.bridge_nl == 0

    # -- therapy -------------------------------------------------------------------------------

    @rule(volume_ul=st.integers(4, 80).map(lambda x: x * 500), concentration=st.sampled_from(CONCENTRATIONS),
          withdrawn=st.sampled_from([None, 0.8, 0.9, 1.0, 1.1, 1.2]),
          reminder_days=st.sampled_from([None, None, 28, 56, 84]))
    def refill(self, volume_ul, concentration, withdrawn, reminder_days):
        withdrawn_ul = None
        if withdrawn is not None and self.model.known_reservoir:
            withdrawn_ul = int(self.model.reservoir_nl * withdrawn / 1000)
        self.driver.refill(volume_ul, concentration, withdrawn_ul, reminder_days)

    @rule(dose=st.one_of(st.integers(50, 1500), st.just(2001)))
    def program_continuous(self, dose):
        self.driver.program("continuous", dose)

    @rule(steps=flex_steps())
    def program_flex(self, steps):
        self.driver.program("flex", steps=steps)

    @rule(confirm=st.booleans())
    def program_minimum_rate(self, confirm):
        self.driver.program("minimum-rate", confirm=confirm)

    @rule(confirm=st.booleans())
    def program_stop(self, confirm):
        self.driver.program("stop", confirm=confirm)

    @rule(dose=st.integers(5, 50), lockout=st.sampled_from([10, 60, 240]), most=st.integers(1, 6))
    def program_patient_bolus(self, dose, lockout, most):
        self.driver.program_patient(dose, lockout, most)

    @precondition(boluses_allowed)
    @rule(dose=st.integers(5, 60), minutes=st.sampled_from([10, 30, 120]))
    def clinician_bolus(self, dose, minutes):
        self.driver.bolus(dose, minutes)

    @precondition(boluses_allowed)
    @rule()
    def patient_bolus(self):
        self.driver.bolus_patient()

    @precondition(boluses_allowed)
    @rule(volume_ul=st.integers(10, 300), minutes=st.sampled_from([10, 60]))
    def priming_bolus(self, volume_ul, minutes):
        self.driver.bolus_prime(volume_ul, minutes)

    @rule(field=st.sampled_from(["low_reservoir_ul", "empty_reservoir_ul", "tubing_ul", "catheter_ul",
                                 "discrepancy_limit_permille", "reminder_lead_days"]),
          data=st.data())
    def config(self, field, data):
        values = {"low_reservoir_ul": st.integers(1, 12).map(lambda x: x * 1000),
                  "empty_reservoir_ul": st.integers(1, 5).map(lambda x: x * 500),
                  "tubing_ul": st.integers(0, 250), "catheter_ul": st.integers(0, 600),
                  "discrepancy_limit_permille": st.integers(40, 300),
                  "reminder_lead_days": st.integers(0, 30)}[field]
        if field == "reminder_lead_days" and "projections" not in self.driver.contract:
            return  # contract hazard 4: the board does not know this setting yet
        self.driver.config(**{field: data.draw(values)})

    @rule(data=st.data())
    def acknowledge(self, data):
        self.driver.ack(data.draw(st.sampled_from(sorted(self.model.alarms) or sorted(PRIORITY))))

    @rule(dose=st.integers(100, 900))
    def wrong_key(self, dose):
        self.driver.wrong_key(dose)

    # -- time and faults -------------------------------------------------------------------

    @rule(seconds=st.one_of(st.integers(1, 3600), st.integers(3600, 7 * 86400), st.integers(86400, 42 * 86400)))
    def advance(self, seconds):
        self.driver.advance(min(seconds * 1000, self.longest_ms))

    @rule()
    def power_cut(self):
        self.driver.power_cut()

    @precondition(lambda self: self.model.state == "infusing")
    @rule(at_write=st.integers(1, 4))
    def power_cut_mid_write(self, at_write):
        self.driver.power_cut_mid_write(at_write)

    @rule(mode=st.sampled_from(["on", "off", "intermittent"]))
    def motor_stall(self, mode):
        self.driver.stall(mode)

    @rule(millivolts=st.sampled_from(BATTERY_LEVELS_MV))
    def battery(self, millivolts):
        self.driver.battery(millivolts)

    @rule(where=st.sampled_from(["state", "both", "log"]))
    def corrupt_flash(self, where):
        self.driver.corrupt_flash(where)
