# Rate profiles, boluses and the stroke schedule, in integers only.
#
# What the pump owes is the integral of its rate. Rates are piecewise constant (profile steps,
# boluses laid on top), in whole nL/day. `credit` holds the volume owed since the last stroke in
# nL·ms/day (volume × DAY_MS), so integrating a segment is one multiplication and a stroke is due
# once credit reaches stroke_nl × DAY_MS. Nothing is rounded between strokes: no drift in months.
try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    def const(__x):  # positional-only (the leading __), as micropython.const is
        return __x

DAY_MS = const(86400000)
MINUTE_MS = const(60000)
NL_PER_ML = const(1000000)
_HORIZON_MS = const(864000000)  # look at most 10 days ahead for the next stroke

NONE = "none"
CONTINUOUS = "continuous"
FLEX = "flex"
MINIMUM = "minimum-rate"
STOP = "stop"


def dose_rate_nl_per_day(daily_dose_ug, concentration_ug_per_ml):
    """The rate that delivers daily_dose_ug a day (floored: the loss is under 1 nL a day)."""
    if concentration_ug_per_ml <= 0:
        return 0
    return daily_dose_ug * NL_PER_ML // concentration_ug_per_ml


def ceil_div(a, b):
    return -(-a // b)


class Bolus:
    """Volume laid on top of the profile: volume_nl spread evenly over [start_ms, end_ms)."""

    __slots__ = ("kind", "start_ms", "end_ms", "volume_nl", "dose_ug", "rate_nl_per_day")

    def __init__(self, kind, start_ms, duration_ms, volume_nl, dose_ug=0):
        self.kind = kind
        self.start_ms = start_ms
        self.end_ms = start_ms + duration_ms
        self.volume_nl = volume_nl
        self.dose_ug = dose_ug
        # Floored: the bolus falls short by under 1 nL a day of duration.
        self.rate_nl_per_day = volume_nl * DAY_MS // duration_ms

    def to_list(self):
        return [self.kind, self.start_ms, self.end_ms - self.start_ms, self.volume_nl, self.dose_ug]

    @classmethod
    def from_list(cls, data):
        return cls(data[0], data[1], data[2], data[3], data[4])


class Therapy:
    def __init__(self, stroke_nl, minimum_rate_nl_per_day):
        self.stroke_nl = stroke_nl
        self.minimum_rate_nl_per_day = minimum_rate_nl_per_day
        self.mode = NONE
        # Steps of the daily profile: (start minute of the day, µg/day from then). A continuous
        # profile is one step at minute 0. `week` may give a weekday (0-6; the pump's day 0 is
        # weekday 0) its own steps.
        self.steps = []
        self.week = {}
        self.concentration_ug_per_ml = 0
        # While the old drug in tubing and catheter is pushed through (bridge), dose rates are
        # computed with the concentration that is actually flowing.
        self.bridge_concentration_ug_per_ml = 0
        self.bridge_remaining_nl = 0
        self.boluses = []
        self.credit = 0
        self.t_ms = 0

    # -- the programme -------------------------------------------------------------------------

    def flowing_concentration(self):
        if self.bridge_remaining_nl > 0:
            return self.bridge_concentration_ug_per_ml
        return self.concentration_ug_per_ml

    def daily_dose_ug(self):
        """The programmed dose of a whole day (time-weighted over the flex steps)."""
        if self.mode in (CONTINUOUS, FLEX) and self.steps:
            total = 0
            for i, (start_min, dose_ug) in enumerate(self.steps):
                end_min = self.steps[i + 1][0] if i + 1 < len(self.steps) else 1440 + self.steps[0][0]
                total += dose_ug * (end_min - start_min)
            return total // 1440
        return 0

    def steps_of_day(self, day):
        return self.week.get(day % 7, self.steps)

    def dose_at(self, t_ms):
        """µg/day of the step running at t_ms: before a day's first step, the previous day's last."""
        day = t_ms // DAY_MS
        minute = (t_ms % DAY_MS) // MINUTE_MS
        dose_ug = None
        for start_min, step_dose_ug in self.steps_of_day(day):
            if start_min <= minute:
                dose_ug = step_dose_ug
        if dose_ug is None:
            dose_ug = self.steps_of_day(day - 1)[-1][1]
        return dose_ug

    def profile_rate_at(self, t_ms, concentration_ug_per_ml=None):
        """nL/day of the profile at t_ms, at the flowing concentration unless one is given."""
        if self.mode == MINIMUM:
            return self.minimum_rate_nl_per_day
        if self.mode not in (CONTINUOUS, FLEX) or not self.steps:
            return 0
        if concentration_ug_per_ml is None:
            concentration_ug_per_ml = self.flowing_concentration()
        return dose_rate_nl_per_day(self.dose_at(t_ms), concentration_ug_per_ml)

    def rate_at(self, t_ms):
        rate = self.profile_rate_at(t_ms)
        for bolus in self.boluses:
            if bolus.start_ms <= t_ms < bolus.end_ms:
                rate += bolus.rate_nl_per_day
        return rate

    def next_change_ms(self, t_ms):
        """The first time after t_ms at which the rate may change."""
        day_ms = t_ms - t_ms % DAY_MS
        best = day_ms + DAY_MS  # at midnight a weekday's own schedule may begin
        if self.mode == FLEX:
            for start_min, _ in self.steps_of_day(t_ms // DAY_MS):
                at = day_ms + start_min * MINUTE_MS
                if t_ms < at < best:
                    best = at
        for bolus in self.boluses:
            for edge in (bolus.start_ms, bolus.end_ms):
                if t_ms < edge < best:
                    best = edge
        return best

    # -- integrating -------------------------------------------------------------------------

    def accrue(self, until_ms):
        """Add what is owed from t_ms to until_ms: between bolus edges the boluses add a constant
        rate to the profile, and the profile repeats, so a long span costs no more than a day or a
        week of steps (a pump that meets a clock far ahead must not walk every day in between)."""
        t = self.t_ms
        if not self.boluses and t < until_ms:  # the common case: one stroke's span, no bolus
            self.credit += self._profile_credit(t, until_ms, None, 0)
            t = until_ms
        while t < until_ms:
            end = until_ms
            extra_nl_per_day = 0
            for bolus in self.boluses:
                if bolus.start_ms <= t < bolus.end_ms:
                    extra_nl_per_day += bolus.rate_nl_per_day
                for edge in (bolus.start_ms, bolus.end_ms):
                    if t < edge < end:
                        end = edge
            self.credit += self._profile_credit(t, end, None, extra_nl_per_day)
            t = end
        self.t_ms = max(self.t_ms, until_ms)

    def skip(self, until_ms):
        """Move on to until_ms owing nothing for the time between."""
        self.t_ms = max(self.t_ms, until_ms)

    def next_stroke_ms(self):
        """When the next stroke is due, or None when none is due within the horizon."""
        need = self.stroke_nl * DAY_MS - self.credit
        t = self.t_ms
        if need <= 0:
            return t
        limit = t + _HORIZON_MS
        while t < limit:
            rate = self.rate_at(t)
            end = self.next_change_ms(t)
            if rate > 0:
                span = ceil_div(need, rate)
                if t + span <= end:
                    return t + span
                need -= rate * (end - t)
            t = end
        return None

    # -- projections (the refill reminder is planned from them) ---------------------------------

    def _period_ms(self):
        """How often the profile's rate repeats: 0 when it is constant, a day, or a week when
        weekdays have schedules of their own."""
        if self.mode not in (CONTINUOUS, FLEX) or not self.steps or (len(self.steps) == 1 and not self.week):
            return 0
        return 7 * DAY_MS if self.week else DAY_MS

    def _profile_credit(self, t_ms, end_ms, concentration_ug_per_ml, extra_nl_per_day):
        """What the profile (plus a constant extra rate) owes over [t_ms, end_ms), nL·ms/day.
        Under a day, step by step. Longer: a constant rate in one multiplication; a daily or
        weekly profile step by step up to a midnight, then whole periods at one period's total,
        then the rest step by step."""
        if end_ms - t_ms < DAY_MS:  # shorter than any period: the steps it crosses
            return self._steps_credit(t_ms, end_ms, concentration_ug_per_ml, extra_nl_per_day)
        period_ms = self._period_ms()
        if period_ms == 0:
            return (self.profile_rate_at(t_ms, concentration_ug_per_ml) + extra_nl_per_day) * (end_ms - t_ms)
        midnight_ms = t_ms - t_ms % DAY_MS
        if midnight_ms < t_ms:
            midnight_ms += DAY_MS
        if end_ms - midnight_ms < period_ms:
            return self._steps_credit(t_ms, end_ms, concentration_ug_per_ml, extra_nl_per_day)
        total = self._steps_credit(t_ms, midnight_ms, concentration_ug_per_ml, extra_nl_per_day)
        periods = (end_ms - midnight_ms) // period_ms
        total += periods * self._steps_credit(midnight_ms, midnight_ms + period_ms,
                                              concentration_ug_per_ml, extra_nl_per_day)
        t_ms = midnight_ms + periods * period_ms
        return total + self._steps_credit(t_ms, end_ms, concentration_ug_per_ml, extra_nl_per_day)

    def _steps_credit(self, t_ms, end_ms, concentration_ug_per_ml, extra_nl_per_day):
        total = 0
        while t_ms < end_ms:
            end = min(self._profile_change_ms(t_ms), end_ms)
            total += (self.profile_rate_at(t_ms, concentration_ug_per_ml) + extra_nl_per_day) * (end - t_ms)
            t_ms = end
        return total

    def _profile_change_ms(self, t_ms):
        day_ms = t_ms - t_ms % DAY_MS
        best = day_ms + DAY_MS
        if self.mode == FLEX:
            for start_min, _ in self.steps_of_day(t_ms // DAY_MS):
                at = day_ms + start_min * MINUTE_MS
                if t_ms < at < best:
                    best = at
        return best

    def _walk(self, t_ms, need, concentration_ug_per_ml, extra_nl_per_day, limit_ms):
        """(t, need left): walk the profile from t_ms until need (nL·ms/day) is owed or limit_ms."""
        while need > 0 and t_ms < limit_ms:
            rate = self.profile_rate_at(t_ms, concentration_ug_per_ml) + extra_nl_per_day
            end = min(self._profile_change_ms(t_ms), limit_ms)
            if rate > 0 and rate * (end - t_ms) >= need:
                return t_ms + ceil_div(need, rate), 0
            need -= rate * (end - t_ms)
            t_ms = end
        return t_ms, need

    def time_to_owe_ms(self, need, extra_ug_per_day=0):
        """When the programme, from t_ms on, plus extra_ug_per_day of drug (the patient's daily
        maximum), will have owed `need` more (nL·ms/day): first what is left of the bridge at the
        old drug's rates, then the rest; None when it never will."""
        t_ms = self.t_ms
        if need <= 0:
            return t_ms
        if self.mode not in (CONTINUOUS, FLEX, MINIMUM) and extra_ug_per_day <= 0:
            return None
        bridge = self.bridge_remaining_nl * DAY_MS
        if bridge > 0:
            first = min(need, bridge)
            old = self.bridge_concentration_ug_per_ml
            t_ms, left = self._walk(t_ms, first, old, dose_rate_nl_per_day(extra_ug_per_day, old),
                                    t_ms + 400 * DAY_MS)
            if left:
                return None
            need -= first
            if need <= 0:
                return t_ms
        # The week repeats: whole weeks in one step, then walk what is left of the last.
        extra_nl_per_day = dose_rate_nl_per_day(extra_ug_per_day, self.concentration_ug_per_ml)
        week = self._profile_credit(t_ms, t_ms + 7 * DAY_MS, self.concentration_ug_per_ml, extra_nl_per_day)
        if week <= 0:
            return None
        weeks = (need - 1) // week
        t_ms += weeks * 7 * DAY_MS
        need -= weeks * week
        t_ms, left = self._walk(t_ms, need, self.concentration_ug_per_ml, extra_nl_per_day,
                                t_ms + 8 * DAY_MS)
        return None if left else t_ms

    def remaining_bolus_nl(self, t_ms):
        """What the boluses running at t_ms still have to deliver."""
        left = 0
        for b in self.boluses:
            start = max(b.start_ms, t_ms)
            if start < b.end_ms:
                left += b.volume_nl * (b.end_ms - start) // (b.end_ms - b.start_ms)
        return left

    def stroked(self, at_ms, stroke_nl):
        self.accrue(at_ms)
        self.credit -= stroke_nl * DAY_MS
        if self.bridge_remaining_nl > 0:
            self.bridge_remaining_nl = max(0, self.bridge_remaining_nl - stroke_nl)

    def drop_finished_boluses(self, now_ms):
        done = [b for b in self.boluses if b.end_ms <= now_ms and b.end_ms <= self.t_ms]
        for bolus in done:
            self.boluses.remove(bolus)
        return done

    def resume_after_outage(self, now_ms):
        """After a reset: keep the schedule if no stroke was missed, else go on from now.
        Missed volume is never caught up: a catch-up would be an unprogrammed bolus."""
        nxt = self.next_stroke_ms()
        if nxt is not None and nxt < now_ms:
            self.t_ms = now_ms
            self.credit = min(self.credit, self.stroke_nl * DAY_MS - 1)
        for bolus in self.boluses:
            if bolus.end_ms < now_ms:
                bolus.end_ms = now_ms

    # -- changes (at once: what was owed under the old programme stays owed) --------------

    def change(self, now_ms):
        self.accrue(now_ms)

    def to_dict(self):
        return {
            "mode": self.mode, "steps": self.steps, "conc": self.concentration_ug_per_ml,
            "week": dict((str(d), s) for d, s in self.week.items()),
            "bridge_conc": self.bridge_concentration_ug_per_ml,
            "boluses": [b.to_list() for b in self.boluses],
        }

    def load_dict(self, data):
        self.mode = data["mode"]
        self.steps = [tuple(s) for s in data["steps"]]
        self.week = dict((int(d), [tuple(s) for s in steps]) for d, steps in data.get("week", {}).items())
        self.concentration_ug_per_ml = data["conc"]
        self.bridge_concentration_ug_per_ml = data["bridge_conc"]
        self.boluses = [Bolus.from_list(b) for b in data["boluses"]]
