"""The report of delivery accuracy: what the rig measured beside what was programmed.

    recording = gather(client, rig, programme)      # from a live board
    path = write_report(directory, recording)       # report.html, its PNGs, report.csv, recording.json
    summary(recording)                              # the worst errors, for a test's properties

The delivered volume is the rig's: the pump time of every stroke it counted (`rig trace`), never
the pump's own count. The programmed volume is the reference model's (hil/model.py), replaying
the programme: the actions the harness itself sent, each at the rig's time (`Programme`, with
`RecordingClient` and `RecordingRig` to note them as they go), or, when it has none, the programme
read back from the pump's event log, which the report then says. Nothing here imports firmware
code. Volumes are exact (whole nL from the rig, Fractions of nL from the model) until they are
plotted or printed. docs/report.md describes each plot and column.
"""

from __future__ import annotations

import bisect
import csv
import html
import json
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from pumpsim.hil.model import CRITICAL, HOUR_MS, PumpModel, Refusal
from pumpsim.hil.rig import DAY_MS, RigError

# The observation windows of the trumpet curve, in hours: 1 h, 6 h, 24 h and 7 days.
WINDOWS_H = (1, 6, 24, 168)
# Actions after which the flow is not the steady flow the trumpet curve measures.
UNSTEADY = ("refill", "power-cycle", "stall")
RECORDING = "recording.json"
FIGURES = ("cumulative", "reservoir", "hourly", "trumpet", "tones")


# -- the programme ---------------------------------------------------------------------------


class Programme(list):
    """What the harness did to the pump, in order: {"t_ms": rig time, "do": what, ...fields}.

    do: refill (volume_ul, concentration_ug_per_ml[, withdrawn_ul, reminder_days]), program
    (mode: continuous with daily_dose_ug, flex with steps [[minute, µg/day], ...][, week],
    minimum-rate, stop), patient-bolus (dose_ug, lockout_minutes, max_per_day), bolus (kind:
    clinician with dose_ug and minutes, patient, prime with volume_ul and minutes), config
    (settings), ack (code), and what the rig did: stall (mode), power-cycle, battery (millivolts).
    """

    def note(self, t_ms: int, do: str, **fields) -> dict:
        action = {"t_ms": int(t_ms), "do": do, **{k: v for k, v in fields.items() if v is not None}}
        self.append(action)
        return action


class RecordingClient:
    """A PumpClient whose therapy requests, once the pump has accepted them, the programme notes
    at the rig's time; everything else passes through."""

    def __init__(self, client, rig, programme: Programme):
        self._client, self._rig, self.programme = client, rig, programme

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _note(self, reply, do, **fields):
        self.programme.note(self._rig.time()["clock_ms"], do, **fields)
        return reply

    def refill(self, volume_ul, concentration_ug_per_ml, withdrawn_ul=None, reminder_days=None):
        return self._note(self._client.refill(volume_ul, concentration_ug_per_ml, withdrawn_ul, reminder_days),
                          "refill", volume_ul=volume_ul, concentration_ug_per_ml=concentration_ug_per_ml,
                          withdrawn_ul=withdrawn_ul, reminder_days=reminder_days)

    def program_continuous(self, daily_dose_ug):
        return self._note(self._client.program_continuous(daily_dose_ug), "program", mode="continuous",
                          daily_dose_ug=daily_dose_ug)

    def program_flex(self, steps, week=None):
        return self._note(self._client.program_flex(steps, week), "program", mode="flex",
                          steps=[[m, d] for m, d in steps],
                          week={str(k): [[m, d] for m, d in v] for k, v in week.items()} if week else None)

    def program_minimum_rate(self, confirm=False):
        return self._note(self._client.program_minimum_rate(confirm), "program", mode="minimum-rate")

    def program_stop(self, confirm=False):
        return self._note(self._client.program_stop(confirm), "program", mode="stop")

    def program_patient_bolus(self, dose_ug, lockout_minutes, max_per_day):
        return self._note(self._client.program_patient_bolus(dose_ug, lockout_minutes, max_per_day),
                          "patient-bolus", dose_ug=dose_ug, lockout_minutes=lockout_minutes,
                          max_per_day=max_per_day)

    def bolus(self, dose_ug, minutes):
        return self._note(self._client.bolus(dose_ug, minutes), "bolus", kind="clinician", dose_ug=dose_ug,
                          minutes=minutes)

    def bolus_patient(self):
        return self._note(self._client.bolus_patient(), "bolus", kind="patient")

    def bolus_prime(self, volume_ul, minutes):
        return self._note(self._client.bolus_prime(volume_ul, minutes), "bolus", kind="prime",
                          volume_ul=volume_ul, minutes=minutes)

    def config(self, **settings):
        return self._note(self._client.config(**settings), "config", settings=settings)

    def ack(self, code):
        return self._note(self._client.ack(code), "ack", code=code)


class RecordingRig:
    """A Rig whose faults and power cuts the programme notes; everything else passes through."""

    def __init__(self, rig, programme: Programme):
        self._rig, self.programme = rig, programme

    def __getattr__(self, name):
        return getattr(self._rig, name)

    def _note(self, reply, do, **fields):
        self.programme.note(self._rig.time()["clock_ms"], do, **fields)
        return reply

    def stall(self, mode, attempts=None):
        return self._note(self._rig.stall(mode, attempts), "stall", mode=mode, attempts=attempts)

    def power_cycle(self, at_write=None):
        if at_write is not None:  # when the power goes is the pump's write's, not known here
            return self._rig.power_cycle(at_write)
        return self._note(self._rig.power_cycle(), "power-cycle")

    def battery(self, millivolts=None):
        if millivolts is None:
            return self._rig.battery()
        return self._note(self._rig.battery(millivolts), "battery", millivolts=millivolts)


# -- the recording -----------------------------------------------------------------------------


