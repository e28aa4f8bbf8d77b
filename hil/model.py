"""What the pump should do, as an observer outside it can check: the reference model.

Written from docs/ (protocol, safety, cli), the contract of the hazard fixes and the label's
numbers, never from firmware code, so that the firmware is checked against something it did not
write itself. The states are a `transitions` machine declared as data; volumes are exact
Fractions of nL; pump time is whole ms, as the rig counts it.

The model delivers in whole strokes, as the pump must (a stroke is due once the volume owed
reaches one), so its count is the rig's within one stroke. What an observer cannot know in advance
(whether a write torn by a power cut was a record or a log entry, when the power went during a
write) it learns from what the pump makes public, never from its internals.
"""

from fractions import Fraction

from transitions import Machine

from pumpsim.hil.verify import DAY_MS, MINUTE_MS, continuous_volume_nl, dose_at

HOUR_MS = 60 * MINUTE_MS

# -- the label and the docs -------------------------------------------------------------------

CONCENTRATIONS_UG_PER_ML = (50, 500, 1000, 2000)  # the drug library (docs/protocol.md, dose guard)
MAX_DAILY_DOSE_UG = 2000
MAX_BOLUS_UG_PER_24H = 100
MAX_RATE_NL_PER_DAY = 24_000_000  # 1 mL/h
MINIMUM_RATE_NL_PER_DAY = 6000  # 6 µL/day keeps the catheter open
RESERVOIR_CAPACITY_UL = 40_000
PATIENT_BOLUS_MS = 10 * MINUTE_MS
REFILL_REMINDER_DAYS = 84
STALL_RETRY_MS = 10 * MINUTE_MS
MOTOR_ATTEMPTS = 3  # a stroke's, before MOTOR_STALL
BATTERY_CHECK_MS = HOUR_MS
AUTH_FAILURES_TO_LOCK = 5
AUTH_LOCK_MS = 10 * MINUTE_MS

DEFAULTS = {"low_reservoir_ul": 2000, "empty_reservoir_ul": 500, "tubing_ul": 150, "catheter_ul": None,
            "discrepancy_limit_permille": 145, "reminder_lead_days": 7}
CONFIG_RANGES = {"empty_reservoir_ul": (500, 2000), "low_reservoir_ul": (1000, 10000),
                 "discrepancy_limit_permille": (50, 250), "catheter_ul": (0, 500),
                 "tubing_ul": (0, 200), "reminder_lead_days": (0, 28)}

# The battery of the virtual rig drains with time and strokes (docs/architecture.md).
DRAIN_UV_PER_DAY = 117
DRAIN_NV_PER_STROKE = 156

# The hazard fixes of the contract, each of which the model can be told a board does not do yet
# (hil/drive.py finds out by asking the board): the model then expects what the docs said before.
CONTRACT = ("confirm", "therapy_alarms", "catheter_unset", "config_ranges", "projections", "both_ways")

HIGH, MEDIUM = "high", "medium"
PRIORITY = {
    "EMPTY_RESERVOIR": HIGH, "MOTOR_STALL": HIGH, "BATTERY_EOS": HIGH, "MEMORY_ERROR": HIGH,
    "LOW_BATTERY_RESET": HIGH,
    "LOW_RESERVOIR": MEDIUM, "REFILL_REMINDER": MEDIUM, "BATTERY_ERI": MEDIUM,
    "MEMORY_REPAIRED": MEDIUM, "THERAPY_STOPPED": MEDIUM,
}
# Only these stop the drug: LOW_BATTERY_RESET is as loud, but its minimum rate goes on.
CRITICAL = frozenset(("EMPTY_RESERVOIR", "MOTOR_STALL", "BATTERY_EOS", "MEMORY_ERROR"))

# -- the state table, as docs/safety.md and the contract give it ---------------------------------

