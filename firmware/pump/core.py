# The pump: therapy, reservoir accounting, alarms and state, persisted ahead of every stroke.
import json
import struct

from pump import alarms as al
from pump import druglib as lib
from pump import fsm
from pump.boluses import Boluses
from pump.errors import ArgError, LimitError
from pump.therapy import CONTINUOUS, DAY_MS, FLEX, MINIMUM, STOP, Therapy
from pump.therapy import dose_rate_nl_per_day

# strokes, reservoir_nl, delivered_nl, credit, t_ms, bridge_remaining_nl, boots, clock_ms
_COUNTERS = "<8q"
_COUNTERS_LEN = 64

BATTERY_CHECK_MS = 3600000
STALL_RETRY_MS = 600000
MOTOR_ATTEMPTS = 3

STOP_WARNING = ("therapy stopped: abrupt discontinuation of intrathecal baclofen can cause high fever, "
                "altered mental status, rebound spasticity and muscle rigidity, and death")


def whole(args, name, low=1, high=None, limit=None):
    """A whole number from a request, or ArgError; LimitError past a hard limit."""
    value = args.get(name)
    if type(value) is not int:
        raise ArgError("%s must be a whole number" % name)
    if value < low:
        raise ArgError("%s must be at least %d, not %d" % (name, low, value))
    if high is not None and value > high:
        if limit:
            raise LimitError(limit, "%s %d is above the limit of %d" % (name, value, high))
        raise ArgError("%s must be at most %d, not %d" % (name, high, value))
    return value