@dataclass
class Recording:
    """Everything a report is made from; saved as recording.json beside it."""

    stroke_nl: int
    start_ms: int  # the analysis starts here (rig time)
    end_ms: int  # and ends here: the rig's time when the recording was gathered
    programme: list  # actions, as Programme holds them, in rig time
    programme_source: str  # "harness" or "event log"
    strokes_ms: list | None = None  # the rig's trace; None from a rig that keeps none
    samples: list = field(default_factory=list)  # [clock_ms, pulses] the rig measured
    untimed: int = 0  # strokes the rig counted before its trace began
    events: list = field(default_factory=list)  # the pump's event log, t_ms moved into rig time
    tones: list | None = None  # the rig's tones (rig time); None from a rig that hears none
    clock_offset_ms: int = 0  # pump time minus rig time, when gathered
    battery_mv: tuple = (2850, 2750, 2700)  # ERI, low-battery reset, EOS of the board
    board: str = ""
    fw: str = ""
    rig: str = ""
    notes: list = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Recording":
        data = json.loads(text)
        data["battery_mv"] = tuple(data.get("battery_mv", (2850, 2750, 2700)))
        return cls(**data)

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path) -> "Recording":
        return cls.from_json(Path(path).read_text())


def gather(client, rig, programme=None, start_ms=None, samples=None) -> Recording:
    """A Recording of the board as it is now: the rig's trace, tones and count, the pump's event
    log and status. programme: what the harness sent (a Programme, or a list of its actions);
    None: the programme is read from the pump's event log. start_ms: where the analysis starts
    (default: the programme's first action). samples: [clock_ms, pulses] the harness had the rig
    measure on the way, which stand in for the trace on a rig that keeps none."""
    notes = []
    measure = rig.measure()
    end_ms = measure["clock_ms"]
    try:
        strokes_ms = rig.trace()
        untimed = measure["pulses"] - len(strokes_ms)
        strokes_ms = [ms for ms in strokes_ms if ms <= end_ms]
    except RigError:
        strokes_ms, untimed = None, 0
        notes.append("this rig keeps no trace of its strokes' times: the delivered volume is known only where "
                     "the rig's count was read (%d times)" % (len(samples or []) + 1))
    try:
        tones = rig.tones()
    except RigError:
        tones = None
        notes.append("this rig hears no tones")
    status = client.status()
    offset_ms = status["clock_ms"] - rig.time()["clock_ms"]
    events = []
    for event in client.log():
        event = dict(event)
        event["pump_t_ms"] = event["t_ms"]
        event["t_ms"] = event["t_ms"] - offset_ms
        events.append(event)
    if any(e["event"] == "clock_set" for e in events):
        notes.append("the pump's clock was set during the run: its log's times are moved into rig time by the "
                     "offset at the end (%+d ms), which earlier events may not have had" % offset_ms)
    if events and events[0].get("seq", 1) > 1:
        notes.append("the pump's event log begins at its event %d (it keeps the last 128): what came before is "
                     "not in it" % events[0]["seq"])
    if programme is not None:
        actions, source = sorted((dict(a) for a in programme), key=lambda a: a["t_ms"]), "harness"
    else:
        actions, source = programme_from_log(events, status, notes), "event log"
    if start_ms is None:
        start_ms = actions[0]["t_ms"] if actions else (events[0]["t_ms"] if events else 0)
    samples = sorted([list(s) for s in (samples or [])] + [[end_ms, measure["pulses"]]])
    hello = rig.hello()
    eri = status.get("eri_volts")
    eos = status.get("eos_volts")
    battery_mv = (round(eri * 1000) if eri else 2850, 2750, round(eos * 1000) if eos else 2700)
    return Recording(stroke_nl=measure["stroke_nl"], start_ms=int(start_ms), end_ms=end_ms, programme=actions,
                     programme_source=source, strokes_ms=strokes_ms, samples=samples, untimed=untimed,
                     events=events, tones=tones, clock_offset_ms=offset_ms, battery_mv=battery_mv,
                     board=status.get("board", ""), fw=status.get("fw", ""), rig=hello.get("rig", ""), notes=notes)


_CONTINUOUS = re.compile(r"continuous (\d+) ug/day$")
_FLEX = re.compile(r"flex .*?(\d+) ug/day")
_STEP = re.compile(r"(\d\d):(\d\d)=(\d+)$")
_SETTINGS = ("low_reservoir_ul", "empty_reservoir_ul", "tubing_ul", "catheter_ul", "discrepancy_limit_permille",
             "reminder_lead_days")


def _steps(strings):
    steps = []
    for text in strings:
        m = _STEP.match(text)
        if m:
            steps.append([int(m.group(1)) * 60 + int(m.group(2)), int(m.group(3))])
    return sorted(steps)


