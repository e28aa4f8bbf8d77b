"""A scenario (hil/scenario.py, docs/scenarios.md) played on a board through its client and rig.

    runner = Runner(scenario.load("scenarios/x.toml"), client, rig)
    rows = runner.run()                 # one Row per expectation
    print(table(rows))
    result = run_on_board(found, "emu") # or on a new board of its own, with its report

Each step happens at its pump time, the same requests done to the reference model (hil/model.py)
in lockstep. The delivered volume is the rig's count; the volume the programme should deliver is
the model's, never the pump's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pumpsim.errors import Refused, UsageError
from pumpsim.hil.model import PumpModel, Refusal
from pumpsim.hil.needs import NEED_FEATURES, unable
from pumpsim.hil.scenario import Scenario, show_time, show_ul

# -- running it -----------------------------------------------------------------------------


def missing_needs(scenario, can):
    """The needs of the scenario a rig whose hello lists `can` cannot meet, sorted."""
    return sorted(set(scenario.needs) - set(can))


@dataclass
class Row:
    """One expectation: when, what was expected, what was seen, and whether they agree."""

    at_ms: int
    line: int
    expected: str
    seen: str
    passed: bool
    detail: str = ""  # what the pump said besides: the reason of a refusal

    @property
    def result(self):
        return "PASS" if self.passed else "FAIL"

    def as_json(self):
        row = {"at": show_time(self.at_ms), "at_ms": self.at_ms, "line": self.line, "expected": self.expected,
               "seen": self.seen, "result": self.result}
        if self.detail:
            row["detail"] = self.detail
        return row


def programme_action(step):
    """A step as the report's programme has an action (hil/report.py, Programme): "do" and its
    fields."""
    v = dict(step.values)
    if step.action == "program":
        if step.variant == "patient-bolus":
            return {"do": "patient-bolus", **v}
        action = {"do": "program", "mode": step.variant}
        if "daily_dose_ug" in v:
            action["daily_dose_ug"] = v["daily_dose_ug"]
        if "steps" in v:
            action["steps"] = [[m, d] for m, d in v["steps"]]
        return action
    if step.action == "bolus":
        if step.variant == "prime":
            return {"do": "bolus", "kind": "prime", "volume_ul": v["prime_ul"], "minutes": v["minutes"]}
        return {"do": "bolus", "kind": step.variant, **v}
    if step.action == "config":
        return {"do": "config", "settings": v}
    if step.action == "motor-stall":
        return {"do": "stall", "mode": step.variant, **v}
    if step.action == "battery":
        return {"do": "battery", "millivolts": v["voltage_mv"]}
    return {"do": step.action, **v}  # refill, ack, power-cycle


def _outcome(exc):
    if exc is None:
        return "accepted"
    return "refused %s%s" % (exc.code, " (%s)" % exc.limit if exc.limit else "")


class Runner:
    """Plays a scenario on a board through its client and rig, the model beside it. On a rig
    whose clock runs by itself, each stop is where the clock was when the run got there, the
    model following the rig's time."""

    POLL_S = 0.05

    def __init__(self, scenario, client, rig, log=None):
        self.scenario, self.client, self.rig = scenario, client, rig
        self.log = log or (lambda line: None)
        self.rows = []
        self.programme = []  # the actions done, as the report takes them (hil/report.py, Programme)
        self.samples = []  # [clock_ms, pulses] the rig measured at each stop, for the report
        hello = rig.hello()
        self.stepped = hello.get("clock") == "stepped"
        measure = rig.measure()
        self.stroke_nl = measure["stroke_nl"]
        status = client.status()
        self.start_ms = measure["clock_ms"]
        self.model = PumpModel(self.stroke_nl, (round(status["eri_volts"] * 1000), 2750,
                                                    round(status["eos_volts"] * 1000)))
        self.model.t_ms = self.start_ms
        boots = [e for e in client.log() if e["event"] == "boot"]
        self.model.boot_ms = boots[-1]["t_ms"] if boots else self.start_ms
        self.model.last_reading_ms = self.model.boot_ms
        self.seen = {}  # stop (ms from the start) -> (rig delivered_nl, model delivered_nl)

    # -- time -------------------------------------------------------------------------------

    def _go_to(self, stop_ms):
        target = self.start_ms + stop_ms
        now = self.rig.time()["clock_ms"]
        if target > now and self.stepped:
            self.rig.advance(target - now)
        while target > now and not self.stepped:  # a clock of its own (realtime, xN): wait for it
            time.sleep(self.POLL_S)
            now = self.rig.time()["clock_ms"]
        measure = self.rig.measure()
        self._follow(measure)
        self.seen[stop_ms] = (measure["delivered_nl"], self.model.delivered_nl)
        self.samples.append([measure["clock_ms"], measure["pulses"]])

    def _follow(self, measure=None):
        """The model to the rig's time (a real-time clock runs on between requests)."""
        measure = measure or self.rig.measure()
        self.model.advance(max(self.model.t_ms, measure["clock_ms"]))
        self.model.follow_retry_phase(measure.get("last_failed_ms"))

    def run(self):
        steps = list(self.scenario.steps)
        for stop in self.scenario.stops():
            self._go_to(stop)
            while steps and steps[0].at_ms == stop:
                step = steps.pop(0)
                self.log("%s  %s" % (show_time(stop), step.describe()))
                if not self.stepped:
                    self._follow()
                getattr(self, "_do_" + step.action.replace("-", "_"))(step)
        return self.rows

    @property
    def passed(self):
        return all(row.passed for row in self.rows)

    def _row(self, step, expected, seen, passed, detail=""):
        self.rows.append(Row(step.at_ms, step.line, expected, seen, passed, detail))

    def _note(self, step):
        """The action, as the report's Programme holds it, at the rig's time (the model's, which
        follows it)."""
        self.programme.append({"t_ms": self.model.t_ms, **programme_action(step)})

    # -- requests -------------------------------------------------------------------------------

    def _request(self, step, call, model_call):
        """Both the pump and the model do it (or refuse it); a row when the step expects a
        refusal or when the pump or the model did other than the step expects."""
        self.client.nonce = None  # each request a session of its own, as the CLI does
        try:
            model_call()
            model_says = None
        except Refusal as refusal:
            model_says = refusal
        try:
            call()
            pump_says = None
        except Refused as refused:
            pump_says = refused
        if pump_says is None:  # what the pump was told: the report's programme
            self._note(step)
        expected = "accepted" if step.refused is None else "refused %s%s" % (
            step.refused, " (%s)" % step.limit if step.limit else "")
        seen, model = _outcome(pump_says), _outcome(model_says)

        def agrees(outcome):
            if step.refused is None:
                return outcome == "accepted"
            return outcome.startswith("refused %s" % step.refused) and (
                step.limit is None or outcome == expected)

        passed = agrees(seen) and agrees(model)
        if step.refused is not None or not passed:
            if model != seen:  # the model read the docs otherwise than the pump did
                seen += "; the reference model: " + model
            self._row(step, "%s: %s" % (step.describe(), expected), seen, passed,
                      pump_says.reason if pump_says is not None else "")

    def _do_refill(self, step):
        v = step.values
        args = (v["volume_ul"], v["concentration_ug_per_ml"], v.get("withdrawn_ul"), v.get("reminder_days"))
        self._request(step, lambda: self.client.refill(*args), lambda: self.model.refill(*args))

    def _do_program(self, step):
        v, mode = step.values, step.variant
        if mode == "patient-bolus":
            args = (v["dose_ug"], v["lockout_minutes"], v["max_per_day"])
            self._request(step, lambda: self.client.program_patient_bolus(*args),
                          lambda: self.model.program_patient(*args))
            return
        payload = {"mode": mode}
        if mode == "continuous":
            payload["daily_dose_ug"] = v["daily_dose_ug"]
        elif mode == "flex":
            payload["steps"] = [[m, d] for m, d in v["steps"]]
        elif "confirm" in v:
            payload["confirm"] = v["confirm"]
        self._request(step, lambda: self.client.request("program", payload),
                      lambda: self.model.program(mode, v.get("daily_dose_ug"), v.get("steps"), v.get("confirm", False)))

    def _do_bolus(self, step):
        v, kind = step.values, step.variant
        if kind == "clinician":
            self._request(step, lambda: self.client.bolus(v["dose_ug"], v["minutes"]),
                          lambda: self.model.bolus(v["dose_ug"], v["minutes"]))
        elif kind == "patient":
            self._request(step, self.client.bolus_patient, self.model.bolus_patient)
        else:
            self._request(step, lambda: self.client.bolus_prime(v["prime_ul"], v["minutes"]),
                          lambda: self.model.bolus_prime(v["prime_ul"], v["minutes"]))

    def _do_ack(self, step):
        code = step.values["code"]
        self._request(step, lambda: self.client.ack(code), lambda: self.model.ack(code))

    def _do_config(self, step):
        self._request(step, lambda: self.client.config(**step.values), lambda: self.model.config(**step.values))

    # -- the rig ----------------------------------------------------------------------------

    def _do_motor_stall(self, step):
        self.rig.stall(step.variant, step.values.get("attempts"))
        self._note(step)
        self.model.set_stall(step.variant, step.values.get("attempts"))

    def _do_battery(self, step):
        self.rig.battery(step.values["voltage_mv"])
        self._note(step)
        self.model.set_battery(step.values["voltage_mv"])

    def _do_power_cycle(self, step):
        self.rig.power_cycle()
        self._note(step)
        self.client.nonce = None
        self.model.power_cut()
        if not self.stepped:
            boots = [e for e in self.client.log() if e["event"] == "boot"]
            if boots:
                self.model.boot_ms = boots[-1]["t_ms"]

    # -- expectations ---------------------------------------------------------------------------

    def _do_expect_alarms(self, step):
        alarms = {a["code"]: a for a in self.client.status()["alarms"]}
        v = step.values
        wants, ok = [], True
        if "present" in v:
            wants.append("%s present" % ", ".join(v["present"]))
            ok &= all(code in alarms for code in v["present"])
        if "absent" in v:
            wants.append("%s absent" % ", ".join(v["absent"]))
            ok &= not any(code in alarms for code in v["absent"])
        if "acked" in v:
            wants.append("%s acknowledged" % ", ".join(v["acked"]))
            ok &= all(code in alarms and alarms[code]["acked"] for code in v["acked"])
        seen = ", ".join("%s%s" % (code, " (acknowledged)" if a["acked"] else "")
                         for code, a in sorted(alarms.items())) or "no alarms"
        self._row(step, "alarms: " + "; ".join(wants), seen, ok)

    def _do_expect_delivered(self, step):
        v = step.values
        rig_from, model_from = self.seen[step.from_ms]
        rig_to, model_to = self.seen[step.at_ms]
        measured = rig_to - rig_from
        if "volume_ul" in v:
            expected, source = v["volume_ul"] * 1000, "the scenario's figure"
        else:
            expected, source = model_to - model_from, "the programme, by the reference model"
        if "tolerance_ul" in v:
            tolerance, said = v["tolerance_ul"] * 1000, "%d µL" % v["tolerance_ul"]
        else:
            strokes = v.get("tolerance_strokes", 1)
            tolerance = strokes * self.stroke_nl
            said = "%d stroke%s" % (strokes, "" if strokes == 1 else "s")
        window = "%s to %s" % (show_time(step.from_ms), show_time(step.at_ms))
        off = measured - expected
        self._row(step, "delivered %s: %s ± %s (%s)" % (window, show_ul(expected), said, source),
                  "rig %s (%s%s)" % (show_ul(measured), "+" if off >= 0 else "", show_ul(off)),
                  abs(off) <= tolerance)

    def _do_expect_state(self, step):
        status = self.client.status()
        v = step.values
        wants = ["%s %s" % (k, v[k]) for k in ("state", "mode") if k in v]
        ok = all(status[k] == v[k] for k in ("state", "mode") if k in v)
        self._row(step, ", ".join(wants), "state %s, mode %s" % (status["state"], status["mode"]), ok)