STATES = ("boot", "stopped", "infusing", "alarm")
TRANSITIONS = [
    {"trigger": "booted", "source": "boot", "dest": "stopped"},
    {"trigger": "resume", "source": "stopped", "dest": "infusing", "conditions": "can_infuse"},
    {"trigger": "program", "source": "stopped", "dest": "stopped"},
    {"trigger": "program", "source": "infusing", "dest": "infusing"},
    {"trigger": "program", "source": "alarm", "dest": "alarm"},
    {"trigger": "stop", "source": "stopped", "dest": "stopped"},
    {"trigger": "stop", "source": "infusing", "dest": "stopped"},
    {"trigger": "stop", "source": "alarm", "dest": "alarm"},
    {"trigger": "bolus", "source": "stopped", "dest": "stopped"},
    {"trigger": "bolus", "source": "infusing", "dest": "infusing"},
    {"trigger": "refill", "source": "stopped", "dest": "stopped"},
    {"trigger": "refill", "source": "infusing", "dest": "infusing"},
    {"trigger": "refill", "source": "alarm", "dest": "stopped"},
    {"trigger": "critical", "source": "stopped", "dest": "alarm"},
    {"trigger": "critical", "source": "infusing", "dest": "alarm"},
    {"trigger": "critical", "source": "alarm", "dest": "alarm"},
    {"trigger": "cleared", "source": "alarm", "dest": "stopped"},
    # Every motor pulse is a row: a stroke, and the retry of a stalled motor.
    {"trigger": "stroke", "source": "infusing", "dest": "infusing", "conditions": "can_infuse"},
    {"trigger": "stall_retry", "source": "alarm", "dest": "alarm", "conditions": "can_retry"},
]


class Refusal(Exception):
    """What the pump must answer instead of doing a request: its E_ code and limit name."""

    def __init__(self, code, limit=None):
        super().__init__(code if limit is None else "%s (%s)" % (code, limit))
        self.code = code
        self.limit = limit


class _States:
    """The object the transitions machine drives; its guards ask the model."""

    def __init__(self, pump):
        self._pump = pump

    def can_infuse(self):
        return self._pump.can_infuse()

    def can_retry(self):
        return self._pump.can_retry()


def new_machine(pump):
    states = _States(pump)
    # No automatic to_<state>(): a pump must make forbidden transitions impossible.
    states.machine = Machine(model=states, states=list(STATES), transitions=TRANSITIONS, initial="boot",
            auto_transitions=False, ignore_invalid_triggers=False)
    return states


def rate_nl_per_day(daily_dose_ug, concentration_ug_per_ml):
    """Whole nL/day (docs/protocol.md: the flooring loses under 1 nL a day)."""
    if not concentration_ug_per_ml:
        return 0
    return int(continuous_volume_nl(daily_dose_ug, concentration_ug_per_ml, DAY_MS))


class Bolus:
    def __init__(self, kind, start_ms, minutes_ms, volume_nl, dose_ug):
        self.kind, self.start_ms, self.end_ms = kind, start_ms, start_ms + minutes_ms
        self.volume_nl, self.dose_ug = Fraction(volume_nl), dose_ug
        self.rate = self.volume_nl / minutes_ms  # nL per ms