def programme_from_log(events, status, notes) -> list:
    """The programme as the pump's event log tells it (its own record of what it was told), in
    rig time. A flex programme's steps are not in its log entry: the one running now is taken
    from status; an earlier one stands as a continuous programme of its day's mean dose."""
    actions = Programme()
    programs = [e for e in events if e["event"] == "program"]
    for event in events:
        t, kind = event["t_ms"], event["event"]
        if kind == "refill":
            actions.note(t, "refill", volume_ul=event["volume_ul"],
                         concentration_ug_per_ml=event["concentration_ug_per_ml"],
                         withdrawn_ul=event.get("withdrawn_ul"))
        elif kind == "program":
            new = str(event.get("new", ""))
            continuous, flex = _CONTINUOUS.match(new), _FLEX.match(new)
            if continuous:
                actions.note(t, "program", mode="continuous", daily_dose_ug=int(continuous.group(1)))
            elif flex and event is programs[-1] and status.get("mode") == "flex":
                week = {str(day): _steps(steps) for day, steps in (status.get("week") or {}).items()}
                actions.note(t, "program", mode="flex", steps=_steps(status.get("steps") or []), week=week or None)
            elif flex:
                actions.note(t, "program", mode="continuous", daily_dose_ug=int(flex.group(1)))
                notes.append("the flex programme of day %.2f (%s) is not in the pump's log step by step: it stands "
                             "as its day's mean, %s µg/day continuous" % (t / DAY_MS, new, flex.group(1)))
            elif new in ("minimum-rate", "stop"):
                actions.note(t, "program", mode=new)
            else:
                notes.append("a programme the report does not know, on day %.2f: %r" % (t / DAY_MS, new))
        elif kind == "patient_bolus_programmed":
            actions.note(t, "patient-bolus", dose_ug=event["dose_ug"], lockout_minutes=event["lockout_min"],
                         max_per_day=event["max_per_day"])
        elif kind == "bolus_start":
            if event["kind"] == "prime":
                actions.note(t, "bolus", kind="prime", volume_ul=event["volume_nl"] // 1000, minutes=event["minutes"])
            elif event["kind"] == "patient":
                actions.note(t, "bolus", kind="patient")
            else:
                actions.note(t, "bolus", kind="clinician", dose_ug=event["dose_ug"], minutes=event["minutes"])
        elif kind == "config":
            settings = {k: event[k] for k in _SETTINGS if k in event}
            if settings:
                actions.note(t, "config", settings=settings)
        elif kind == "alarm_ack":
            actions.note(t, "ack", code=event["code"])
        elif kind == "motor_stall":
            # The rig's stall, as the pump saw it: from its failed stroke to the retry that turned.
            actions.note(t, "stall", mode="on")
        elif kind == "motor_stall_recovered":
            actions.note(max(t - 1, actions[-1]["t_ms"] if actions else t), "stall", mode="off")
    if any(e["event"] == "motor_stall" for e in events):
        notes.append("the motor stalls the rig made are not in the pump's log as such: the model's motor stops "
                     "where the pump logged a stall and turns again where it logged the motor recovered")
    return sorted(actions, key=lambda a: a["t_ms"])


# -- the analysis -----------------------------------------------------------------------------


@dataclass
class Analysis:
    """The recording on an hourly grid from its start: cumulative volumes at each point (nL:
    programmed a Fraction, delivered an int, or None where the rig's count is not known),
    hours and days between them, the trumpet figures, the alarms and refills."""

    recording: Recording
    grid_ms: list
    programmed_nl: list
    delivered_nl: list
    reservoir_nl: list  # the last fill less what the rig counted since (None before a fill)
    expected_reservoir_nl: list  # the model's
    thresholds_ul: list  # (low, empty) at each point, the model's settings
    hours: list  # {start_ms, end_ms, programmed_nl, delivered_nl, steady}
    days: list
    trumpet: dict  # window hours -> {max_pct, min_pct, windows, stroke_pct}
    markers: list  # (t_ms, code, "rose" | "acknowledged" | "cleared", before a refill at t_ms), the pump's log
    expected_alarms: list  # (t_ms, code), the model's
    refills: list  # (t_ms, volume_ul)
    alarm_spans: list  # (code, from_ms, to_ms), the pump's log
    notes: list

    @property
    def total_programmed_nl(self):
        return self.programmed_nl[-1]

    @property
    def total_delivered_nl(self):
        return self.delivered_nl[-1]


def _apply(model, action, notes):
    do = action["do"]
    when = "day %.2f" % (action["t_ms"] / DAY_MS)
    try:
        if do == "refill":
            model.refill(action["volume_ul"], action["concentration_ug_per_ml"], action.get("withdrawn_ul"),
                         action.get("reminder_days"))
        elif do == "program":
            mode = action["mode"]
            if mode == "continuous":
                model.program("continuous", daily_dose_ug=action["daily_dose_ug"])
            elif mode == "flex":
                if action.get("week"):
                    notes.append("%s: the weekdays' own steps of a flex programme are not modelled; the programmed "
                                 "curve follows its everyday steps" % when)
                model.program("flex", steps=[tuple(s) for s in action["steps"]])
            else:
                model.program(mode, confirm=True)
        elif do == "patient-bolus":
            model.program_patient(action["dose_ug"], action["lockout_minutes"], action["max_per_day"])
        elif do == "bolus":
            kind = action["kind"]
            if kind == "patient":
                model.bolus_patient()
            elif kind == "prime":
                model.bolus_prime(action["volume_ul"], action["minutes"])
            else:
                model.bolus(action["dose_ug"], action["minutes"])
        elif do == "config":
            model.config(**action["settings"])
        elif do == "ack":
            model.ack(action["code"])
        elif do == "stall":
            model.set_stall(action["mode"], action.get("attempts"))
        elif do == "power-cycle":
            model.power_cut()
        elif do == "battery":
            model.set_battery(action["millivolts"])
        else:
            notes.append("%s: an action the report does not know: %r" % (when, do))
    except Refusal as refusal:
        notes.append("%s: the reference model refuses %s (%s), which the pump took" % (when, do, refusal))


def _delivered(recording):
    """delivered(t): nL the rig counted in (start, t], or None where it is not known."""
    s = recording.stroke_nl
    if recording.strokes_ms is not None:
        strokes = sorted(recording.strokes_ms)
        base = bisect.bisect_right(strokes, recording.start_ms)
        return lambda t: (bisect.bisect_right(strokes, t) - base) * s
    counts = {int(t): p for t, p in recording.samples}
    before = [(t, p) for t, p in recording.samples if t <= recording.start_ms]
    base = before[-1][1] if before else 0
    counts.setdefault(recording.start_ms, base)
    return lambda t: (counts[t] - base) * s if t in counts else None


# The pump logs a stall of its motor and its recovery as events of their own.
_STALL_EVENTS = {"motor_stall": True, "motor_stall_recovered": False}


def alarm_changes(events):
    """(t_ms, code, active, seq) of every alarm the pump's log shows rising or clearing."""
    changes = []
    for e in events:
        if e["event"] == "alarm":
            changes.append((e["t_ms"], e["code"], bool(e["active"]), e.get("seq", 0)))
        elif e["event"] in _STALL_EVENTS:
            changes.append((e["t_ms"], "MOTOR_STALL", _STALL_EVENTS[e["event"]], e.get("seq", 0)))
    return changes


def _alarm_spans(events, end_ms, notes):
    spans, open_ = [], {}
    for t, code, active, _ in alarm_changes(events):
        if active:
            if code in open_:
                notes.append("the pump's log has %s rise on day %.3f while up since day %.3f, with no clear between "
                             "(its log misses a clear)" % (code, t / DAY_MS, open_[code] / DAY_MS))
                spans.append((code, open_.pop(code), t))
            open_[code] = t
        elif code in open_:
            spans.append((code, open_.pop(code), t))
    spans += [(code, t, end_ms) for code, t in open_.items()]
    return sorted(spans, key=lambda s: s[1])


def analyse(recording: Recording) -> Analysis:
    rec = recording
    notes = list(rec.notes)
    start, end = rec.start_ms, max(rec.start_ms, rec.end_ms)
    if rec.untimed and rec.strokes_ms is not None:
        notes.append("the rig counted %d strokes before its trace began" % rec.untimed)
    if rec.strokes_ms is None and not any(t <= start for t, _ in rec.samples):
        notes.append("the rig's count was not read at the start: it is taken to have counted nothing before it")
    grid = list(range(start, end + 1, HOUR_MS))
    if grid[-1] != end:
        grid.append(end)
    actions = sorted(rec.programme, key=lambda a: a["t_ms"])
    model = PumpModel(rec.stroke_nl, tuple(rec.battery_mv))
    first = min([start] + [a["t_ms"] for a in actions])
    model.t_ms = model.boot_ms = model.last_reading_ms = first
    delivered_at = _delivered(rec)
    programmed, delivered, expected_res, thresholds, state_ok, expected_alarms = [], [], [], [], [], []
    seen_codes = set()
    i = 0
    for g in grid:
        while i < len(actions) and actions[i]["t_ms"] <= g:
            model.advance(max(model.t_ms, actions[i]["t_ms"]))
            _apply(model, actions[i], notes)
            i += 1
        model.advance(g)
        programmed.append(Fraction(model.delivered_nl) + model.owed)
        delivered.append(delivered_at(g))
        expected_res.append(model.reservoir_nl if model.filled and model.known_reservoir else None)
        thresholds.append((model.settings["low_reservoir_ul"], model.settings["empty_reservoir_ul"]))
        state_ok.append(model.state == "infusing" and not model.critical())
        for code, since in model.alarms.items():
            if code not in seen_codes:
                expected_alarms.append((since, code))
        seen_codes = set(model.alarms)
    base = programmed[0]
    programmed = [p - base for p in programmed]

    refills = [(a["t_ms"], a["volume_ul"]) for a in actions if a["do"] == "refill"]
    spans = _alarm_spans(rec.events, end, notes)
    stops = [(f, t) for code, f, t in spans if code in CRITICAL]
    unsteady_at = [a["t_ms"] for a in actions if a["do"] in UNSTEADY or (a["do"] == "program" and a["mode"] == "stop")]

    hours = []
    for k in range(len(grid) - 1):
        a, b = grid[k], grid[k + 1]
        if b - a != HOUR_MS:
            continue
        p = programmed[k + 1] - programmed[k]
        d = None if delivered[k] is None or delivered[k + 1] is None else delivered[k + 1] - delivered[k]
        steady = (p > 0 and d is not None and state_ok[k] and state_ok[k + 1]
                  and not any(a < t <= b for t in unsteady_at)
                  and not any(f < b and t > a for f, t in stops))
        hours.append({"start_ms": a, "end_ms": b, "programmed_nl": p, "delivered_nl": d, "steady": steady})

    trumpet = _trumpet(hours, rec.stroke_nl)
    markers = []
    refilled = [(e["t_ms"], e.get("seq", 0)) for e in rec.events if e["event"] == "refill"]
    # Before a refill the pump logged after it at the same ms: on the reservoir before that fill.
    for t, code, active, seq in alarm_changes(rec.events):
        markers.append((t, code, "rose" if active else "cleared", any(t == r and seq < n for r, n in refilled)))
    for e in rec.events:
        if e["event"] == "alarm_ack":
            t, seq = e["t_ms"], e.get("seq", 0)
            markers.append((t, e["code"], "acknowledged", any(t == r and seq < n for r, n in refilled)))
    markers.sort(key=lambda m: m[0])
    reservoir = _reservoir(grid, refills, delivered_at)
    analysis = Analysis(recording=rec, grid_ms=grid, programmed_nl=programmed, delivered_nl=delivered,
                        reservoir_nl=reservoir, expected_reservoir_nl=expected_res, thresholds_ul=thresholds,
                        hours=hours, days=[], trumpet=trumpet, markers=markers,
                        expected_alarms=[(t, c) for t, c in expected_alarms if start <= t <= end],
                        refills=refills, alarm_spans=spans, notes=notes)
    analysis.days = _days(analysis)
    return analysis


def _reservoir(grid, refills, delivered_at):
    """At each point: the last fill less what the rig counted since it (nL); None before a fill,
    or where the rig's count (at the point or at the fill) is not known."""
    out = []
    for g in grid:
        fills = [(t, v) for t, v in refills if t <= g]
        now, then = delivered_at(g), delivered_at(fills[-1][0]) if fills else None
        out.append(None if now is None or then is None else fills[-1][1] * 1000 - (now - then))
    return out


def reservoir_at(rec, refills, t_ms, before_fill=False):
    """The reservoir at t_ms as the rig sees it (nL): the last fill less the strokes since; with
    before_fill, just before a fill at t_ms. Before the first fill a pump's reservoir is empty."""
    fills = [(t, v) for t, v in refills if t < t_ms or (t == t_ms and not before_fill)]
    if rec.strokes_ms is None:
        return None
    if not fills:
        return 0
    strokes = sorted(rec.strokes_ms)
    t, volume_ul = fills[-1]
    return volume_ul * 1000 - (bisect.bisect_right(strokes, t_ms) - bisect.bisect_right(strokes, t)) * rec.stroke_nl


def _windows(hours, window_h):
    """(error %, programmed nL) of every run of window_h steady hours in a row."""
    p_sum, d_sum, unsteady = [Fraction(0)], [0], [0]
    for h in hours:
        p_sum.append(p_sum[-1] + h["programmed_nl"])
        d_sum.append(d_sum[-1] + (h["delivered_nl"] or 0))
        unsteady.append(unsteady[-1] + (not h["steady"]))
    out = []
    for i in range(len(hours) - window_h + 1):
        j = i + window_h
        if unsteady[j] != unsteady[i] or hours[j - 1]["end_ms"] - hours[i]["start_ms"] != window_h * HOUR_MS:
            continue
        p = p_sum[j] - p_sum[i]
        out.append(((d_sum[j] - d_sum[i] - p) * 100 / p, p))
    return out


def trumpet_windows(hours, window_h):
    """The percentage errors 100 (delivered - programmed) / programmed of every run of window_h
    steady hours in a row, one a starting hour (a Fraction each)."""
    return [error for error, _ in _windows(hours, window_h)]


def _trumpet(hours, stroke_nl):
    out = {}
    for w in WINDOWS_H:
        windows = _windows(hours, w)
        errors = [e for e, _ in windows]
        out[w] = {"max_pct": max(errors) if errors else None, "min_pct": min(errors) if errors else None,
                  "windows": len(errors),
                  # One stroke against the smallest programme of a window: counting whole strokes, no
                  # window's error can reach it (the rig's count trails the programme by under a stroke).
                  "stroke_pct": Fraction(stroke_nl * 100) / min(p for _, p in windows) if windows else None}
    return out


def _days(analysis):
    rec, grid = analysis.recording, analysis.grid_ms
    index = {g: k for k, g in enumerate(grid)}
    days = []
    d = 0
    while rec.start_ms + d * DAY_MS < grid[-1]:
        a = rec.start_ms + d * DAY_MS
        b = min(a + DAY_MS, grid[-1])
        ka, kb = index[a], index[b]
        p = analysis.programmed_nl[kb] - analysis.programmed_nl[ka]
        da, db = analysis.delivered_nl[ka], analysis.delivered_nl[kb]
        delivered = None if da is None or db is None else db - da
        last = b == grid[-1]
        in_day = lambda t: a <= t < b or (last and t == b)  # noqa: E731 - an event at midnight: the new day's
        days.append({
            "day": d, "from_day": a / DAY_MS, "hours": (b - a) / HOUR_MS,
            "strokes": None if delivered is None else delivered // rec.stroke_nl,
            "delivered_nl": delivered, "programmed_nl": p,
            "reservoir_nl": analysis.reservoir_nl[kb], "expected_reservoir_nl": analysis.expected_reservoir_nl[kb],
            "alarms_raised": [c for t, c, what, _ in analysis.markers if what == "rose" and in_day(t)],
            "alarms_acknowledged": [c for t, c, what, _ in analysis.markers if what == "acknowledged" and in_day(t)],
            "alarms_cleared": [c for t, c, what, _ in analysis.markers if what == "cleared" and in_day(t)],
            "refills": [v for t, v in analysis.refills if in_day(t)],
            "tones": sum(1 for tone in rec.tones or () if in_day(tone["t_ms"])),
        })
        d += 1
    return days


# -- figures for a summary and a person ----------------------------------------------------------


def _pct(value):
    return None if value is None else round(float(value), 3)


def summary(recording_or_analysis) -> dict:
    """The report's figures: totals, the worst error of a steady hour in µL and %, and the
    trumpet's largest and smallest error per window (None where no window was steady)."""
    a = recording_or_analysis if isinstance(recording_or_analysis, Analysis) else analyse(recording_or_analysis)
    rec = a.recording
    p, d = a.total_programmed_nl, a.total_delivered_nl
    steady = [h for h in a.hours if h["steady"]]
    worst_ul = max(steady, key=lambda h: abs(h["delivered_nl"] - h["programmed_nl"]), default=None)
    worst_pct = max(steady, key=lambda h: abs((h["delivered_nl"] - h["programmed_nl"]) / h["programmed_nl"]),
                    default=None)
    return {
        "days": round((a.grid_ms[-1] - a.grid_ms[0]) / DAY_MS, 3),
        "pulses": None if d is None else d // rec.stroke_nl,
        "stroke_nl": rec.stroke_nl,
        "programme": rec.programme_source,
        "trace": rec.strokes_ms is not None,
        "programmed_ul": round(float(p) / 1000, 3),
        "delivered_ul": None if d is None else d / 1000,
        "error_ul": None if d is None else round(float(d - p) / 1000, 3),
        "error_pct": None if d is None or not p else _pct((d - p) * 100 / p),
        "worst_hourly_error_ul": None if worst_ul is None else
        round(float(worst_ul["delivered_nl"] - worst_ul["programmed_nl"]) / 1000, 3),
        "worst_hourly_error_pct": None if worst_pct is None else
        _pct((worst_pct["delivered_nl"] - worst_pct["programmed_nl"]) * 100 / worst_pct["programmed_nl"]),
        "steady_hours": len(steady),
        "trumpet": {"%dh" % w: {"max_pct": _pct(t["max_pct"]), "min_pct": _pct(t["min_pct"]),
                                "windows": t["windows"], "stroke_pct": _pct(t["stroke_pct"])}
                    for w, t in a.trumpet.items()},
    }


# -- plots ------------------------------------------------------------------------------------

CODE_COLOURS = {"LOW_RESERVOIR": "tab:orange", "EMPTY_RESERVOIR": "tab:red", "REFILL_REMINDER": "tab:green",
                "MOTOR_STALL": "tab:purple", "THERAPY_STOPPED": "tab:brown", "BATTERY_ERI": "tab:olive",
                "BATTERY_EOS": "black", "MEMORY_REPAIRED": "tab:cyan", "MEMORY_ERROR": "tab:pink",
                "LOW_BATTERY_RESET": "tab:gray", "CLOCK_RESTORED": "yellowgreen"}
MARKER_OF = {"rose": "^", "acknowledged": "D", "cleared": "v"}


def _colour(code):
    return CODE_COLOURS.get(code, "tab:gray")


def _days_axis(ax):
    ax.set_xlabel("pump time (days)")
    ax.grid(True, alpha=0.3)


def _no_data(ax, text):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4",
            bbox={"fc": "white", "ec": "none"})


