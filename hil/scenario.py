"""Scenario files: a declarative clinic story, run against a board of its own (docs/scenarios.md).

    [scenario]
    name = "maintenance at 500 µg/day"
    needs = ["stepped-clock"]
    days = 10

    [[step]]
    at = "0s"
    action = "refill"
    volume_ul = 6000
    concentration_ug_per_ml = 1000

    [[step]]
    at = "9d"
    action = "expect-delivered"
    from = "1d"

`load(path)` reads and checks a file: every error names the file, the line and the expected form,
before any board starts. hil/scenario_runner.py plays what it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from pumpsim.errors import UsageError
from pumpsim.hil.model import PRIORITY
from pumpsim.hil.rig import DAY_MS
from pumpsim.hil.needs import NEEDS

# -- pump time -------------------------------------------------------------------------------

_UNIT_MS = {"d": DAY_MS, "h": 3_600_000, "min": 60_000, "s": 1000}
_UNITS = tuple(_UNIT_MS)  # largest first
_PART = re.compile(r"^(\d+)(d|h|min|s)$")
TIME_FORM = 'a pump time such as "2d", "6h", "30min", "1d 6h"'


def pump_time_ms(text):
    """'1d 6h' → ms; None unless it is whole numbers of d, h, min and s, largest first, each
    once, apart by spaces."""
    if not isinstance(text, str) or not text.strip():
        return None
    total, last = 0, -1
    for part in text.split():
        match = _PART.match(part)
        if not match:
            return None
        rank = _UNITS.index(match.group(2))
        if rank <= last:
            return None
        last = rank
        total += int(match.group(1)) * _UNIT_MS[match.group(2)]
    return total


def _time_hint(text):
    """What is wrong with a pump time that is not one, when it can be said more closely."""
    if not isinstance(text, str):
        return ""
    for part in text.split():
        match = re.match(r"^(\d*[.,]?\d*)([^\d.,]*)$", part)
        if match and match.group(2) and match.group(2) not in _UNIT_MS:
            return ' ("%s" is no unit of pump time: d, h, min or s)' % match.group(2)
        if match and re.search(r"[.,]", match.group(1)):
            return " (whole numbers only: 1d 12h, not 1.5d)"
    return ""


def show_time(ms):
    """ms → the file's form: 90_000_000 → '1d 1h'; whatever is left under a second as ms."""
    parts = []
    for unit in _UNITS:
        n, ms = divmod(ms, _UNIT_MS[unit])
        if n:
            parts.append("%d%s" % (n, unit))
    if ms:
        parts.append("%dms" % ms)
    return " ".join(parts) or "0s"


def show_ul(nl):
    """Whole nL as µL with three decimals, by integers (no float on the way)."""
    sign = "-" if nl < 0 else ""
    whole, frac = divmod(abs(int(nl)), 1000)
    return "%s%d.%03d µL" % (sign, whole, frac)


# -- the parser's table ---------------------------------------------------------------------

ALARM_CODES = tuple(PRIORITY) + ("CLOCK_RESTORED",)
ERROR_CODES = ("E_FRAME", "E_CRC", "E_UNKNOWN", "E_ARG", "E_AUTH", "E_REPLAY", "E_STATE", "E_LIMIT",
               "E_CONFIRM", "E_LOCKED")
STATES = ("boot", "stopped", "infusing", "alarm")
MODES = ("none", "continuous", "flex", "minimum-rate", "stop")
SETTINGS = ("low_reservoir_ul", "empty_reservoir_ul", "tubing_ul", "catheter_ul", "discrepancy_limit_permille",
            "reminder_lead_days")


@dataclass(frozen=True)
class Key:
    """What a key's value must be: `form` is said in every error about it."""

    kind: str  # time, count, bool, code, codes, steps, text, error, word, choice, needs
    form: str
    choices: tuple = ()


def _count(unit):
    return Key("count", "a whole number of %s" % unit)