class PumpModel:
    def __init__(self, stroke_nl, battery_mv=(2850, 2750, 2700), fresh_mv=3200, contract=CONTRACT):
        self.stroke_nl = stroke_nl
        self.contract = set(contract)
        self.eri_uv, self.reset_uv, self.eos_uv = (mv * 1000 for mv in battery_mv)
        self.t_ms = 0
        self.fsm = new_machine(self)
        self.alarms = {}  # code -> since_ms
        # What an observer cannot predict, learnt from what the pump reports: `optional` at the next
        # look only, `may_appear` whenever it shows, `dont_care` not compared (reservoir unknown).
        self.optional, self.may_appear, self.dont_care = set(), set(), set()
        self.delivered_nl = 0  # what the rig should have counted
        self.owed = Fraction(0)  # volume owed since the last stroke, nL
        self.stall = "off"
        self.failing_retries = None  # after `stall next N`'s stall: its retries still to fail
        self.battery = [fresh_mv * 1000, 0, 0]  # µV, at ms, at stroke count (the rig's model)
        self.boot_ms = self.last_reading_ms = 0
        self.next_retry_ms = None
        self.auth_in_a_row = 0
        self.locked_until_ms = 0
        self.power_cuts = 0
        # Records written since the last request changed the settings: while under two, the older
        # copy still holds the settings before that change.
        self.records_since_change = 0
        self._forget()
        self._boot()

    def _forget(self):
        """Everything the pump keeps in its records, as before its first fill."""
        self.mode = "none"
        self.steps = []
        self.concentration = 0
        self.bridge_concentration = 0
        self.bridge_nl = 0
        self.boluses = []
        self.history = []  # (start_ms, dose_ug, kind) of boluses
        self.patient = None  # (dose_ug, lockout_ms, max_per_day)
        self.settings = dict(DEFAULTS)
        if "catheter_unset" not in self.contract:
            self.settings["catheter_ul"] = 0
        self.reservoir_nl = Fraction(0)
        self.known_reservoir = True
        self.filled = False
        self.refill_ms = None
        self.reminder_days = REFILL_REMINDER_DAYS
        self.reminder_ms = None

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self):
        return self.fsm.state

    def critical(self):
        return bool(CRITICAL & set(self.alarms))

    def flowing_concentration(self):
        return self.bridge_concentration if self.bridge_nl > 0 else self.concentration

    def has_programme(self):
        return self.mode in ("continuous", "flex", "minimum-rate") and self.concentration > 0

    def can_infuse(self):
        return not self.critical() and (self.has_programme() or bool(self.boluses))

    def can_retry(self):
        return set(self.alarms) & CRITICAL == {"MOTOR_STALL"} and self.has_programme()

    def settle(self):
        if self.critical():
            if self.state != "alarm":
                self.fsm.critical()
        elif self.state == "alarm":
            self.fsm.cleared()
        if self.state == "stopped" and self.can_infuse():
            self.fsm.resume()
        elif self.state == "infusing" and not self.can_infuse():
            self.fsm.stop()

    def raise_(self, code, at_ms=None):
        self.alarms.setdefault(code, self.t_ms if at_ms is None else at_ms)

    def clear(self, code):
        self.alarms.pop(code, None)

    def set_alarm(self, code, on):
        (self.raise_ if on else self.clear)(code)

    def check_reservoir(self):
        if not self.known_reservoir:
            return
        self.set_alarm("LOW_RESERVOIR", self.reservoir_nl <= self.settings["low_reservoir_ul"] * 1000)
        self.set_alarm("EMPTY_RESERVOIR", self.reservoir_nl <= self.settings["empty_reservoir_ul"] * 1000)

    # -- rates ------------------------------------------------------------------------------

    def profile_rate(self, t_ms, concentration=None):
        """nL/day of the programme at t_ms."""
        if self.mode == "minimum-rate":
            return MINIMUM_RATE_NL_PER_DAY
        if self.mode not in ("continuous", "flex") or not self.steps:
            return 0
        conc = self.flowing_concentration() if concentration is None else concentration
        return rate_nl_per_day(dose_at(self.steps, None, t_ms), conc)

    def rate(self, t_ms):
        """nL per ms owed at t_ms: the programme plus the boluses running."""
        r = Fraction(self.profile_rate(t_ms), DAY_MS)
        for b in self.boluses:
            if b.start_ms <= t_ms < b.end_ms:
                r += b.rate
        return r

    def max_profile_rate(self, steps, conc):
        return max(rate_nl_per_day(d, conc) for _, d in steps) if steps and conc else 0

    def next_change_ms(self, t_ms):
        day = t_ms - t_ms % DAY_MS
        edges = [day + DAY_MS]
        if self.mode == "flex":
            edges += [day + m * MINUTE_MS for m, _ in self.steps]
        for b in self.boluses:
            edges += [b.start_ms, b.end_ms]
        return min(e for e in edges if e > t_ms)

    # -- time ---------------------------------------------------------------------------------

    def _timers(self):
        """The next moments something happens besides strokes."""
        times = [self.boot_ms + ((self.t_ms - self.boot_ms) // BATTERY_CHECK_MS + 1) * BATTERY_CHECK_MS]
        if self.reminder_ms is not None and "REFILL_REMINDER" not in self.alarms:
            times.append(max(self.reminder_ms, self.t_ms))
        if self.next_retry_ms is not None:
            times.append(max(self.next_retry_ms, self.t_ms))
        return min(times)

    def advance(self, until_ms):
        """Let pump time run to until_ms, doing what the pump must do meanwhile."""
        while True:
            self._on_timers()
            if self.t_ms >= until_ms:
                break
            end = min(until_ms, self._timers())
            if self.state == "infusing":
                self._infuse(min(end, self.next_change_ms(self.t_ms)))  # stops early on a change
            else:
                self.t_ms = end  # time stopped or in a critical alarm is never owed
            self._drop_finished_boluses()

    def _on_timers(self):
        t = self.t_ms
        if t > self.last_reading_ms and (t - self.boot_ms) % BATTERY_CHECK_MS == 0:
            self.read_battery()  # once: a request at that moment came after the reading
        if self.next_retry_ms is not None and self.next_retry_ms <= t:
            self._retry_motor()
        if self.reminder_ms is not None and self.reminder_ms <= t:
            self.raise_("REFILL_REMINDER")
        self.settle()

    def _infuse(self, end_ms):
        """Strokes at a constant rate from t_ms until end_ms (or until something changes)."""
        r = self.rate(self.t_ms)
        s = self.stroke_nl
        while self.state == "infusing" and r > 0:
            need = s - self.owed
            due = self.t_ms + max(0, -(-need // r)) if need > 0 else self.t_ms
            if due > end_ms:
                break
            n = self._strokes_before_change(max(1, int((self.owed + r * (end_ms - self.t_ms)) // s)))
            due = self.t_ms + max(0, -(-(n * s - self.owed) // r))
            self.owed += r * (due - self.t_ms)
            self.t_ms = due
            if self.stall == "on":
                self._stalled()
                return
            self._stroked(n)
            if self.state != "infusing" or self.rate(self.t_ms) != r:
                return  # an alarm stopped it, or the bridge ended: go on from here
        self.owed += r * (end_ms - self.t_ms)
        self.t_ms = end_ms

    def _strokes_before_change(self, n):
        """At most n strokes, stopping at the one that crosses an alarm threshold or ends the bridge."""
        s = self.stroke_nl
        if self.stall == "on":
            return 1
        limits = [n]
        for key, code in (("low_reservoir_ul", "LOW_RESERVOIR"), ("empty_reservoir_ul", "EMPTY_RESERVOIR")):
            over = self.reservoir_nl - self.settings[key] * 1000
            if code not in self.alarms and over >= 0:
                limits.append(max(1, -(-over // s)))
        if self.bridge_nl > 0:
            limits.append(max(1, -(-self.bridge_nl // s)))
        return int(min(limits))

    def _stroked(self, n):
        self.fsm.stroke()
        volume = n * self.stroke_nl
        self.owed -= volume
        self.delivered_nl += volume
        self.reservoir_nl -= volume
        self.bridge_nl = max(0, self.bridge_nl - volume)
        self.records_since_change += n
        self.check_reservoir()
        self.settle()

    def set_stall(self, mode, attempts=None):
        """The rig's motor fault (docs/cli.md): "on", "off", "intermittent" (every other attempt
        fails: a stroke's retries deliver it), or "next" with attempts: exactly that many of the
        next attempts fail, then the motor turns. A stroke makes MOTOR_ATTEMPTS of them (fewer failing
        ones: the stroke turns on a retry within it); a stalled motor's retry, one."""
        self.failing_retries = None
        if mode != "next":
            self.stall = mode
        elif "MOTOR_STALL" in self.alarms:  # stalled already: each attempt is a retry
            self.stall, self.failing_retries = "on", attempts
        elif attempts < MOTOR_ATTEMPTS:
            self.stall = "off"
        else:
            self.stall, self.failing_retries = "on", attempts - MOTOR_ATTEMPTS

    def _turns_again(self):
        """After a failed attempt of `stall next N`: the motor turns from the Nth on."""
        if self.failing_retries is not None and self.failing_retries <= 0:
            self.stall, self.failing_retries = "off", None

    def _stalled(self):
        # Three attempts without feedback: nothing delivered, nothing counted.
        self.raise_("MOTOR_STALL")
        self.next_retry_ms = self.t_ms + STALL_RETRY_MS
        self._turns_again()
        self.settle()

    def _retry_motor(self):
        self.next_retry_ms = self.t_ms + STALL_RETRY_MS
        if "MOTOR_STALL" not in self.alarms:
            self.next_retry_ms = None
            return
        if not self.can_retry():
            return
        if self.stall == "on":
            if self.failing_retries is not None:  # `stall next N`: this retry is one of the N
                self.failing_retries -= 1
                self._turns_again()
            return
        self.fsm.stall_retry()
        # The retry is one stroke; time spent stalled is never owed.
        self.delivered_nl += self.stroke_nl
        self.reservoir_nl -= self.stroke_nl
        self.bridge_nl = max(0, self.bridge_nl - self.stroke_nl)
        self.owed = Fraction(0)
        self.next_retry_ms = None
        self.clear("MOTOR_STALL")
        self.check_reservoir()
        self.settle()

    def follow_retry_phase(self, last_failed_ms):
        """The pump tries a stalled motor again 10 min after its last failed attempt. The model
        follows the rig's strokes only to within one, so its stall may have come a little before
        or after the pump's: the phase of the retries is taken from the rig, which saw the failed
        attempt on the motor's wires (after a boot, the boot sets it). A retry the pump skipped,
        in a critical alarm, keeps the phase; one due at this very moment has been made."""
        if self.next_retry_ms is not None and last_failed_ms is not None and last_failed_ms >= self.boot_ms:
            periods = (self.t_ms - last_failed_ms) // STALL_RETRY_MS + 1
            self.next_retry_ms = last_failed_ms + periods * STALL_RETRY_MS

    def _drop_finished_boluses(self):
        self.boluses = [b for b in self.boluses if b.end_ms > self.t_ms]

    # -- the battery --------------------------------------------------------------------------

    def battery_uv(self, at_ms=None):
        base_uv, base_ms, base_strokes = self.battery
        at_ms = self.t_ms if at_ms is None else at_ms
        strokes = self.delivered_nl // self.stroke_nl - base_strokes
        return base_uv - DRAIN_UV_PER_DAY * (at_ms - base_ms) // DAY_MS - DRAIN_NV_PER_STROKE * strokes // 1000

    def set_battery(self, millivolts):
        self.battery = [millivolts * 1000, self.t_ms, self.delivered_nl // self.stroke_nl]

    def read_battery(self):
        self.last_reading_ms = self.t_ms
        uv = self.battery_uv()
        self.set_alarm("BATTERY_ERI", uv <= self.eri_uv)
        self.set_alarm("BATTERY_EOS", uv <= self.eos_uv)

    def battery_margin_ms(self, margin_uv=3000):
        """How long the battery stays clear of every threshold below it at the fastest rate the
        programme allows: a span within it never crosses one by drain alone."""
        uv = self.battery_uv()
        below = [thr for thr in (self.eri_uv, self.reset_uv, self.eos_uv) if thr < uv]
        if not below:
            return None
        room = uv - max(below) - margin_uv
        strokes_per_day = (self.max_rate_nl_per_day() + MINIMUM_RATE_NL_PER_DAY) / self.stroke_nl
        per_day = DRAIN_UV_PER_DAY + DRAIN_NV_PER_STROKE * strokes_per_day / 1000
        return max(0, int(room / per_day * DAY_MS))

    def max_rate_nl_per_day(self):
        rate = self.max_profile_rate(self.steps, self.flowing_concentration() or self.concentration)
        rate += sum(b.rate for b in self.boluses) * DAY_MS
        return int(rate)

    # -- authentication -----------------------------------------------------------------------

    def authenticate(self):
        """Before every authenticated request with the right key."""
        if self.t_ms < self.locked_until_ms:
            raise Refusal("E_LOCKED")
        self.auth_in_a_row = 0

    def wrong_key(self):
        """A request signed with another key: refused, counted, nothing else changes."""
        if self.t_ms < self.locked_until_ms:
            return "E_LOCKED"
        self.auth_in_a_row += 1
        if self.auth_in_a_row >= AUTH_FAILURES_TO_LOCK:
            self.locked_until_ms = self.t_ms + AUTH_LOCK_MS
            self.auth_in_a_row = 0
        return "E_AUTH"

    # -- requests (each validates first: a refused request changes nothing) ---------------

    def refill(self, volume_ul, concentration, withdrawn_ul=None, reminder_days=None):
        self.authenticate()
        if not 1 <= volume_ul <= RESERVOIR_CAPACITY_UL:
            raise Refusal("E_LIMIT", "reservoir_capacity_ul")
        if concentration not in CONCENTRATIONS_UG_PER_ML:
            raise Refusal("E_LIMIT", "allowed_concentrations")
        if withdrawn_ul is not None and not 0 <= withdrawn_ul <= RESERVOIR_CAPACITY_UL:
            raise Refusal("E_ARG")  # more than the reservoir holds cannot have come out of it
        changes = self.filled and self.concentration and concentration != self.concentration
        if changes and self.settings["catheter_ul"] is None and "catheter_unset" in self.contract:
            raise Refusal("E_LIMIT", "catheter_ul")
        if self.mode in ("continuous", "flex") and \
                self.max_profile_rate(self.steps, concentration) > MAX_RATE_NL_PER_DAY:
            raise Refusal("E_LIMIT", "max_rate_nl_per_day")
        self.fsm.refill()
        result = {"calculated_nl": self.reservoir_nl}
        if withdrawn_ul is not None and self.reservoir_nl > 0:
            pct = (self.reservoir_nl - withdrawn_ul * 1000) * 100 / self.reservoir_nl
            result["discrepancy_pct"] = pct
            seen = abs(pct) if "both_ways" in self.contract else pct
            result["flagged"] = seen * 10 > self.settings["discrepancy_limit_permille"]
        if changes:
            self.bridge_concentration = self.concentration
            self.bridge_nl = (self.settings["tubing_ul"] + self.settings["catheter_ul"]) * 1000
            result["bridge_ul"] = self.settings["tubing_ul"] + self.settings["catheter_ul"]
        self.concentration = concentration
        self.reservoir_nl = Fraction(volume_ul * 1000)
        self.known_reservoir = True
        self.dont_care, self.may_appear = set(), set()
        self.filled = True
        self.refill_ms = self.t_ms
        self.reminder_days = REFILL_REMINDER_DAYS if reminder_days is None else reminder_days
        for code in ("REFILL_REMINDER", "MEMORY_ERROR", "LOW_RESERVOIR", "EMPTY_RESERVOIR"):
            self.clear(code)
        self.check_reservoir()
        self.settle()
        self.recompute_reminder()
        return result

    def program(self, mode, daily_dose_ug=None, steps=None, confirm=False):
        self.authenticate()
        if mode in ("stop", "minimum-rate") and not confirm and "confirm" in self.contract:
            raise Refusal("E_CONFIRM")
        if mode == "continuous":
            steps = [(0, daily_dose_ug)]
        if mode in ("continuous", "flex"):
            for _, dose in steps:
                if dose > MAX_DAILY_DOSE_UG:
                    raise Refusal("E_LIMIT", "max_daily_dose_ug")
            if self.max_profile_rate(steps, self.flowing_concentration()) > MAX_RATE_NL_PER_DAY:
                raise Refusal("E_LIMIT", "max_rate_nl_per_day")
        else:
            steps = []
        if mode == "stop":
            self.boluses = []
            if "therapy_alarms" in self.contract:
                self.raise_("THERAPY_STOPPED")
            self.fsm.stop()
        else:
            self.clear("THERAPY_STOPPED")
            self.fsm.program()
        self.clear("LOW_BATTERY_RESET")
        self.mode, self.steps = mode, steps
        self.settle()
        self.recompute_reminder()

    def program_patient(self, dose_ug, lockout_minutes, max_per_day):
        self.authenticate()
        if dose_ug > MAX_BOLUS_UG_PER_24H:
            raise Refusal("E_LIMIT", "max_bolus_ug_per_24h")
        self.patient = (dose_ug, lockout_minutes * MINUTE_MS, max_per_day)
        self.clear("LOW_BATTERY_RESET")  # the next programming, whatever the mode
        self.recompute_reminder()

    def _recent(self):
        return [h for h in self.history if h[0] > self.t_ms - DAY_MS]

    def bolus(self, dose_ug, minutes):
        self.authenticate()
        if dose_ug > MAX_BOLUS_UG_PER_24H:
            raise Refusal("E_LIMIT", "max_bolus_ug_per_24h")
        return self._start_bolus("clinician", dose_ug, minutes * MINUTE_MS)

    def bolus_patient(self):
        self.authenticate()
        if self.patient is None:
            raise Refusal("E_STATE")
        dose_ug, lockout_ms, most = self.patient
        mine = [h for h in self._recent() if h[2] == "patient"]
        if len(mine) >= most:
            raise Refusal("E_LIMIT", "patient_max_per_day")
        if mine and self.t_ms - mine[-1][0] < lockout_ms:
            raise Refusal("E_LIMIT", "patient_lockout")
        return self._start_bolus("patient", dose_ug, PATIENT_BOLUS_MS)

    def bolus_prime(self, volume_ul, minutes):
        self.authenticate()
        catheter = self.settings["catheter_ul"]
        if "catheter_unset" in self.contract:
            if catheter is None:
                raise Refusal("E_LIMIT", "catheter_ul")
            if volume_ul > self.settings["tubing_ul"] + catheter:
                raise Refusal("E_LIMIT", "prime_volume_ul")
        return self._start_bolus("prime", 0, minutes * MINUTE_MS, volume_ul * 1000)

    def _start_bolus(self, kind, dose_ug, duration_ms, volume_nl=None):
        conc = self.flowing_concentration()
        if volume_nl is None:
            if not conc:
                raise Refusal("E_STATE")
            volume_nl = Fraction(dose_ug * 1_000_000, conc)
        if self.state == "alarm":
            raise Refusal("E_STATE")
        if dose_ug and sum(h[1] for h in self._recent()) + dose_ug > MAX_BOLUS_UG_PER_24H:
            raise Refusal("E_LIMIT", "max_bolus_ug_per_24h")
        bolus = Bolus(kind, self.t_ms, duration_ms, volume_nl, dose_ug)
        profile = (self.max_profile_rate(self.steps, conc) if self.mode in ("continuous", "flex")
                   else MINIMUM_RATE_NL_PER_DAY if self.mode == "minimum-rate" else 0)
        if profile + sum(b.rate for b in self.boluses + [bolus]) * DAY_MS > MAX_RATE_NL_PER_DAY:
            raise Refusal("E_LIMIT", "max_rate_nl_per_day")
        self.fsm.bolus()
        self.boluses.append(bolus)
        self.history.append((self.t_ms, dose_ug, kind))
        self.settle()
        return bolus

    def config(self, **values):
        self.authenticate()
        for name, value in values.items():
            low, high = CONFIG_RANGES[name] if "config_ranges" in self.contract else (0, RESERVOIR_CAPACITY_UL)
            if not low <= value <= high:
                raise Refusal("E_LIMIT", name)
        merged = dict(self.settings, **values)
        if merged["empty_reservoir_ul"] >= merged["low_reservoir_ul"]:
            raise Refusal("E_ARG")
        self.settings = merged
        # The reminder follows the programme as it ran when the setting changed, before a
        # threshold moved past the reservoir stops the pump (the contract leaves the order open).
        self.recompute_reminder()
        self.check_reservoir()
        self.settle()

    def ack(self, code):
        self.authenticate()
        if code not in self.alarms:
            raise Refusal("E_ARG")
        if code == "MEMORY_REPAIRED":
            self.clear(code)  # repaired: acknowledging it ends it

    # -- the refill reminder and the projections ----------------------------------------------

    def projection_ms(self, threshold_ul):
        """When the programme (with the patient-bolus maximum) runs the reservoir down to the
        threshold, or None when the pump is not infusing."""
        if self.state != "infusing" or not self.known_reservoir:
            return None
        # What the boluses running still have to deliver leaves the reservoir too.
        left = self.reservoir_nl - threshold_ul * 1000 - sum(
            b.rate * (b.end_ms - max(b.start_ms, self.t_ms)) for b in self.boluses)
        if left <= 0:
            return self.t_ms
        t, bridge = self.t_ms, Fraction(self.bridge_nl)
        while t < self.t_ms + 50 * 365 * DAY_MS:
            if bridge <= 0 and self.mode != "flex":
                r = self._projected_rate(t, self.concentration)
                return int(t + left / r) if r > 0 else None  # the same rate every day
            r = self._projected_rate(t, self.bridge_concentration if bridge > 0 else self.concentration)
            end = t - t % DAY_MS + DAY_MS
            if self.mode == "flex":
                end = min([end] + [t - t % DAY_MS + m * MINUTE_MS for m, _ in self.steps
                                   if t - t % DAY_MS + m * MINUTE_MS > t])
            span = Fraction(end - t)
            limit = min(left, bridge) if bridge > 0 else left
            if r > 0 and r * span >= limit:
                span = limit / r
            used = r * span
            left -= used
            bridge = max(Fraction(0), bridge - used)
            t += span
            if left <= 0:
                return int(t)
        return None

    def _projected_rate(self, t_ms, conc):
        """nL per ms the projection counts at t_ms: the programme and the patient's maximum."""
        r = Fraction(self.profile_rate(t_ms, conc), DAY_MS)
        if self.patient:
            dose, _, most = self.patient
            r += Fraction(dose * most * 1_000_000, conc * DAY_MS)
        return r

    def recompute_reminder(self):
        if self.refill_ms is None:
            return
        reminder = self.refill_ms + self.reminder_days * DAY_MS
        low = self.projection_ms(self.settings["low_reservoir_ul"])
        if low is not None and "projections" in self.contract:
            reminder = min(reminder, low - self.settings["reminder_lead_days"] * DAY_MS)
        self.reminder_ms = reminder
        if reminder <= self.t_ms:
            self.raise_("REFILL_REMINDER")  # already due: it sounds at once

    # -- power ----------------------------------------------------------------------------------

    def power_cut(self, torn=False, records="kept"):
        """The power goes and comes back at t_ms. torn: in the middle of a write, which may have
        been a record's (then one copy is bad: MEMORY_REPAIRED) or a log entry's. records:
        "kept", "one-bad" (a copy corrupted before) or "lost" (both)."""
        self.power_cuts += 1
        self.fsm = new_machine(self)
        if records == "lost":
            # No good copy: programme and reservoir unknown; the pump must not guess.
            self._forget()
            self.known_reservoir = False
            self.alarms = {}
            self.next_retry_ms = None
            self.raise_("MEMORY_ERROR")
            self.dont_care = {"LOW_RESERVOIR", "EMPTY_RESERVOIR"}
            # The copy left bad is found at a scrub, unless two writes replaced both copies first.
            self.may_appear.add("MEMORY_REPAIRED")
        elif records == "one-bad":
            self.raise_("MEMORY_REPAIRED")
        elif torn:
            self.optional.add("MEMORY_REPAIRED")
        self.auth_in_a_row, self.locked_until_ms = 0, 0  # a reset forgets the session
        self._boot()

    def _boot(self):
        self.boot_ms = self.t_ms
        self.records_since_change += 1
        self.fsm.booted()
        self.read_battery()
        if self.battery_uv() <= self.reset_uv and self.mode in ("continuous", "flex"):
            # Low-battery reset: minimum rate keeps the catheter open; boluses are cancelled.
            self.mode, self.steps, self.boluses = "minimum-rate", [], []
            if "therapy_alarms" in self.contract:
                self.raise_("LOW_BATTERY_RESET")
            self.recompute_reminder()  # a programme change, made by the pump itself
        if "MOTOR_STALL" in self.alarms:
            self.next_retry_ms = self.t_ms + STALL_RETRY_MS
        self.check_reservoir()
        self.settle()

    def learn(self, observed_codes):
        """Resolve the alarms the model could not predict with what the pump reports."""
        for code in self.optional | self.may_appear:
            if code in observed_codes:
                self.raise_(code)
                self.may_appear.discard(code)
        self.optional = set()
        for code in self.dont_care:
            self.set_alarm(code, code in observed_codes)
        self.settle()

    # -- what an observer compares ---------------------------------------------------------------

    def expected_codes(self):
        return set(self.alarms)
