"""What the pump owes over a span, integrated in one step per span of constant rate, equals the
integral taken segment by segment over every midnight, step and bolus edge. The reference here
is written from the protocol's description of the profiles, not from the firmware's code."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pump.therapy import CONTINUOUS, FLEX, MINIMUM, NONE, STOP, Bolus, Therapy

DAY_MS = 86_400_000
MINUTE_MS = 60_000
MINIMUM_NL_PER_DAY = 6000
CONCENTRATIONS = (50, 500, 2000)


# -- the reference ---------------------------------------------------------------------------


def ref_dose_ug(steps, week, t_ms):
    """µg/day of the step running at t_ms; before a day's first step, the day before's last."""
    day, minute = t_ms // DAY_MS, t_ms % DAY_MS // MINUTE_MS
    today = week.get(day % 7, steps)
    started = [dose for start, dose in today if start <= minute]
    return started[-1] if started else week.get((day - 1) % 7, steps)[-1][1]


def ref_rate_nl_per_day(p, t_ms):
    conc = p["bridge_conc"] if p["bridge_nl"] > 0 else p["conc"]
    if p["mode"] == MINIMUM:
        rate = MINIMUM_NL_PER_DAY
    elif p["mode"] in (CONTINUOUS, FLEX) and conc > 0:
        rate = ref_dose_ug(p["steps"], p["week"], t_ms) * 1_000_000 // conc
    else:
        rate = 0
    for start_ms, duration_ms, volume_nl in p["boluses"]:
        if start_ms <= t_ms < start_ms + duration_ms:
            rate += volume_nl * DAY_MS // duration_ms
    return rate


def ref_credit(p, start_ms, end_ms):
    """nL·ms/day owed over [start_ms, end_ms): every midnight, every step minute of every
    schedule on every day and every bolus edge is a cut; the rate is constant between cuts."""
    minutes = {0} | {m for m, _ in p["steps"]} | {m for s in p["week"].values() for m, _ in s}
    cuts = {start_ms, end_ms}
    for day in range(start_ms // DAY_MS, end_ms // DAY_MS + 1):
        cuts.update(day * DAY_MS + m * MINUTE_MS for m in minutes)
    for b_start, duration_ms, _ in p["boluses"]:
        cuts.update((b_start, b_start + duration_ms))
    cuts = sorted(c for c in cuts if start_ms <= c <= end_ms)
    return sum(ref_rate_nl_per_day(p, a) * (b - a) for a, b in zip(cuts, cuts[1:]))


# -- the firmware's therapy, set up from the same description -----------------------------------


def make_therapy(p, start_ms):
    t = Therapy(500, MINIMUM_NL_PER_DAY)
    t.mode, t.steps, t.week = p["mode"], list(p["steps"]), dict(p["week"])
    t.concentration_ug_per_ml = p["conc"]
    t.bridge_concentration_ug_per_ml, t.bridge_remaining_nl = p["bridge_conc"], p["bridge_nl"]
    t.boluses = [Bolus("clinician", s, d, v) for s, d, v in p["boluses"]]
    t.t_ms = start_ms
    return t


@st.composite
def day_steps(draw):
    minutes = sorted(draw(st.sets(st.integers(0, 1439), min_size=1, max_size=13)))
    return [(m, draw(st.integers(1, 2000))) for m in minutes]


@st.composite
def programmes(draw, start_ms):
    mode = draw(st.sampled_from((CONTINUOUS, FLEX, FLEX, MINIMUM, STOP, NONE)))
    if mode == CONTINUOUS:
        steps, week = [(0, draw(st.integers(1, 2000)))], {}
    elif mode == FLEX:
        steps = draw(day_steps())
        week = draw(st.one_of(st.just({}), st.dictionaries(st.integers(0, 6), day_steps(), min_size=1,
                                                            max_size=3)))
    else:
        steps, week = [], {}
    bridge = draw(st.booleans())
    boluses = draw(st.lists(st.tuples(st.integers(start_ms - DAY_MS, start_ms + 20 * DAY_MS),
                                      st.integers(1, 1440).map(lambda m: m * MINUTE_MS),
                                      st.integers(1, 400_000)), max_size=3))
    return {"mode": mode, "steps": steps, "week": week, "conc": draw(st.sampled_from(CONCENTRATIONS)),
            "bridge_conc": draw(st.sampled_from(CONCENTRATIONS)) if bridge else 0,
            "bridge_nl": draw(st.integers(1, 700_000)) if bridge else 0, "boluses": boluses}


@st.composite
def cases(draw):
    start_ms = draw(st.one_of(st.integers(0, 3 * DAY_MS), st.integers(0, 19_000 * DAY_MS)))
    programme = draw(programmes(start_ms))
    # The span in pieces: strokes a few minutes apart, or a jump of weeks at once.
    days = st.builds(lambda d, ms: d * DAY_MS + ms, st.integers(1, 40), st.integers(0, DAY_MS - 1))
    pieces = draw(st.lists(st.one_of(st.integers(0, 30 * MINUTE_MS), days), min_size=1, max_size=6))
    return programme, start_ms, pieces


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_accrue_equals_the_segment_by_segment_integral(case):
    programme, start_ms, pieces = case
    t = make_therapy(programme, start_ms)
    at_ms, owed = start_ms, 0
    for piece_ms in pieces:
        t.accrue(at_ms + piece_ms)
        owed += ref_credit(programme, at_ms, at_ms + piece_ms)
        assert t.credit == owed
        at_ms += piece_ms
    assert t.t_ms == at_ms


# -- bounded work ----------------------------------------------------------------------------


FAR_MS = 18_628 * DAY_MS  # 2021-01-01 in ms since 1970: an RTC's first reading


def counting(t):
    """Count the rate look-ups, each one turn of the integrating loop."""
    calls = [0]
    look_up = t.profile_rate_at

    def counted(t_ms, concentration_ug_per_ml=None):
        calls[0] += 1
        return look_up(t_ms, concentration_ug_per_ml)

    t.profile_rate_at = counted
    return calls


WEEKLY = {"mode": FLEX, "steps": [(m, 100 + m) for m in range(0, 1440, 120)],
          "week": {d: [(m, 300 + d + m) for m in range(30, 1440, 110)] for d in (0, 5, 6)},
          "conc": 500, "bridge_conc": 0, "bridge_nl": 0, "boluses": [(FAR_MS // 2, 90 * MINUTE_MS, 5000)]}


def test_eighteen_thousand_days_at_once_cost_about_a_week_of_steps():
    for programme in (
        {"mode": CONTINUOUS, "steps": [(0, 500)], "week": {}, "conc": 2000, "bridge_conc": 0,
         "bridge_nl": 0, "boluses": []},
        dict(WEEKLY, week={}),  # daily flex, 12 steps
        WEEKLY,  # three weekdays of their own, and a bolus half way
    ):
        t = make_therapy(programme, 0)
        calls = counting(t)
        t.accrue(FAR_MS + 12_345)
        # A day-walk needs a look-up per step per day: over 200,000 for the daily profile.
        assert calls[0] <= 4 * 7 * 14 + 8, (programme["mode"], calls[0])
        assert t.credit == ref_credit_by_periods(programme, FAR_MS + 12_345)


def ref_credit_by_periods(programme, end_ms):
    """The reference over [0, end_ms) for a profile that repeats weekly: whole weeks at one
    week's total (the profile alone), the rest walked, the boluses added on their own."""
    plain = dict(programme, boluses=[])
    weeks = end_ms // (7 * DAY_MS)
    total = weeks * ref_credit(plain, 0, 7 * DAY_MS) + ref_credit(plain, weeks * 7 * DAY_MS, end_ms)
    for start_ms, duration_ms, volume_nl in programme["boluses"]:
        total += volume_nl * DAY_MS // duration_ms * duration_ms
    return total


def test_a_refill_long_after_the_last_stroke_does_a_bounded_amount_of_work(make_pump, clock):
    """The board's clock moves 18,628 days on while the pump infuses (an RTC set to the
    calendar): the refill then integrates that span without walking it day by day."""
    pump = make_pump()
    pump.boot()
    pump.refill(20_000, 2000)
    pump.program_steps(FLEX, [(0, 500), (480, 700), (1320, 400)])
    assert pump.state == "infusing"
    calls = counting(pump.therapy)
    clock.now = FAR_MS
    pump.refill(20_000, 2000)
    assert calls[0] <= 200, calls[0]
    assert pump.therapy.t_ms == FAR_MS
    programme = {"mode": FLEX, "steps": [(0, 500), (480, 700), (1320, 400)], "week": {}, "conc": 2000,
                 "bridge_conc": 0, "bridge_nl": 0, "boluses": []}
    assert pump.therapy.credit == 18_628 * ref_credit(programme, 0, DAY_MS)