_CODES = Key("codes", 'a list of alarm codes such as ["LOW_RESERVOIR"]')
KEYS = {
    # every step
    "at": Key("time", TIME_FORM),
    "action": Key("choice", 'one of the actions, such as "refill"'),
    # requests
    "refused": Key("error", 'an error code such as "E_LIMIT"'),
    "limit": Key("word", "a limit's name such as \"patient_lockout\""),
    "volume_ul": _count("µL"),
    "concentration_ug_per_ml": _count("µg/mL"),
    "withdrawn_ul": _count("µL"),
    "reminder_days": _count("days"),
    "daily_dose_ug": _count("µg"),
    "steps": Key("steps", "a list of [minute of the day, µg/day] pairs such as [[0, 500], [1200, 600]]"),
    "confirm": Key("bool", "true or false"),
    "dose_ug": _count("µg"),
    "lockout_minutes": _count("minutes"),
    "max_per_day": _count("boluses"),
    "minutes": _count("minutes"),
    "prime_ul": _count("µL"),
    "code": Key("code", 'an alarm code such as "LOW_RESERVOIR"'),
    "low_reservoir_ul": _count("µL"),
    "empty_reservoir_ul": _count("µL"),
    "tubing_ul": _count("µL"),
    "catheter_ul": _count("µL"),
    "discrepancy_limit_permille": _count("‰"),
    "reminder_lead_days": _count("days"),
    # the rig
    "attempts": _count("attempts"),
    "voltage_mv": _count("mV"),
    # expectations
    "present": _CODES,
    "absent": _CODES,
    "acked": _CODES,
    "from": Key("time", TIME_FORM),
    "tolerance_ul": _count("µL"),
    "tolerance_strokes": _count("strokes"),
    "state": Key("choice", "one of " + ", ".join('"%s"' % s for s in STATES), STATES),
    # expect-state's; in program and motor-stall, and kind in bolus, the key that chooses the form
    "mode": Key("choice", "one of " + ", ".join('"%s"' % m for m in MODES), MODES),
    "kind": Key("choice", '"clinician", "patient" or "prime"', ("clinician", "patient", "prime")),
}
SCENARIO_KEYS = {
    "name": Key("text", "a string"),
    "description": Key("text", "a string"),
    "needs": Key("needs", 'a list of needs such as ["stepped-clock"] (%s)' % ", ".join(NEEDS)),
    "days": _count("pump days"),
}
SCENARIO_REQUIRED = ("name", "days")


@dataclass(frozen=True)
class Form:
    """The keys of one action (or one variant of it), besides at and action."""

    required: tuple = ()
    optional: tuple = ()
    one_of: bool = False  # at least one of the optional keys
    apart: tuple = ()  # keys that exclude each other

    def expected(self):
        """As said in errors and in docs/scenarios.md: required, then [, optional]."""
        text = ", ".join(self.required)
        if self.one_of:
            return (text + ", " if text else "") + "one or more of " + ", ".join(self.optional)
        for key in self.optional:
            text += "[, %s]" % key if text else "[%s]" % key
        return text or "nothing else"


@dataclass(frozen=True)
class Action:
    forms: dict  # variant (or None) -> Form
    variant: str | None = None  # the key whose value chooses the form
    need: str | None = None  # of the rig
    request: bool = False  # sent to the pump: may carry refused and limit
    expectation: bool = False

    def expected(self):
        if self.variant is None:
            return self.forms[None].expected()
        return "%s = %s" % (self.variant, " | ".join('"%s"' % v for v in self.forms))


# Every action of a step (docs/scenarios.md has this table): its keys, by the value of the key that
# chooses its form where it has one, and what it needs of the rig.
ACTIONS = {
    "refill": Action({None: Form(
        ("volume_ul", "concentration_ug_per_ml"), ("withdrawn_ul", "reminder_days"))}, request=True),
    "program": Action({
        "continuous": Form(("daily_dose_ug",)),
        "flex": Form(("steps",)),
        "minimum-rate": Form((), ("confirm",)),
        "stop": Form((), ("confirm",)),
        "patient-bolus": Form(("dose_ug", "lockout_minutes", "max_per_day")),
    }, variant="mode", request=True),
    "bolus": Action({
        "clinician": Form(("dose_ug", "minutes")),
        "patient": Form(),
        "prime": Form(("prime_ul", "minutes")),
    }, variant="kind", request=True),
    "ack": Action({None: Form(("code",))}, request=True),
    "config": Action({None: Form((), SETTINGS, one_of=True)}, request=True),
    "motor-stall": Action({
        "on": Form(), "off": Form(), "intermittent": Form(), "next": Form(("attempts",)),
    }, variant="mode", need="motor-stall"),
    "battery": Action({None: Form(("voltage_mv",))}, need="battery"),
    "power-cycle": Action({None: Form()}, need="power-cut"),
    "expect-alarms": Action({None: Form((), ("present", "absent", "acked"), one_of=True)}, expectation=True),
    "expect-delivered": Action({
        None: Form(("from",), ("volume_ul", "tolerance_ul", "tolerance_strokes"),
                   apart=("tolerance_ul", "tolerance_strokes"))}, expectation=True),
    "expect-state": Action({None: Form((), ("state", "mode"), one_of=True)}, expectation=True),
}


