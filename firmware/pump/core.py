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
# set-clock takes pump time up to a century after the RTC's epoch.
CLOCK_MAX_MS = 100 * 365 * DAY_MS

STOP_WARNING = ("therapy stopped: abrupt discontinuation of intrathecal baclofen can cause high fever, "
                "altered mental status, rebound spasticity and muscle rigidity, and death")
WITHDRAWAL = ("%s risks abrupt withdrawal of intrathecal baclofen (high fever, altered mental status, "
              "rebound spasticity, muscle rigidity, death): confirm it")


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
        self.machine = fsm.Machine(self, motor=motor)
        self.strokes = 0
        self.reservoir_nl = 0
        self.delivered_nl = 0
        self.boots = 0
        self.low_threshold_nl = lib.LOW_RESERVOIR_UL * 1000
        self.empty_threshold_nl = lib.EMPTY_RESERVOIR_UL * 1000
        self.tubing_ul = lib.TUBING_UL
        self.catheter_ul = None  # unset until measured: no default dead volume is safe
        self.discrepancy_limit_permille = lib.DISCREPANCY_LIMIT_PERMILLE
        self.boluses = Boluses(self)
        self.reminder_ms = None  # a date may come before pump time 0: no sentinel value
        self.refill_ms = -1
        self.reminder_days = lib.REFILL_REMINDER_DAYS
        self.reminder_lead_days = lib.REMINDER_LEAD_DAYS
        self._counters = bytearray(_COUNTERS_LEN)
        self._blob = b""
        self.saved_clock_ms = None  # the pump time the newest record holds

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
                self.machine.fire(fsm.CRITICAL)
        elif self.state == fsm.ALARM:
            self.machine.fire(fsm.CLEARED)
        if self.state == fsm.STOPPED and self.machine.allowed(fsm.RESUME):
            self.machine.fire(fsm.RESUME)
        elif self.state == fsm.INFUSING and not self.can_infuse():
            self.machine.fire(fsm.STOP)

    def advance(self, now_ms):
        """Bring the therapy's clock to now_ms. Only an infusing pump owes volume: time spent
        stopped or in a critical alarm is never owed, or leaving that state would deliver it at
        once, an unprogrammed bolus."""
        if self.state == fsm.INFUSING:
            self.therapy.accrue(now_ms)
        else:
            self.therapy.skip(now_ms)

    def check_alarms(self, now_ms):
        """Raise or clear the alarms the calculated volume and the calendar call for; log each
        change, these and those made since the last check (a refill's clears, a stall, a boot's)."""
        a = self.alarms
        a.set(al.LOW_RESERVOIR, self.reservoir_nl <= self.low_threshold_nl, now_ms)
        a.set(al.EMPTY_RESERVOIR, self.reservoir_nl <= self.empty_threshold_nl, now_ms)
        if self.reminder_ms is not None and self.reminder_ms <= now_ms:
            a.raise_(al.REFILL_REMINDER, now_ms)
        a.set(al.THERAPY_STOPPED, self.therapy.mode == STOP, now_ms)
        if self.battery_mv:
            a.set(al.BATTERY_EOS, self.battery_mv <= self.eos_mv, now_ms)
            a.set(al.BATTERY_ERI, self.battery_mv <= self.eri_mv, now_ms)
        changes = a.pop_unlogged()
        for code, active, at_ms in changes:
            self.log.append(at_ms, "alarm", {"code": code, "active": active, "priority": al.PRIORITY[code]})
        return bool(changes)

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
            "refill_ms": self.refill_ms, "reminder_days": self.reminder_days,
            "lead_days": self.reminder_lead_days,
        }

    def changed(self):
        """Settings changed: encode them once; every stroke then reuses the bytes."""
        self._blob = json.dumps(self._settings()).encode()

    def save(self, stroke=False):
        t = self.therapy
        now_ms = self.clock.now_ms()
        struct.pack_into(_COUNTERS, self._counters, 0, self.strokes, self.reservoir_nl,
                         self.delivered_nl, t.credit, t.t_ms, t.bridge_remaining_nl, self.boots,
                         now_ms)
        self.store.save(self._counters, stroke, self._blob)  # two pieces: never joined on the FRAM
        self.saved_clock_ms = now_ms

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
        self.refill_ms = data["refill_ms"]
        self.reminder_days, self.reminder_lead_days = data["reminder_days"], data["lead_days"]
        now_ms = self.clock.now_ms()
        for code, since_ms in data["alarms"].items():
            self.alarms.restore(code, since_ms, now_ms)

    def _saved_ms(self, payload):
        """The newest time the records and the log hold (None: nothing saved): pump time must
        not come back earlier than it."""
        times = [getattr(self.log, "newest_ms", None)]
        if payload is not None:
            counters = struct.unpack_from(_COUNTERS, payload, 0)
            times += [counters[4], counters[7]]  # the therapy's clock, the clock when written
        times = [t for t in times if t is not None]
        return max(times) if times else None

    def newest_saved_ms(self):
        """The newest time anything saved holds: records, log, the clock's own record."""
        times = [t for t in (self.saved_clock_ms, getattr(self.log, "newest_ms", None),
                             getattr(self.clock, "saved_ms", None)) if t is not None]
        return max(times) if times else None

    def _schedule_ahead(self, now_ms):
        """The restored schedule lies after now: the clock is behind the records. Therapy goes on
        from now rather than waiting for the clock to catch up with it."""
        t = self.therapy
        if t.t_ms <= now_ms:
            return False
        t.t_ms = now_ms
        return True

    def boot(self, reset_cause="power-on", reset_at_ms=None):
        """Power-up: restore what was saved and resume the programmed therapy by itself."""
        payload = self.store.load()
        # Pump time first: never earlier than what was saved, whatever the RTC reads now.
        restore = getattr(self.clock, "restore", None)
        clock_restored = bool(restore and restore(self._saved_ms(payload)))
        now_ms = self.clock.now_ms()
        memory_lost = payload is None and self.store.repaired
        presumed = False
        if payload is not None:
            self._restore(payload)
            presumed = getattr(self.store, "lost_newer", False) and self._presume_stroke()
            if self._schedule_ahead(now_ms):
                clock_restored = True
            self.therapy.resume_after_outage(now_ms)
        if clock_restored:
            self.alarms.raise_(al.CLOCK_RESTORED, now_ms)
        self.boots += 1
        self.machine.fire(fsm.BOOTED)
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
            self.therapy.accrue(now_ms)  # what was owed until now, under the programme that ran
            self.therapy.mode, self.therapy.steps, self.therapy.week = MINIMUM, [], {}
            self.therapy.boluses = []
            self.alarms.raise_(al.LOW_BATTERY_RESET, now_ms)
        if al.MOTOR_STALL in self.alarms.active:
            # Still stalled when the power went: go on trying the motor, or it stays stopped.
            self.stall_retry_ms = now_ms + STALL_RETRY_MS
        self.check_alarms(now_ms)
        self.settle()
        if safe:
            self.plan_reminder()  # from the minimum rate, now that it runs
            self.check_alarms(now_ms)
        self.changed()
        self.save()  # both copies: a bad one is good again
        fields = {"cause": reset_cause, "boots": self.boots, "state": self.state}
        if reset_at_ms is not None:
            fields["reset_at_ms"] = reset_at_ms  # when the reset was asked for
        if self.battery_mv:
            fields["battery_mv"] = self.battery_mv
        if safe:
            fields["safe_state"] = safe
        if presumed:
            fields["presumed_strokes"] = 1
        if clock_restored:
            fields["clock"] = "restored"
        if memory_lost:
            fields["memory"] = "lost"
        elif self.store.repaired:
            fields["memory"] = "repaired"
        if self.log.bad_slots:
            fields["log_bad_slots"] = self.log.bad_slots
        self.note("boot", fields)

    def _presume_stroke(self):
        """The newest record went bad after it was written whole, and the one restored is older:
        the stroke that newer record announced may have been made. Count it, so that the pump
        never counts less than it delivered and does not make the same stroke twice; at worst it
        counts one more than it made, and the reservoir estimate errs on the safe side."""
        t = self.therapy
        if self.alarms.critical() or not (t.mode in (CONTINUOUS, FLEX, MINIMUM) or t.boluses) \
                or t.concentration_ug_per_ml <= 0:
            return False
        self.strokes += 1
        self.reservoir_nl -= self.stroke_nl
        self.delivered_nl += self.stroke_nl
        t.credit -= self.stroke_nl * DAY_MS
        if t.bridge_remaining_nl > 0:
            t.bridge_remaining_nl = max(0, t.bridge_remaining_nl - self.stroke_nl)
        return True

    # -- strokes -------------------------------------------------------------------------------

    def next_event_ms(self):
        times = []
        if self.state == fsm.INFUSING:
            due = self.therapy.next_stroke_ms()
            if due is not None:
                times.append(due)
            for bolus in self.therapy.boluses:
                times.append(bolus.end_ms)
        if self.reminder_ms is not None and al.REFILL_REMINDER not in self.alarms.active:
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
        if self._deliver(now_ms, fsm.STALL_RETRY):
            self.stall_retry_ms = -1
            self.alarms.clear(al.MOTOR_STALL, now_ms)
            self.check_alarms(now_ms)
            self.note("motor_stall_recovered", {"strokes": self.strokes})
        else:
            t.credit = 0
        self.settle()
        self.changed()
        self.save()

    def can_infuse_but_stalled(self):
        t = self.therapy
        return (al.MOTOR_STALL in self.alarms.active and not self.alarms.critical(but=al.MOTOR_STALL)
                and t.mode in (CONTINUOUS, FLEX, MINIMUM) and t.concentration_ug_per_ml > 0)

    def stroke(self, at_ms):
        stalled = not self._deliver(at_ms, fsm.STROKE)
        if stalled:
            self.stall_retry_ms = at_ms + STALL_RETRY_MS
            self.alarms.raise_(al.MOTOR_STALL, at_ms)
        changed = self.check_alarms(at_ms)
        if stalled:
            self.note("motor_stall", {"attempts": MOTOR_ATTEMPTS})
        if changed or al.MOTOR_STALL in self.alarms.active:
            self.settle()
            self.changed()
            self.save()

    def _deliver(self, at_ms, trigger):
        """One stroke through a pulsing row of the state table, confirmed by the motor's feedback,
        retried; False when it never turns. Refused (TransitionError) where the table forbids it,
        before anything is counted."""
        if not self.machine.allowed(trigger):
            self.machine.pulse(trigger)  # raises: the table says no
        stroke_nl = self.stroke_nl
        t = self.therapy
        t.accrue(at_ms)
        credit, bridge_nl = t.credit, t.bridge_remaining_nl
        t.stroked(at_ms, stroke_nl)
        self.strokes += 1
        self.reservoir_nl -= stroke_nl
        self.delivered_nl += stroke_nl
        # Written before the pulse: a power cut between the two counts one stroke too many,
        # never one too few, and the reservoir estimate errs on the safe side.
        self.save(stroke=True)
        for _ in range(MOTOR_ATTEMPTS):
            if self.machine.pulse(trigger):
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
        self.machine.fire(fsm.STOP if mode == STOP else fsm.PROGRAM)
        t = self.therapy
        t.mode, t.steps, t.week = mode, steps, week or {}
        # A clinician has programmed the pump: the low-battery safe state is addressed.
        self.alarms.clear(al.LOW_BATTERY_RESET, now_ms)
        self.settle()
        self.plan_reminder()
        self.check_alarms(now_ms)
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
            self.check_alarms(now_ms)
        self.changed()
        self.save()
        self.note("alarm_ack", {"code": code})

    # -- the clock -----------------------------------------------------------------------------

    def set_clock(self, new_ms):
        """set-clock: pump time is new_ms from now on. Never earlier than the newest saved time:
        the log's times would run backwards and the schedule would wait for the clock. Nothing
        is owed for the jump and nothing is lost: the therapy, the boluses, their 24-hour window
        and lockout, and the alarms' repeats move with the clock; the refill date stays."""
        newest_ms = self.newest_saved_ms()
        if newest_ms is not None and new_ms < newest_ms:
            raise LimitError("saved_clock_ms", "%d ms is before %d ms, the newest time the pump saved: "
                             "pump time never runs backwards" % (new_ms, newest_ms))
        now_ms = self.clock.now_ms()
        self.advance(now_ms)  # what was owed until now, in the old time
        shift_ms = new_ms - now_ms
        self.clock.set(new_ms)
        t = self.therapy
        t.t_ms += shift_ms
        for bolus in t.boluses:
            bolus.start_ms += shift_ms
            bolus.end_ms += shift_ms
        for given in self.boluses.history:
            given[0] += shift_ms
        self.next_battery_ms += shift_ms
        if self.stall_retry_ms >= 0:
            self.stall_retry_ms += shift_ms
        for code in self.alarms.next_sound:
            self.alarms.next_sound[code] += shift_ms
        cleared = self.alarms.clear(al.CLOCK_RESTORED, new_ms)
        self.plan_reminder()
        self.check_alarms(new_ms)
        self.settle()
        self.changed()
        self.save()
        fields = {"old_ms": now_ms, "new_ms": new_ms}
        if cleared:
            fields["cleared"] = al.CLOCK_RESTORED
        self.note("clock_set", fields)
        return shift_ms

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
        old_conc = t.concentration_ug_per_ml
        if old_conc and old_conc != concentration_ug_per_ml and self.catheter_ul is None:
            raise LimitError("catheter_ul", "a change from %d to %d µg/mL needs the catheter volume to "
                             "size the bridge of old drug: set it first (config --catheter-ul)"
                             % (old_conc, concentration_ug_per_ml))
        now_ms = self.clock.now_ms()
        self.advance(now_ms)
        self.machine.fire(fsm.REFILL)
        result = {"calculated_ul": self.reservoir_nl // 1000}
        if withdrawn_ul is not None:
            calc_nl = self.reservoir_nl
            # Positive: less came out than the pump calculated, so more went into the patient.
            milli_pct = (calc_nl - withdrawn_ul * 1000) * 100000 // calc_nl if calc_nl > 0 else 0
            result["withdrawn_ul"] = withdrawn_ul
            result["discrepancy_milli_pct"] = milli_pct
            result["flagged"] = abs(milli_pct) > self.discrepancy_limit_permille * 100
        if old_conc and old_conc != concentration_ug_per_ml:
            assert self.catheter_ul is not None  # a change without it was refused above
            t.bridge_concentration_ug_per_ml = old_conc
            t.bridge_remaining_nl = (self.tubing_ul + self.catheter_ul) * 1000
            result["bridge_ul"] = self.tubing_ul + self.catheter_ul
        t.concentration_ug_per_ml = concentration_ug_per_ml
        self.reservoir_nl = volume_ul * 1000
        self.refill_ms = now_ms
        self.reminder_days = lib.REFILL_REMINDER_DAYS if reminder_days is None else reminder_days
        self.alarms.clear(al.REFILL_REMINDER, now_ms)
        self.reminder_ms = None  # planned again below, from this refill: the old date is past
        self.alarms.clear(al.MEMORY_ERROR, now_ms)  # reservoir known again
        self.check_alarms(now_ms)
        self.settle()
        self.plan_reminder()
        self.check_alarms(now_ms)
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

    def configure(self, values):
        """Settings by their protocol names (lib.CONFIG_RANGES), each within its range; all or
        nothing."""
        for name, value in values.items():
            low, high = lib.CONFIG_RANGES[name]
            if not low <= value <= high:
                raise LimitError(name, "%s %d is outside its range, %d to %d" % (name, value, low, high))
        low_nl = values.get("low_reservoir_ul", self.low_threshold_nl // 1000) * 1000
        empty_nl = values.get("empty_reservoir_ul", self.empty_threshold_nl // 1000) * 1000
        if empty_nl >= low_nl:
            raise ArgError("the empty threshold (%d µL) must be below the low one (%d µL)"
                           % (empty_nl // 1000, low_nl // 1000))
        now_ms = self.clock.now_ms()
        self.low_threshold_nl, self.empty_threshold_nl = low_nl, empty_nl
        self.tubing_ul = values.get("tubing_ul", self.tubing_ul)
        self.catheter_ul = values.get("catheter_ul", self.catheter_ul)
        self.discrepancy_limit_permille = values.get("discrepancy_limit_permille",
                                                     self.discrepancy_limit_permille)
        self.reminder_lead_days = values.get("reminder_lead_days", self.reminder_lead_days)
        self.plan_reminder()
        self.check_alarms(now_ms)
        self.settle()
        self.changed()
        self.save()
        self.note("config", values)

    # -- refill planning -----------------------------------------------------------------------

    def patient_max_ug_per_day(self):
        """The most drug the patient's own boluses may add in a day."""
        p = self.boluses.patient
        return p[0] * p[2] if p else 0

    def projected_ms(self, threshold_nl):
        """When the programme, patient boluses at their daily maximum included, will take the
        calculated reservoir to threshold_nl: the time of the stroke that crosses it. None when
        not infusing or never."""
        if self.state != fsm.INFUSING:
            return None
        t = self.therapy
        to_go_nl = self.reservoir_nl - threshold_nl - t.remaining_bolus_nl(t.t_ms)
        strokes = -(-to_go_nl // self.stroke_nl)
        return t.time_to_owe_ms(strokes * self.stroke_nl * DAY_MS - t.credit, self.patient_max_ug_per_day())

    def plan_reminder(self):
        """The refill reminder: the elective interval after the refill, or a lead time before the
        reservoir is projected to run low, whichever comes first."""
        if self.refill_ms < 0:
            return
        self.reminder_ms = self.refill_ms + self.reminder_days * DAY_MS
        low_ms = self.projected_ms(self.low_threshold_nl)
        if low_ms is not None:
            self.reminder_ms = min(self.reminder_ms, low_ms - self.reminder_lead_days * DAY_MS)