# -- the table ------------------------------------------------------------------------------


def table(rows):
    """The pass/fail table, one row per expectation."""
    head = ("pump time", "line", "expected", "seen", "result")
    # A failed row says what the pump said besides; a passing one keeps to the point.
    cells = [(show_time(r.at_ms), str(r.line), r.expected, r.seen + (' ("%s")' % r.detail if r.detail and not r.passed
                                                                      else ""), r.result) for r in rows]
    widths = [max(len(head[i]), *(len(c[i]) for c in cells)) if cells else len(head[i]) for i in range(5)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
    return "\n".join(lines)


# -- a board of its own ---------------------------------------------------------------------

# The board each target runs (its board.json says what it can do before it boots).
BOARD_OF_TARGET = {"emu": "emu", "rp2040js": "rpi_pico", "bench": "rpi_pico"}
# An emulated Pico runs Python at a fraction of silicon's speed on a busy machine.
SLOW_TARGET_TIMEOUT_S = 60.0


@dataclass
class Result:
    scenario: Scenario
    target: str
    directory: Path
    rows: list
    wall_s: float
    report: Path | None = None

    @property
    def passed(self):
        return all(row.passed for row in self.rows)

    @property
    def failed(self):
        return [row for row in self.rows if not row.passed]

    def as_json(self):
        result = {"scenario": self.scenario.name, "file": self.scenario.path, "target": self.target,
                  "dir": str(self.directory), "passed": self.passed, "wall_s": round(self.wall_s, 1),
                  "rows": [row.as_json() for row in self.rows]}
        if self.report is not None:
            result["report"] = str(self.report)
        return result

    def human(self):
        lines = ["scenario  %s (%s)" % (self.scenario.name, self.scenario.path),
                 "board     %s, in %s" % (self.target, self.directory), "", table(self.rows), "",
                 "%d expectations: %d passed, %d failed (%.1f s)"
                 % (len(self.rows), len(self.rows) - len(self.failed), len(self.failed), self.wall_s)]
        if self.report is not None:
            lines.append("report    %s" % self.report)
        return "\n".join(lines)


def _board_folder(directory):
    """The folder the board is started in: a new one, or one that is empty (a scenario starts from
    a new pump, and its board and report are left there)."""
    import tempfile

    if directory is None:
        return Path(tempfile.mkdtemp(prefix="pumpsim-scenario-"))
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError("scenario run --dir %s: it is not a new or empty folder; a scenario starts a new board "
                         "there" % directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def run_on_board(scenario, target="emu", directory=None, timeout_s=10.0, micropython=None, firmware=None):
    """Start a new board of `target` in `directory`, play the scenario on it, stop it; a Result.
    A target that cannot do what the scenario needs is refused, before it starts when its board
    says so, else after its rig's hello."""
    from pumpsim import deploy, targets
    from pumpsim.client import PumpClient
    from pumpsim.errors import PumpsimError
    from pumpsim.hil import report
    from pumpsim.hil.rig import Rig

    if target not in BOARD_OF_TARGET:
        raise UsageError("target %r: one of %s" % (target, ", ".join(BOARD_OF_TARGET)))
    board = BOARD_OF_TARGET[target]
    missing = unable(scenario.needs, deploy.board_config(board)[0].get("features", []))
    if missing:
        raise UsageError("%s needs %s, which the %s target cannot do (its board %s has no %s in board.json)"
                         % (scenario.path, ", ".join(missing), target, board,
                            " or ".join(f for need in missing for f in NEED_FEATURES[need])))
    directory = _board_folder(directory)
    if target != "emu":
        timeout_s = max(timeout_s, SLOW_TARGET_TIMEOUT_S)
    started = time.monotonic()
    info = targets.start(directory, target, micropython=micropython, firmware=firmware)
    try:
        key = deploy.read_key(info["key"])
        with Rig.open(info["rig"], timeout_s=timeout_s) as rig:
            can = rig.hello().get("can", [])
            missing = missing_needs(scenario, can)
            if missing:
                raise PumpsimError("%s needs %s of the rig; the %s target's rig can do %s"
                                   % (scenario.path, ", ".join(missing), target, ", ".join(can) or "nothing"))
            with PumpClient.open(info["port"], key=key, timeout=timeout_s) as client:
                _wait_for_pump(client, timeout_s)
                runner = Runner(scenario, client, rig)
                runner.run()
                # The report of the run (hil/report.py): the rig's trace beside the programme the
                # scenario sent, replayed by the model.
                page = report.report_for(client, rig, directory, runner.programme, runner.start_ms,
                                         runner.samples)
    finally:
        targets.stop(directory)
    return Result(scenario, target, directory, runner.rows, time.monotonic() - started, page)


def _wait_for_pump(client, timeout_s):
    """Until the pump answers (a board that just booted may be busy a while)."""
    from pumpsim.errors import PumpsimError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.status()
        except PumpsimError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