# -- errors ---------------------------------------------------------------------------------


class ScenarioError(UsageError):
    """A scenario file that cannot be run: file, line, what is wrong, the expected form."""

    def __init__(self, path, line, message):
        super().__init__("%s:%s: %s" % (path, line, message))
        self.path, self.line, self.message = path, line, message


# Units a key's name may end with, each with the one the file uses for its quantity.
_SUFFIXES = ("_ug_per_ml", "_mg_per_ml", "_ng_per_ml", "_per_ml", "_ul", "_ml", "_nl", "_l", "_ug", "_mg", "_ng",
             "_g", "_mv", "_v", "_volts", "_minutes", "_mins", "_min", "_hours", "_h", "_s", "_seconds", "_ms",
             "_days", "_d", "_pct", "_percent", "_permille", "_strokes")
_UNIT_WORDS = {"_ug_per_ml": "µg/mL", "_ul": "µL", "_ug": "µg", "_mv": "mV", "_minutes": "minutes",
               "_days": "days", "_permille": "‰ (per mille)", "_strokes": "strokes"}


def _stem(key):
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if key.endswith(suffix):
            return key[: -len(suffix)], suffix
    return key, ""


def _unit_hint(key, allowed):
    """For "volume_ml" where volume_ul is allowed: ': volumes are in µL (volume_ul)'."""
    stem, suffix = _stem(key)
    if not suffix:
        return ""
    for other in allowed:
        other_stem, other_suffix = _stem(other)
        if other_stem == stem and other_suffix != suffix:
            return " (%s is in %s: %s)" % (stem.replace("_", " "), _UNIT_WORDS.get(other_suffix, other_suffix), other)
    return ""