class Pump:
    def __init__(self, clock, motor, store, stroke_nl, log, battery=None, battery_mv=(2850, 2750, 2700)):
        self.clock = clock
        self.motor = motor
        self.battery = battery
        self.eri_mv, self.reset_mv, self.eos_mv = battery_mv
        self.battery_mv = 0
        self.next_battery_ms = 0
        self.stall_retry_ms = -1
        self.store = store
        self.log = log
        self.stroke_nl = stroke_nl
        self.therapy = Therapy(stroke_nl, lib.MINIMUM_RATE_NL_PER_DAY)
        self.alarms = al.Alarms()
        self.machine = fsm.Machine(self)
        self.strokes = 0
        self.reservoir_nl = 0
        self.delivered_nl = 0
        self.boots = 0
        self.low_threshold_nl = lib.LOW_RESERVOIR_UL * 1000
        self.empty_threshold_nl = lib.EMPTY_RESERVOIR_UL * 1000
        self.tubing_ul = lib.TUBING_UL
        self.catheter_ul = 0
        self.discrepancy_limit_permille = lib.DISCREPANCY_LIMIT_PERMILLE
        self.boluses = Boluses(self)
        self.reminder_ms = -1
        self._counters = bytearray(_COUNTERS_LEN)
        self._blob = b""

    # -- state ---------------------------------------------------------------------------------

    @property
    def state(self):
        return self.machine.state

    def can_infuse(self):
        t = self.therapy
        return not self.alarms.critical() and (
            (t.mode in (CONTINUOUS, FLEX, MINIMUM) and t.concentration_ug_per_ml > 0) or bool(t.boluses)
        )

    def settle(self):
        """Bring the state in line with the alarms and the programme."""
        if self.alarms.critical():
            if self.state != fsm.ALARM:
                self.machine.fire("critical")
        elif self.state == fsm.ALARM:
            self.machine.fire("cleared")
        if self.state == fsm.STOPPED and self.machine.allowed("resume"):
            self.machine.fire("resume")
        elif self.state == fsm.INFUSING and not self.can_infuse():
            self.machine.fire("stop")

    def advance(self, now_ms):
        """Bring the therapy's clock to now_ms. Only an infusing pump owes volume: time spent
        stopped or in a critical alarm is never owed, or leaving that state would deliver it at
        once, an unprogrammed bolus."""
        if self.state == fsm.INFUSING:
            self.therapy.accrue(now_ms)
        else:
            self.therapy.skip(now_ms)

    def check_alarms(self, now_ms):
        """Raise or clear the alarms the calculated volume and the calendar call for; log each."""
        before = len(self.alarms.events)
        a = self.alarms
        a.set(al.LOW_RESERVOIR, self.reservoir_nl <= self.low_threshold_nl, now_ms)
        a.set(al.EMPTY_RESERVOIR, self.reservoir_nl <= self.empty_threshold_nl, now_ms)
        if 0 <= self.reminder_ms <= now_ms:
            a.raise_(al.REFILL_REMINDER, now_ms)
        if self.battery_mv:
            a.set(al.BATTERY_EOS, self.battery_mv <= self.eos_mv, now_ms)
            a.set(al.BATTERY_ERI, self.battery_mv <= self.eri_mv, now_ms)
        for code, active, at_ms in a.events[before:]:
            self.log.append(at_ms, "alarm", {"code": code, "active": active, "priority": al.PRIORITY[code]})
        return len(a.events) > before

    def note(self, event, fields=None):
        self.log.append(self.clock.now_ms(), event, fields)

    # -- persistence ---------------------------------------------------------------------------

    def _settings(self):
        return {
            "therapy": self.therapy.to_dict(),
            "low_nl": self.low_threshold_nl, "empty_nl": self.empty_threshold_nl,
            "tubing_ul": self.tubing_ul, "catheter_ul": self.catheter_ul,
            "disc_permille": self.discrepancy_limit_permille,
            "patient": self.boluses.patient, "boluses": self.boluses.history,
            "reminder_ms": self.reminder_ms, "alarms": self.alarms.active,
        }

    def changed(self):
        """Settings changed: encode them once; every stroke then reuses the bytes."""
        self._blob = json.dumps(self._settings()).encode()

    def save(self):
        t = self.therapy
        struct.pack_into(_COUNTERS, self._counters, 0, self.strokes, self.reservoir_nl,
                         self.delivered_nl, t.credit, t.t_ms, t.bridge_remaining_nl, self.boots,
                         self.clock.now_ms())
        self.store.save(bytes(self._counters) + self._blob)

    def _restore(self, payload):
        t = self.therapy
        (self.strokes, self.reservoir_nl, self.delivered_nl, t.credit, t.t_ms,
         t.bridge_remaining_nl, self.boots, _) = struct.unpack_from(_COUNTERS, payload, 0)
        data = json.loads(payload[_COUNTERS_LEN:])
        t.load_dict(data["therapy"])
        self.low_threshold_nl, self.empty_threshold_nl = data["low_nl"], data["empty_nl"]
        self.tubing_ul, self.catheter_ul = data["tubing_ul"], data["catheter_ul"]
        self.discrepancy_limit_permille = data["disc_permille"]
        self.boluses.patient, self.boluses.history = data["patient"], data["boluses"]
        self.reminder_ms = data["reminder_ms"]
        now_ms = self.clock.now_ms()
        for code, since_ms in data["alarms"].items():
            self.alarms.restore(code, since_ms, now_ms)

    def boot(self, reset_cause="power-on"):
        """Power-up: restore what was saved and resume the programmed therapy by itself."""
        now_ms = self.clock.now_ms()
        payload = self.store.load()
        memory_lost = payload is None and self.store.repaired
        if payload is not None:
            self._restore(payload)
            self.therapy.resume_after_outage(now_ms)
        self.boots += 1
        self.machine.fire("booted")
        self.read_battery(now_ms)
        safe = None
        if memory_lost:
            # No good copy: therapy and reservoir are unknown. Pumping an unknown programme could
            # overdose; the pump stops with a critical alarm until it is refilled and programmed.
            self.alarms.raise_(al.MEMORY_ERROR, now_ms)
        elif self.store.repaired:
            self.alarms.raise_(al.MEMORY_REPAIRED, now_ms)
        if self.battery_mv and self.battery_mv <= self.reset_mv and self.therapy.mode in (CONTINUOUS, FLEX):
            # Low-battery reset: the safe state keeps the catheter open at the minimum rate.
            safe = "low_battery_reset"
            self.therapy.change(now_ms)
            self.therapy.mode, self.therapy.steps = MINIMUM, []
            self.therapy.boluses = []
        self.check_alarms(now_ms)
        self.settle()
        self.changed()
        self.save()
        if self.store.repaired and not memory_lost:
            self.save()  # the next save lands in the other slot: both copies good again
        fields = {"cause": reset_cause, "boots": self.boots, "state": self.state}
        if self.battery_mv:
            fields["battery_mv"] = self.battery_mv
        if safe:
            fields["safe_state"] = safe
        if memory_lost:
            fields["memory"] = "lost"
        elif self.store.repaired:
            fields["memory"] = "repaired"
        if self.log.bad_slots:
            fields["log_bad_slots"] = self.log.bad_slots
        self.note("boot", fields)

    # -- strokes -------------------------------------------------------------------------------

    def next_event_ms(self):
        times = []
        if self.state == fsm.INFUSING:
            due = self.therapy.next_stroke_ms()
            if due is not None:
                times.append(due)
            for bolus in self.therapy.boluses:
                times.append(bolus.end_ms)
        if self.reminder_ms >= 0 and al.REFILL_REMINDER not in self.alarms.active:
            times.append(self.reminder_ms)
        if self.battery is not None:
            times.append(self.next_battery_ms)
        if self.stall_retry_ms >= 0:
            times.append(self.stall_retry_ms)
        return min(times) if times else None

    def read_battery(self, now_ms):
        if self.battery is not None:
            self.battery_mv = self.battery.millivolts()
            self.next_battery_ms = now_ms + BATTERY_CHECK_MS

    def scrub(self, now_ms):
        """Check both copies of the records; rewrite them from memory when one went bad."""
        bad = self.store.check()
        if bad:
            self.alarms.raise_(al.MEMORY_REPAIRED, now_ms)
            self.changed()
            self.save()
            self.save()
            self.note("memory_repaired", {"bad_copies": bad})
            self.check_alarms(now_ms)

    def run_due(self, now_ms):
        """Make every stroke due by now_ms; returns how many."""
        made = 0
        if self.battery is not None and now_ms >= self.next_battery_ms:
            self.read_battery(now_ms)
            self.scrub(now_ms)
        if 0 <= self.stall_retry_ms <= now_ms:
            self.retry_motor(now_ms)
        while self.state == fsm.INFUSING:
            due_ms = self.therapy.next_stroke_ms()
            if due_ms is None or due_ms > now_ms:
                break
            self.stroke(due_ms)
            made += 1
        self.advance(now_ms)
        for bolus in self.therapy.drop_finished_boluses(now_ms):
            self.note("bolus_end", {"kind": bolus.kind})
            self.changed()
        if self.check_alarms(now_ms):
            self.settle()
            self.changed()
            self.save()
        return made

    def retry_motor(self, now_ms):
        """While stalled, try the motor now and then: when it turns, therapy resumes."""
        self.stall_retry_ms = now_ms + STALL_RETRY_MS
        if not self.can_infuse_but_stalled():
            return
        t = self.therapy
        # The attempt is one stroke of the therapy; what was missed meanwhile is not caught up.
        t.t_ms, t.credit = now_ms, self.stroke_nl * DAY_MS
        if self._deliver(now_ms, self.stroke_nl):
            self.stall_retry_ms = -1
            self.alarms.clear(al.MOTOR_STALL, now_ms)
            self.note("motor_stall_recovered", {"strokes": self.strokes})
            self.check_alarms(now_ms)
        else:
            t.credit = 0
        self.settle()
        self.changed()
        self.save()

    def can_infuse_but_stalled(self):
        t = self.therapy
        others = [c for c in self.alarms.active if al.PRIORITY[c] == al.HIGH and c != al.MOTOR_STALL]
        return not others and t.mode in (CONTINUOUS, FLEX, MINIMUM) and t.concentration_ug_per_ml > 0

    def stroke(self, at_ms):
        if not self._deliver(at_ms, self.stroke_nl):
            self.stall_retry_ms = at_ms + STALL_RETRY_MS
            self.alarms.raise_(al.MOTOR_STALL, at_ms)
            self.note("motor_stall", {"attempts": MOTOR_ATTEMPTS})
        if self.check_alarms(at_ms) or al.MOTOR_STALL in self.alarms.active:
            self.settle()
            self.changed()
            self.save()

    def _deliver(self, at_ms, stroke_nl):
        """One stroke, confirmed by the motor's feedback, retried; False when it never turns."""
        t = self.therapy
        t.accrue(at_ms)
        credit, bridge_nl = t.credit, t.bridge_remaining_nl
        t.stroked(at_ms, stroke_nl)
        self.strokes += 1
        self.reservoir_nl -= stroke_nl
        self.delivered_nl += stroke_nl
        # Written before the pulse: a power cut between the two counts one stroke too many,
        # never one too few, and the reservoir estimate errs on the safe side.
        self.save()
        for _ in range(MOTOR_ATTEMPTS):
            if self.motor.stroke():
                return True
        # The motor did not turn: nothing was delivered, so nothing is counted.
        t.credit, t.bridge_remaining_nl = credit, bridge_nl
        self.strokes -= 1
        self.reservoir_nl += stroke_nl
        self.delivered_nl -= stroke_nl
        self.save()
        return False

    # -- therapy changes (validated first: a refused request changes nothing) ------------------

    def check_rate(self, profile_max_nl_per_day, extra_nl_per_day=0):
        total = profile_max_nl_per_day + extra_nl_per_day
        if total > lib.MAX_RATE_NL_PER_DAY:
            raise LimitError("max_rate_nl_per_day", "the rate would be %d nL/day, above the pump's %d"
                             % (total, lib.MAX_RATE_NL_PER_DAY))

    def _check_daily_dose(self, dose_ug):
        if dose_ug > lib.MAX_DAILY_DOSE_UG:
            raise LimitError("max_daily_dose_ug", "%d µg/day is above the limit of %d µg/day"
                             % (dose_ug, lib.MAX_DAILY_DOSE_UG))

    def profile_max_rate(self, steps):
        conc = self.therapy.flowing_concentration() or self.therapy.concentration_ug_per_ml
        return max(dose_rate_nl_per_day(d, conc) for _, d in steps) if steps and conc else 0

    def _describe(self):
        t = self.therapy
        if t.mode == FLEX:
            return "flex %d steps, %d ug/day%s" % (len(t.steps), t.daily_dose_ug(),
                                                   ", %d weekdays own" % len(t.week) if t.week else "")
        if t.mode == CONTINUOUS:
            return "continuous %d ug/day" % t.daily_dose_ug()
        return t.mode

    def _apply_profile(self, mode, steps, week=None):
        now_ms = self.clock.now_ms()
        old = self._describe()
        self.advance(now_ms)  # under the old programme, in the old state
        self.machine.fire("stop" if mode == STOP else "program")
        t = self.therapy
        t.mode, t.steps, t.week = mode, steps, week or {}
        self.settle()
        self.changed()
        self.save()
        self.note("program", {"old": old, "new": self._describe()})

    def program_steps(self, mode, steps, week=None):
        """Continuous (one step at 00:00) or flex (up to 13 steps a day): [(minute, µg/day), ...];
        week optionally gives weekdays (0-6) steps of their own."""
        week = week or {}
        for day, day_steps in week.items():
            if type(day) is not int or not 0 <= day <= 6:
                raise ArgError("weekdays are 0 to 6, not %r" % (day,))
            self._check_steps(day_steps)
        self._check_steps(steps)
        self._apply_profile(mode, [tuple(s) for s in steps],
                            dict((d, [tuple(s) for s in ds]) for d, ds in week.items()))

    def _check_steps(self, steps):
        if not steps or len(steps) > lib.MAX_FLEX_STEPS:
            raise ArgError("a profile has 1 to %d steps, not %d" % (lib.MAX_FLEX_STEPS, len(steps)))
        minutes = [m for m, _ in steps]
        if minutes != sorted(set(minutes)) or minutes[0] < 0 or minutes[-1] >= 1440:
            raise ArgError("step times must be distinct, in order, within one day")
        for _, dose_ug in steps:
            if type(dose_ug) is not int or dose_ug <= 0:
                raise ArgError("every step needs a daily dose above 0 µg/day")
            self._check_daily_dose(dose_ug)
        self.check_rate(self.profile_max_rate(steps))

    def program_minimum(self):
        self._apply_profile(MINIMUM, [])

    def program_stop(self):
        """Stop means stop: the profile and any bolus still running."""
        cancelled = [b.kind for b in self.therapy.boluses]
        self.advance(self.clock.now_ms())
        self.therapy.boluses = []
        self._apply_profile(STOP, [])
        if cancelled:
            self.note("bolus_cancelled", {"kinds": cancelled})

    # -- alarms --------------------------------------------------------------------------------

    def acknowledge(self, code):
        now_ms = self.clock.now_ms()
        if not self.alarms.ack(code, now_ms):
            raise ArgError("%s is not an active alarm" % code)
        if code == al.MEMORY_REPAIRED:
            self.alarms.clear(code, now_ms)  # repaired: acknowledging it ends it
        self.changed()
        self.save()
        self.note("alarm_ack", {"code": code})

    # -- refill and configuration --------------------------------------------------------------

    def refill(self, volume_ul, concentration_ug_per_ml, withdrawn_ul=None, reminder_days=None):
        if concentration_ug_per_ml not in lib.CONCENTRATIONS_UG_PER_ML:
            raise LimitError("allowed_concentrations", "%d µg/mL is not in the drug library (%s)"
                             % (concentration_ug_per_ml,
                                ", ".join(str(c) for c in lib.CONCENTRATIONS_UG_PER_ML)))
        t = self.therapy
        if t.mode in (CONTINUOUS, FLEX):
            every = list(t.steps) + [s for ds in t.week.values() for s in ds]
            self.check_rate(max(dose_rate_nl_per_day(d, concentration_ug_per_ml) for _, d in every))
        now_ms = self.clock.now_ms()
        self.advance(now_ms)
        self.machine.fire("refill")
        result = {"calculated_ul": self.reservoir_nl // 1000}
        if withdrawn_ul is not None:
            calc_nl = self.reservoir_nl
            # Positive: less came out than the pump calculated, so more went into the patient.
            milli_pct = (calc_nl - withdrawn_ul * 1000) * 100000 // calc_nl if calc_nl > 0 else 0
            result["withdrawn_ul"] = withdrawn_ul
            result["discrepancy_milli_pct"] = milli_pct
            result["flagged"] = abs(milli_pct) > self.discrepancy_limit_permille * 100
        old_conc = t.concentration_ug_per_ml
        if old_conc and old_conc != concentration_ug_per_ml:
            t.bridge_concentration_ug_per_ml = old_conc
            t.bridge_remaining_nl = (self.tubing_ul + self.catheter_ul) * 1000
            result["bridge_ul"] = self.tubing_ul + self.catheter_ul
        t.concentration_ug_per_ml = concentration_ug_per_ml
        self.reservoir_nl = volume_ul * 1000
        days = lib.REFILL_REMINDER_DAYS if reminder_days is None else reminder_days
        self.reminder_ms = now_ms + days * DAY_MS
        self.alarms.clear(al.REFILL_REMINDER, now_ms)
        self.alarms.clear(al.MEMORY_ERROR, now_ms)  # reservoir known again
        self.check_alarms(now_ms)
        self.settle()
        self.changed()
        self.save()
        fields = {"volume_ul": volume_ul, "concentration_ug_per_ml": concentration_ug_per_ml}
        for k in ("withdrawn_ul", "flagged", "bridge_ul"):
            if k in result:
                fields[k] = result[k]
        if "discrepancy_milli_pct" in result:
            fields["discrepancy_pct_x1000"] = result["discrepancy_milli_pct"]
        self.note("refill", fields)
        return result

    def configure(self, **values):
        now_ms = self.clock.now_ms()
        low = values.get("low_nl", self.low_threshold_nl)
        empty = values.get("empty_nl", self.empty_threshold_nl)
        if empty >= low:
            raise ArgError("the empty threshold (%d µL) must be below the low one (%d µL)"
                           % (empty // 1000, low // 1000))
        self.low_threshold_nl, self.empty_threshold_nl = low, empty
        self.tubing_ul = values.get("tubing_ul", self.tubing_ul)
        self.catheter_ul = values.get("catheter_ul", self.catheter_ul)
        self.discrepancy_limit_permille = values.get("disc_permille", self.discrepancy_limit_permille)
        self.check_alarms(now_ms)
        self.settle()
        self.changed()
        self.save()
        self.note("config", dict((k, v) for k, v in values.items()))