def figures(analysis: Analysis) -> dict:
    """The report's plots as matplotlib Figures (no display needed), by name."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rec = analysis.recording
    days = [g / DAY_MS for g in analysis.grid_ms]
    stroke_ul = rec.stroke_nl / 1000
    known = [(x, d, p) for x, d, p in zip(days, analysis.delivered_nl, analysis.programmed_nl) if d is not None]
    figs = {}

    # 1. cumulative volume, programmed and measured, and their difference
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    top.plot(days, [float(p) / 1e6 for p in analysis.programmed_nl], color="tab:blue", lw=2.5,
             label="programmed (reference model, %s)" % ("what the harness sent" if rec.programme_source == "harness"
                                                          else "replaying the pump's event log"))
    top.plot([x for x, _, _ in known], [d / 1e6 for _, d, _ in known], color="tab:orange", lw=1.2,
             ls="--", marker="o" if rec.strokes_ms is None else None, label="delivered (rig's stroke count)")
    for t, volume_ul in analysis.refills:
        top.axvline(t / DAY_MS, color="0.5", ls=":", lw=1)
    top.set_ylabel("cumulative volume (mL)")
    top.set_title("Cumulative volume since day %.2f: programmed and rig-measured" % (rec.start_ms / DAY_MS))
    top.legend(loc="upper left")
    top.grid(True, alpha=0.3)
    bottom.plot([x for x, _, _ in known], [(d - float(p)) / 1000 for _, d, p in known], ".",
                ms=2 if len(known) > 200 else 6, color="tab:green",
                label="delivered − programmed, " + ("each hour" if rec.strokes_ms is not None else
                                                    "where the rig's count was read"))
    bottom.axhspan(-stroke_ul, stroke_ul, color="tab:green", alpha=0.1, label="±1 stroke (%.3f µL)" % stroke_ul)
    bottom.axhline(0, color="0.3", lw=0.8)
    bottom.set_ylabel("difference (µL)")
    bottom.legend(loc="upper right", fontsize=8)
    _days_axis(bottom)
    figs["cumulative"] = fig

    # 2. the reservoir, its thresholds, the alarms and the refills
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    res = [(x, r) for x, r in zip(days, analysis.reservoir_nl) if r is not None]
    if res:
        ax.plot([x for x, _ in res], [r / 1000 for _, r in res], color="tab:blue", lw=2,
                label="reservoir: last fill − rig-counted since")
    ax.step(days, [lo for lo, _ in analysis.thresholds_ul], where="post", color="tab:orange", ls="--", lw=1,
            label="LOW threshold")
    ax.step(days, [em for _, em in analysis.thresholds_ul], where="post", color="tab:red", ls="--", lw=1,
            label="EMPTY threshold")
    for t, volume_ul in analysis.refills:
        ax.axvline(t / DAY_MS, color="0.5", ls=":", lw=1)
        ax.annotate("refill %g mL" % (volume_ul / 1000), (t / DAY_MS, 1), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", fontsize=8, color="0.3")
    codes = []
    for t, code, what, before in analysis.markers:
        r = reservoir_at(rec, analysis.refills, t, before)
        if r is None or not rec.start_ms <= t <= rec.end_ms:
            continue
        ax.plot(t / DAY_MS, r / 1000, MARKER_OF[what], color=_colour(code), ms=8, mec="black", mew=0.6)
        if code not in codes:
            codes.append(code)
    for t, code in analysis.expected_alarms:
        r = reservoir_at(rec, analysis.refills, t)
        if r and code in ("LOW_RESERVOIR", "EMPTY_RESERVOIR"):
            ax.plot(t / DAY_MS, r / 1000, "o", ms=13, mfc="none", mec=_colour(code), mew=1.2)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], ls="", marker="s", color=_colour(c), label=c) for c in codes]
    handles += [Line2D([], [], ls="", marker=m, color="0.6", mec="black", label="alarm %s (pump's log)" % w)
                for w, m in MARKER_OF.items()]
    handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="0.3", ms=10,
                          label="reservoir alarm the model expects"))
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncol=4)
    ax.set_ylabel("reservoir (µL)")
    ax.set_ylim(bottom=0)
    ax.set_title("Reservoir, alarm thresholds and alarms")
    _days_axis(ax)
    if not res:
        _no_data(ax, "no fill in the programme, or no trace: the reservoir is not known")
    figs["reservoir"] = fig

    # 3. delivery error per hour
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    hours = [h for h in analysis.hours if h["delivered_nl"] is not None]
    steady = [h for h in hours if h["steady"]]
    other = [h for h in hours if not h["steady"]]

    def mid(h):
        return (h["start_ms"] + HOUR_MS / 2) / DAY_MS

    for group, colour, label in ((steady, "tab:blue", "steady hour"), (other, "0.6", "hour left out of the trumpet")):
        if group:
            top.plot([mid(h) for h in group], [(h["delivered_nl"] - float(h["programmed_nl"])) / 1000 for h in group],
                     ".", ms=3, color=colour, label=label)
    top.axhline(0, color="0.3", lw=0.8)
    top.axhline(stroke_ul, color="tab:red", ls=":", lw=1, label="±1 stroke")
    top.axhline(-stroke_ul, color="tab:red", ls=":", lw=1)
    top.set_ylabel("error per hour (µL)")
    top.set_title("Delivery error per hour: rig-measured − programmed")
    top.legend(loc="best", fontsize=8)
    top.grid(True, alpha=0.3)
    if steady:
        bottom.plot([mid(h) for h in steady],
                    [float((h["delivered_nl"] - h["programmed_nl"]) * 100 / h["programmed_nl"]) for h in steady],
                    ".", ms=3, color="tab:blue", label="steady hour")
        bound = [float(rec.stroke_nl * 100 / h["programmed_nl"]) for h in steady]
        bottom.plot([mid(h) for h in steady], bound, color="tab:red", ls=":", lw=0.8, drawstyle="steps-mid",
                    label="±1 stroke of the hour's programme")
        bottom.plot([mid(h) for h in steady], [-b for b in bound], color="tab:red", ls=":", lw=0.8,
                    drawstyle="steps-mid")
        bottom.legend(loc="upper right", fontsize=8)
    else:
        _no_data(bottom, "no steady hour with the rig's count known")
    bottom.axhline(0, color="0.3", lw=0.8)
    bottom.set_ylabel("error per hour (% of programmed)")
    bottom.set_xlim(days[0], days[-1])
    _days_axis(bottom)
    if not hours:
        _no_data(top, "the rig's count is not known hour by hour (no trace)")
    figs["hourly"] = fig

    # 4. the trumpet curve
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    rows = [(w, t) for w, t in analysis.trumpet.items() if t["windows"]]
    if rows:
        ax.plot([w for w, _ in rows], [float(t["max_pct"]) for _, t in rows], "-^", color="tab:red",
                label="largest error (Ep max)")
        ax.plot([w for w, _ in rows], [float(t["min_pct"]) for _, t in rows], "-v", color="tab:blue",
                label="smallest error (Ep min)")
        ax.plot([w for w, _ in rows], [float(t["stroke_pct"]) for _, t in rows], ":", color="0.4",
                label="±1 stroke of the smallest window's programme")
        ax.plot([w for w, _ in rows], [-float(t["stroke_pct"]) for _, t in rows], ":", color="0.4")
        p, d = analysis.total_programmed_nl, analysis.total_delivered_nl
        if d is not None and p:
            ax.axhline(float((d - p) * 100 / p), color="tab:green", lw=1,
                       label="whole period (%.2f days)" % ((analysis.grid_ms[-1] - analysis.grid_ms[0]) / DAY_MS))
        ax.legend(loc="upper right", fontsize=8)
    else:
        _no_data(ax, "no observation window held steady flow with the rig's count known")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(list(WINDOWS_H), ["1 h", "6 h", "24 h", "7 d"])
    ax.minorticks_off()
    ax.set_xlim(0.7, 240)
    ax.set_xlabel("observation window")
    ax.set_ylabel("error of the delivered volume (% of programmed)")
    ax.set_title("Trumpet curve (after IEC 60601-2-24): windows slid in 1 h steps")
    ax.grid(True, alpha=0.3)
    figs["trumpet"] = fig

    # 5. sounds: the rig's tones, the pump's alarms beneath
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    rows = ["two-tone", "single"]
    span_codes = []
    for code, f, t in analysis.alarm_spans:
        if t > f and code not in span_codes:  # not those raised and cleared at once (a blank pump's boot)
            span_codes.append(code)
    heard = {pattern: [tone["t_ms"] / DAY_MS for tone in rec.tones or () if tone["pattern"] == pattern
                       and rec.start_ms <= tone["t_ms"] <= rec.end_ms] for pattern in rows}
    labels = ["rig heard: %s (%d)" % (r, len(heard[r])) for r in rows] + \
        ["%s active (pump's log)" % c for c in span_codes]
    for i, pattern in enumerate(rows):
        xs = heard[pattern]
        if xs:
            ax.plot(xs, [i] * len(xs), "|", ms=14, mew=1.2, color="tab:red" if pattern == "two-tone" else "tab:blue",
                    label="%s: %d sounds" % (pattern, len(xs)))
    for code, f, t in analysis.alarm_spans:
        f, t = max(f, rec.start_ms), min(t, rec.end_ms)
        if t > f and code in span_codes:
            row = len(rows) + span_codes.index(code)
            ax.broken_barh([(f / DAY_MS, max((t - f) / DAY_MS, 0.02))], (row - 0.3, 0.6), color=_colour(code),
                           alpha=0.6)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    pad = max(rec.end_ms - rec.start_ms, HOUR_MS) / DAY_MS / 100  # a sound at either end stays in sight
    ax.set_xlim(rec.start_ms / DAY_MS - pad, rec.end_ms / DAY_MS + pad)
    ax.set_title("Sounds the rig heard (rig tones: how many) and the alarms the pump logged")
    if rec.tones is None:
        _no_data(ax, "this rig hears no tones")
    _days_axis(ax)
    figs["tones"] = fig
    return figs


# -- the files ---------------------------------------------------------------------------------

CSV_COLUMNS = ("day", "from_day", "hours", "strokes", "delivered_nl", "programmed_nl", "delivered_ul",
               "programmed_ul", "error_ul", "error_pct", "reservoir_ul", "expected_reservoir_ul",
               "alarms_raised", "alarms_acknowledged", "alarms_cleared", "refills_ul", "tones")


def _nl3(value):
    """A Fraction of nL to three decimals (pL), as text."""
    return "%.3f" % float(value) if value is not None else ""


def csv_rows(analysis):
    for day in analysis.days:
        p, d = day["programmed_nl"], day["delivered_nl"]
        yield {
            "day": day["day"], "from_day": "%.3f" % day["from_day"], "hours": "%g" % day["hours"],
            "strokes": "" if day["strokes"] is None else day["strokes"],
            "delivered_nl": "" if d is None else d, "programmed_nl": _nl3(p),
            "delivered_ul": "" if d is None else "%.3f" % (d / 1000), "programmed_ul": "%.3f" % (float(p) / 1000),
            "error_ul": "" if d is None else "%.3f" % (float(d - p) / 1000),
            "error_pct": "" if d is None or not p else "%.3f" % float((d - p) * 100 / p),
            "reservoir_ul": "" if day["reservoir_nl"] is None else "%.3f" % (day["reservoir_nl"] / 1000),
            "expected_reservoir_ul": "" if day["expected_reservoir_nl"] is None else
            "%.3f" % (float(day["expected_reservoir_nl"]) / 1000),
            "alarms_raised": ";".join(day["alarms_raised"]), "alarms_acknowledged": ";".join(day["alarms_acknowledged"]),
            "alarms_cleared": ";".join(day["alarms_cleared"]),
            "refills_ul": ";".join(str(v) for v in day["refills"]), "tones": day["tones"],
        }


def write_csv(path, analysis):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(analysis))


def _cell(value, fmt="%.3f"):
    return "–" if value is None else fmt % value


def _html(analysis, figs_written, s):
    rec = analysis.recording
    esc = html.escape
    source = ("sent by the harness itself (%d actions, each at the rig's time)" % len(rec.programme)
              if rec.programme_source == "harness" else
              "read from the pump's event log (the pump's own record of what it was told: the harness sent "
              "none to this report)")
    rows = [
        ("pump time", "day %.3f to day %.3f (%.3f days)" % (rec.start_ms / DAY_MS, rec.end_ms / DAY_MS, s["days"])),
        ("board, firmware, rig", "%s, %s, %s" % (rec.board or "?", rec.fw or "?", rec.rig or "?")),
        ("programme", source),
        ("stroke", "%d nL" % rec.stroke_nl),
        ("strokes counted by the rig", _cell(s["pulses"], "%d")),
        ("programmed (reference model)", "%.3f µL" % s["programmed_ul"]),
        ("delivered (rig)", _cell(s["delivered_ul"], "%.3f µL")),
        ("difference", "%s (%s)" % (_cell(s["error_ul"], "%+.3f µL"), _cell(s["error_pct"], "%+.3f %%"))),
        ("worst steady hour", "%s, %s (of %d steady hours)" % (_cell(s["worst_hourly_error_ul"], "%+.3f µL"),
                                                               _cell(s["worst_hourly_error_pct"], "%+.2f %%"),
                                                               s["steady_hours"])),
    ]
    trumpet = "".join(
        "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>" % (
            name, _cell(t["max_pct"], "%+.2f %%"), _cell(t["min_pct"], "%+.2f %%"),
            _cell(t["stroke_pct"], "±%.2f %%"), t["windows"])
        for name, t in (("1 h", s["trumpet"]["1h"]), ("6 h", s["trumpet"]["6h"]), ("24 h", s["trumpet"]["24h"]),
                        ("7 d", s["trumpet"]["168h"])))
    captions = {
        "cumulative": "Cumulative volume: the programme as the reference model delivers it, and the rig's count "
                      "of strokes; beneath, their difference.",
        "reservoir": "The reservoir as the rig sees it (the last fill less the strokes counted since), the alarm "
                     "thresholds, the pump's alarms as its log has them, and the refills.",
        "hourly": "Delivery error in each hour, in µL and as a percentage of the hour's programme; the dotted "
                  "lines are one stroke.",
        "trumpet": "The largest and smallest error over every window of 1 h, 6 h, 24 h and 7 days of steady flow, "
                   "slid an hour at a time.",
        "tones": "The sounds the rig heard, and the alarms the pump logged.",
    }
    images = "".join('<figure><img src="%s" alt="%s"><figcaption>%s</figcaption></figure>'
                     % (esc(path.name), esc(name), esc(captions[name])) for name, path in figs_written.items())
    notes = "".join("<li>%s</li>" % esc(n) for n in analysis.notes) or "<li>none</li>"
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pumpsim delivery report</title>
<style>
body {{ font-family: sans-serif; max-width: 62em; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #bbb; padding: 0.3em 0.7em; text-align: left; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; }}
</style></head><body>
<h1>Delivery accuracy</h1>
<p>What the rig measured (its own stroke count and the time of each stroke), beside what was programmed
(computed by the harness's reference model, never by the firmware).</p>
<table>{summary}</table>
<h2>Trumpet curve</h2>
<p>Error of the delivered volume, 100 × (delivered − programmed) / programmed, over observation windows of
steady flow (no refill, power cut, motor fault or stop inside), slid an hour at a time. Counting whole
strokes, a window can be off by one stroke either way: that bound is given beside.</p>
<table><tr><th>window</th><th>largest error</th><th>smallest error</th><th>one stroke</th><th>windows</th></tr>
{trumpet}</table>
{images}
<h2>Notes</h2><ul>{notes}</ul>
<p>The same figures per pump day: <a href="report.csv">report.csv</a>; what they were made from:
<a href="{recording}">{recording}</a> (<code>pumpsim report --recording {recording}</code> makes this page
again).</p>
</body></html>
""".format(summary="".join("<tr><th>%s</th><td>%s</td></tr>" % (esc(k), esc(v)) for k, v in rows),
           trumpet=trumpet, images=images, notes=notes, recording=RECORDING)


def write_report(directory, recording: Recording) -> Path:
    """report.html, its PNGs, report.csv and recording.json into directory; the page's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    analysis = analyse(recording)
    recording.save(directory / RECORDING)
    written = {}
    for name, fig in figures(analysis).items():
        path = directory / ("%s.png" % name)
        fig.savefig(path, dpi=100)
        written[name] = path
    write_csv(directory / "report.csv", analysis)
    s = summary(analysis)
    (directory / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
    page = directory / "report.html"
    page.write_text(_html(analysis, written, s))
    return page


def report_for(client, rig, directory, programme=None, start_ms=None, samples=None) -> Path:
    """Gather a recording from the board and write its report into directory; the page's path.
    rig: the rig itself (a test's undeclared rig would refuse `tones`)."""
    return write_report(directory, gather(client, rig, programme, start_ms, samples))