class _Lines:
    """Where things are in the file's text: tomllib keeps no positions, so the headers and keys
    are found in the text itself."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z_\"'][A-Za-z0-9_.\"' -]*?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text):
        self.lines = text.splitlines()
        self.headers = []  # (line, name, is_array)
        for number, line in enumerate(self.lines, 1):
            match = self._HEADER.match(line)
            if match and not line.lstrip().startswith("#"):
                self.headers.append((number, match.group(1).strip("\"'"), line.lstrip().startswith("[[")))

    def table(self, name, index=0):
        """(first line, last line) of the index-th table of that name, or None."""
        found = [i for i, h in enumerate(self.headers) if h[1] == name]
        if index >= len(found):
            return None
        i = found[index]
        end = self.headers[i + 1][0] - 1 if i + 1 < len(self.headers) else len(self.lines)
        return self.headers[i][0], end

    def key(self, span, key, default=None):
        """The line of `key = ...` within span, else default (the span's header)."""
        if span is None:
            return default or 1
        first, last = span
        pattern = re.compile(r"^\s*(?:%s|\"%s\"|'%s')\s*=" % ((re.escape(key),) * 3))
        for number in range(first + 1, last + 1):
            if pattern.match(self.lines[number - 1]):
                return number
        return default or first


# -- what a file holds ----------------------------------------------------------------------


@dataclass
class Step:
    index: int
    line: int
    at_ms: int
    at: str  # as written
    action: str
    variant: str | None
    values: dict  # the action's keys
    refused: str | None = None
    limit: str | None = None
    from_ms: int | None = None
    key_lines: dict = field(default_factory=dict)

    def describe(self):
        words = [self.action] + ([self.variant] if self.variant else [])
        for key, value in self.values.items():
            if key == "from":
                continue
            if key == "steps":
                value = " ".join("%02d:%02d=%d" % (m // 60, m % 60, d) for m, d in value)
            elif isinstance(value, list):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = str(value).lower()
            words.append("%s=%s" % (key, value))
        return " ".join(words)


@dataclass
class Scenario:
    path: str
    name: str
    description: str
    needs: tuple
    days: int
    steps: list

    def stops(self):
        """Every pump time the run stops at: each step's and each window's start."""
        return sorted({s.at_ms for s in self.steps} | {s.from_ms for s in self.steps if s.from_ms is not None})


def load(path):
    """Read and check a scenario file; ScenarioError (a UsageError) for anything wrong in it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError("scenario %s: %s" % (path, exc.strerror or exc)) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, 1, "not UTF-8 text: %s" % exc) from None
    return parse(text, str(path))


def parse(text, path="<scenario>"):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if line is None:
            match = re.search(r"at line (\d+)", str(exc))
            line = int(match.group(1)) if match else 1
        raise ScenarioError(path, line, "not TOML: %s" % exc) from None
    lines = _Lines(text)

    def fail(line, message):
        raise ScenarioError(path, line, message)

    whole = (0, len(lines.lines))
    for name, value in data.items():
        if name not in ("scenario", "step"):
            span = lines.table(name)
            fail(span[0] if span else lines.key(whole, name, 1), "unknown %s \"%s\"; expected a [scenario] table and "
                 "[[step]] tables" % ("table" if isinstance(value, dict) else "key", name))
    head = data.get("scenario")
    head_span = lines.table("scenario")
    if not isinstance(head, dict):
        fail(head_span[0] if head_span else 1, "no [scenario] table; expected [scenario] with %s[, %s]"
             % (", ".join(SCENARIO_REQUIRED), "][, ".join(k for k in SCENARIO_KEYS if k not in SCENARIO_REQUIRED)))
    scenario_form = ", ".join(SCENARIO_REQUIRED) + "".join(
        "[, %s]" % k for k in SCENARIO_KEYS if k not in SCENARIO_REQUIRED)
    for key in head:
        if key not in SCENARIO_KEYS:
            fail(lines.key(head_span, key), "unknown key \"%s\" in [scenario]%s; expected %s"
                 % (key, _unit_hint(key, SCENARIO_KEYS), scenario_form))
    for key in SCENARIO_REQUIRED:
        if key not in head:
            fail(head_span[0], "[scenario] has no %s; expected %s" % (key, scenario_form))
    values = {}
    for key, value in head.items():
        values[key] = _value(SCENARIO_KEYS[key], key, value, lambda msg, key=key: fail(lines.key(head_span, key), msg))
    needs = tuple(values.get("needs", ()))
    if values["days"] < 1:
        fail(lines.key(head_span, "days"), "days = 0: expected %s from 1" % SCENARIO_KEYS["days"].form)

    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not all(isinstance(s, dict) for s in raw_steps):
        fail(lines.key(whole, "step", 1), "steps are [[step]] tables, one after another")
    if len([h for h in lines.headers if h[1] == "step" and h[2]]) != len(raw_steps):
        fail(lines.key(whole, "step", 1), "steps are [[step]] tables, each with its own header")
    steps = []
    previous = None
    for index, raw in enumerate(raw_steps):
        span = lines.table("step", index)
        step = _step(index, raw, span, lines, fail, needs, values["days"])
        if previous is not None and step.at_ms < previous.at_ms:
            fail(step.key_lines["at"], 'at "%s" is before the previous step\'s "%s": steps go in pump-time order'
                 % (step.at, previous.at))
        previous = step
        steps.append(step)
    if not steps:
        fail(len(lines.lines) or 1, "no steps; expected [[step]] tables, each with at and action")
    if not any(ACTIONS[s.action].expectation or s.refused for s in steps):
        fail(steps[-1].line, "no expectations: the scenario would pass whatever the pump did; expected at least "
             "one step of %s, or a request with refused" % ", ".join(a for a in ACTIONS if ACTIONS[a].expectation))
    return Scenario(path, values["name"], values.get("description", ""), needs, values["days"], steps)


def _step(index, raw, span, lines, fail, needs, days):
    header = span[0]
    key_lines = {key: lines.key(span, key, header) for key in raw}
    for key in ("at", "action"):
        if key not in raw:
            fail(header, 'step has no %s; expected at = %s and action = one of %s'
                 % (key, TIME_FORM, ", ".join('"%s"' % a for a in ACTIONS)))
    action_name = raw["action"]
    if action_name not in ACTIONS:
        fail(key_lines["action"], "unknown action %s; expected one of %s"
             % (_toml(action_name), ", ".join('"%s"' % a for a in ACTIONS)))
    action = ACTIONS[action_name]
    at_ms = pump_time_ms(raw["at"])
    if at_ms is None:
        fail(key_lines["at"], "at = %s: expected %s%s" % (_toml(raw["at"]), TIME_FORM, _time_hint(raw["at"])))
    if at_ms > days * DAY_MS:
        fail(key_lines["at"], 'at "%s" is after the scenario\'s end (days = %d); expected at most "%dd"'
             % (raw["at"], days, days))
    if action.need and action.need not in needs:
        fail(key_lines["action"], '%s needs "%s" of the rig; expected it in [scenario] needs'
             % (action_name, action.need))
    variant = None
    where = action_name
    if action.variant:
        if action.variant not in raw:
            fail(header, "%s has no %s; expected %s" % (action_name, action.variant, action.expected()))
        variant = raw[action.variant]
        if variant not in action.forms:
            fail(key_lines[action.variant], "%s %s = %s; expected %s"
                 % (action_name, action.variant, _toml(variant), action.expected()))
        where = '%s %s = "%s"' % (action_name, action.variant, variant)
    form = action.forms[variant]
    common = {"at", "action"} | ({action.variant} if action.variant else set()) | (
        {"refused", "limit"} if action.request else set())
    allowed = set(form.required) | set(form.optional)
    for key in raw:
        if key not in allowed and key not in common:
            fail(key_lines[key], "unknown key \"%s\" in %s%s; expected %s"
                 % (key, where, _unit_hint(key, allowed | common), form.expected()))
    for key in form.required:
        if key not in raw:
            fail(header, "%s has no %s; expected %s" % (where, key, form.expected()))
    if form.one_of and not allowed & set(raw):
        fail(header, "%s has none of its keys; expected %s" % (where, form.expected()))
    if form.apart and len(set(form.apart) & set(raw)) > 1:
        fail(key_lines[form.apart[1]], "%s: %s exclude each other; expected one of them" % (where, " and ".join(form.apart)))
    values = {}
    for key in list(form.required) + list(form.optional):
        if key in raw:
            values[key] = _value(KEYS[key], key, raw[key], lambda msg, key=key: fail(key_lines[key], msg))
    step = Step(index, header, at_ms, raw["at"], action_name, variant, values, key_lines=key_lines)
    if action.request:
        if "refused" in raw:
            step.refused = _value(KEYS["refused"], "refused", raw["refused"], lambda msg: fail(key_lines["refused"], msg))
        if "limit" in raw:
            if "refused" not in raw:
                fail(key_lines["limit"], "limit goes with refused; expected refused = \"E_LIMIT\", limit = %s"
                     % _toml(raw["limit"]))
            step.limit = _value(KEYS["limit"], "limit", raw["limit"], lambda msg: fail(key_lines["limit"], msg))
    if "from" in values:
        step.from_ms = values["from"]
        if step.from_ms >= at_ms:
            fail(key_lines["from"], 'from "%s" is not before at "%s"; expected a window [from, at] of pump time'
                 % (raw["from"], raw["at"]))
    if action_name == "motor-stall" and variant == "next" and values["attempts"] < 1:
        fail(key_lines["attempts"], "attempts = 0: expected a whole number of attempts from 1")
    return step


def _toml(value):
    """A value as the file would spell it, for messages."""
    if isinstance(value, str):
        return '"%s"' % value
    if isinstance(value, list):
        return "[%s]" % ", ".join(_toml(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _value(spec, key, value, fail):
    """The value checked against its key's kind; the file's units are whole numbers."""
    bad = "%s = %s: expected %s" % (key, _toml(value), spec.form)
    kind = spec.kind
    if kind == "time":
        ms = pump_time_ms(value)
        if ms is None:
            fail(bad + _time_hint(value))
        return ms
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail(bad)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            fail(bad)
        return value
    if kind == "text":
        if not isinstance(value, str):
            fail(bad)
        return value
    if kind in ("code", "codes"):
        codes = value if kind == "codes" and isinstance(value, list) else [value]
        if kind == "codes" and (not isinstance(value, list) or not value):
            fail(bad)
        for code in codes:
            if code not in ALARM_CODES:
                fail("%s: %s is no alarm code; the codes are %s" % (bad.split(": expected")[0], _toml(code),
                                                                    ", ".join(ALARM_CODES)))
        return list(value) if kind == "codes" else value
    if kind == "error":
        if value not in ERROR_CODES:
            fail("%s; the codes are %s" % (bad, ", ".join(ERROR_CODES)))
        return value
    if kind == "word":
        if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            fail(bad)
        return value
    if kind == "choice":
        if value not in spec.choices:
            fail(bad)
        return value
    if kind == "needs":
        if not isinstance(value, list) or any(v not in NEEDS for v in value):
            fail(bad)
        return list(value)
    if kind == "steps":
        ok = isinstance(value, list) and 1 <= len(value) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(n, int) and not isinstance(n, bool) for n in p)
            and 0 <= p[0] < 1440 and p[1] >= 0 for p in value)
        if not ok or [p[0] for p in value] != sorted({p[0] for p in value}):
            fail(bad + ", minutes from 0 to 1439 in increasing order")
        return [(m, d) for m, d in value]
    raise AssertionError(kind)  # pragma: no cover
