"""docs/protocol.md is the protocol's contract: its tables are the firmware's, row for row. A verb,
an error code, an alarm, a logged event or a rig request that the code has and the doc lacks
fails here, and so does a row the code does not have."""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))

DOC = (ROOT / "docs" / "protocol.md").read_text()


def table(heading):
    """The rows of the first table under `heading`, each a list of its cells (the header left out)."""
    assert "\n%s\n" % heading in DOC, "docs/protocol.md has no heading %r" % heading
    lines = DOC.split("\n%s\n" % heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def quoted(cell):
    """What a cell holds in backticks."""
    return re.findall(r"`([^`]+)`", cell)


def assigned_dict(path, target):
    """{key: value node} of the dict literal assigned to `target` (e.g. "self.verbs") in a file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == target \
                and isinstance(node.value, ast.Dict):
            return {ast.literal_eval(k): v for k, v in zip(node.value.keys, node.value.values)}
    raise AssertionError("no %s = {...} in %s" % (target, path.relative_to(ROOT)))


def same(documented, code, what):
    """A set of the doc against the code's, naming what is missing on either side."""
    assert not code - documented, "%s the doc leaves out: %s" % (what, sorted(code - documented))
    assert not documented - code, "%s documented but not in the code: %s" % (what, sorted(documented - code))


def test_the_requests_table_is_the_firmware_s_verbs_and_which_are_authenticated():
    # App.__init__: verb -> (handler, needs authentication)
    verbs = {verb: ast.literal_eval(entry.elts[1])
             for verb, entry in assigned_dict(FIRMWARE / "pump" / "app.py", "self.verbs").items()}
    rows = {quoted(row[0])[0]: row[1] for row in table("## Requests")}
    same(set(rows), set(verbs), "verbs")
    for verb, auth in verbs.items():
        assert rows[verb] == ("yes" if auth else "no"), "%s: auth is %s in the doc" % (verb, rows[verb])


def test_the_error_codes_are_those_the_firmware_replies_with():
    from pump import errors

    sent = {cls.code for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, errors.PumpError)}
    same({quoted(row[0])[0] for row in table("## Replies")}, sent, "error codes")
    # No code spelled out anywhere else in the firmware, outside the error tree.
    spelled = set(re.findall(r"\bE_[A-Z]+\b", " ".join(p.read_text() for p in FIRMWARE.rglob("*.py"))))
    assert spelled <= sent, sorted(spelled - sent)


def priorities(cell):
    """The priorities a cell gives: "`priority` (`high` or `medium`)", "`priority` is `high` or ..."."""
    found = re.search(r"`priority`\W+(?:is )?`(\w+)` or `(\w+)`", cell)
    assert found, "no priorities in: " + cell[:60]
    return set(found.groups())


def test_the_alarm_codes_and_priorities_named_are_the_firmware_s():
    from pump import alarms

    for heading, name in ("### Status object", "alarms"), ("## Events", "alarm"):
        rows = [row for row in table(heading) if row[0] == "`%s`" % name]
        assert rows, "%s has no row %s" % (heading, name)
        assert priorities(rows[0][2]) == set(alarms.PRIORITY.values()), \
            "%s, %s: the firmware's priorities are %s" % (heading, name, sorted(set(alarms.PRIORITY.values())))
    # Each code by its priority is docs/safety.md's table (tests/test_safety_doc.py); here and in
    # docs/cli.md no other code is named.
    for name in "protocol.md", "cli.md":
        text = (ROOT / "docs" / name).read_text()
        codes = {code for code in re.findall(r"\b[A-Z]+(?:_[A-Z]+)+\b", text) if not code.startswith("E_")}
        unknown = codes - set(alarms.PRIORITY)
        assert not unknown, "%s names alarms the firmware does not have: %s" % (name, sorted(unknown))


def test_the_events_table_is_the_frames_the_firmware_sends_unprompted():
    sent = {}  # link.encode("!", n, EVENT, {payload})
    for path in (FIRMWARE / "pump").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("encode") \
                    and len(node.args) == 4 and ast.unparse(node.args[0]) == "'!'":
                sent[ast.literal_eval(node.args[2])] = {ast.literal_eval(k) for k in node.args[3].keys}
    assert sent, "no event frame found in the firmware"
    rows = {quoted(row[0])[0]: set(re.findall(r'"(\w+)":', row[1])) for row in table("## Events")}
    same(set(rows), set(sent), "events")
    for event, keys in sent.items():
        assert rows[event] == keys, "%s: the payload is %s" % (event, sorted(keys))


# The functions that log an event by the name they are given, not one of their own.
PASSING_ON = {("core.py", "note"), ("records.py", "_move_from_flash")}


def named_fields(func, node):
    """The field names a log call's fields argument spells out: a dict, or the variable built in
    its function from a dict, `fields["name"] = ...` and `for k in ("name", ...): fields[k] = ...`."""
    if isinstance(node, ast.Dict):
        return {ast.literal_eval(k) for k in node.keys}
    names = set()
    if isinstance(node, ast.Name):
        loops = {ast.unparse(n.target): ast.literal_eval(n.iter) for n in ast.walk(func)
                 if isinstance(n, ast.For) and isinstance(n.iter, ast.Tuple)}
        for assign in ast.walk(func):
            if isinstance(assign, ast.Assign):
                target = assign.targets[0]
                if ast.unparse(target) == node.id and isinstance(assign.value, ast.Dict):
                    names |= named_fields(func, assign.value)
                elif isinstance(target, ast.Subscript) and ast.unparse(target.value) == node.id:
                    key = target.slice
                    names |= {key.value} if isinstance(key, ast.Constant) else set(loops.get(ast.unparse(key), ()))
    return names


def logged_events():
    """{event: its fields} of every entry the firmware logs, by pump.note(EVENT, fields) or
    log.append(t_ms, EVENT, fields); and the functions that log a name they are given."""
    events, passing_on = {}, set()
    for path in FIRMWARE.rglob("*.py"):
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, ast.FunctionDef):
                continue
            for call in ast.walk(func):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                    continue
                if call.func.attr == "note":
                    args = call.args
                elif call.func.attr == "append" and ast.unparse(call.func.value).split(".")[-1] == "log":
                    args = call.args[1:]
                else:
                    continue
                if not isinstance(args[0], ast.Constant):
                    passing_on.add((path.name, func.name))
                    continue
                fields = named_fields(func, args[1]) if len(args) > 1 else set()
                events.setdefault(args[0].value, set()).update(fields)
    return events, passing_on


def test_the_event_log_table_is_every_event_the_firmware_logs_with_its_fields():
    events, passing_on = logged_events()
    assert passing_on == PASSING_ON, "an event logged by a name this test cannot read, in %s" \
        % sorted(passing_on - PASSING_ON)
    rows = {quoted(row[0])[0]: set(quoted(row[1])) for row in table("### Event log")}
    same(set(rows), set(events), "logged events")
    for event, fields in events.items():
        assert fields <= rows[event], "%s: the doc leaves out its fields %s" % (event, sorted(fields - rows[event]))


def documented_rig_requests():
    """The first word of each request of the rig protocol's table ("`stall next N`": stall)."""
    return {request.split()[0] for row in table("# Rig protocol") for request in quoted(row[0])}


def rigs():
    """{rig: the requests it serves}: the virtual board's, the rp2040js target's and the emulated
    bench's observer (each a RigServer, its requests those of its `commands`), and the rig Pico's
    firmware (Rig.verbs, and `repl`, which its loop takes before them)."""
    from pumpsim.targets.emu.rigserver import RigServer
    from pumpsim.targets.rp2040js.bench import ObserverRigServer
    from pumpsim.targets.rp2040js.supervisor import Rp2RigServer

    served = {}
    for server in RigServer, Rp2RigServer, ObserverRigServer:
        rig = server(None)  # binds a socket on 127.0.0.1, and is closed at once
        rig.listener.close()
        served[server.__name__] = set(rig.commands)
    loop = (FIRMWARE / "rig" / "app.py").read_text()  # `if bytes(line).strip() == b"repl":`
    served["rig Pico"] = set(assigned_dict(FIRMWARE / "rig" / "core.py", "self.verbs")) \
        | set(re.findall(r'== b"([a-z-]+)"', loop))
    return served


def test_the_rig_table_is_every_request_of_every_rig():
    served = rigs()
    for rig, requests in served.items():
        assert requests <= documented_rig_requests(), "%s serves requests the doc leaves out: %s" \
            % (rig, sorted(requests - documented_rig_requests()))
    same(documented_rig_requests(), set.union(*served.values()), "rig requests")


def test_the_host_sends_the_rig_only_documented_requests():
    sent = set()
    for call in ast.walk(ast.parse((ROOT / "hil" / "rig.py").read_text())):
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "self.request":
            sent |= {node.value.split()[0] for node in ast.walk(call.args[0])
                     if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert "advance" in sent and "hello" in sent
    assert sent <= documented_rig_requests(), "hil/rig.py sends requests the doc leaves out: %s" \
        % sorted(sent - documented_rig_requests())


# The functions that raise LimitError with a name they are given: whole()'s callers name it, and
# configure() raises each setting of druglib.CONFIG_RANGES by its name.
LIMITS_PASSED_ON = {("core.py", "whole"), ("core.py", "configure")}


def limits_refused():
    """The limit names the firmware refuses with: LimitError("name", ...), whole(..., "name"), and
    LimitError(reason[0], ...) of the tuples `reason = ("name", ...)`; and the functions that pass
    a name on."""
    names, passing_on = set(), set()
    for path in (FIRMWARE / "pump").glob("*.py"):
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, ast.FunctionDef):
                continue
            tuples = {}  # variable -> the first items of the tuples assigned to it
            for node in ast.walk(func):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple) \
                        and node.value.elts and isinstance(node.value.elts[0], ast.Constant):
                    tuples.setdefault(ast.unparse(node.targets[0]), set()).add(node.value.elts[0].value)
            for call in ast.walk(func):
                if not isinstance(call, ast.Call):
                    continue
                called = ast.unparse(call.func).split(".")[-1]
                if called == "whole":  # whole(args, name, low, high, limit)
                    limit = call.args[4:] + [k.value for k in call.keywords if k.arg == "limit"]
                    names |= {ast.literal_eval(node) for node in limit}
                elif called == "LimitError":
                    name = call.args[0]
                    if isinstance(name, ast.Constant):
                        names.add(name.value)
                    elif isinstance(name, ast.Subscript) and ast.unparse(name.value) in tuples:
                        names |= tuples[ast.unparse(name.value)]
                    else:
                        passing_on.add((path.name, func.name))
    return names, passing_on


def test_the_dose_guard_table_is_every_limit_the_firmware_refuses_with_and_its_value():
    from pump import core, druglib

    names, passing_on = limits_refused()
    assert passing_on == LIMITS_PASSED_ON, "a limit raised by a name this test cannot read, in %s" \
        % sorted(passing_on - LIMITS_PASSED_ON)
    rows = {quoted(row[0])[0]: row[1] for row in table("### Dose guard")}
    settings = set(druglib.CONFIG_RANGES)  # "and each config setting by its name" (docs/cli.md's table)
    same(set(rows) | settings, names | settings, "limits")
    values = {"allowed_concentrations": druglib.CONCENTRATIONS_UG_PER_ML,
              "max_daily_dose_ug": (druglib.MAX_DAILY_DOSE_UG,),
              "max_rate_nl_per_day": (druglib.MAX_RATE_NL_PER_DAY,),
              "max_bolus_ug_per_24h": (druglib.MAX_BOLUS_UG_PER_24H,),
              "reservoir_capacity_ul": (druglib.RESERVOIR_CAPACITY_UL,),
              "clock_ms": (core.CLOCK_MAX_MS,)}
    for name, value in values.items():
        figures = tuple(int(n) for n in re.findall(r"\d+", rows[name].split("(")[0]))  # not "(1 mL/h)"
        assert figures == value, "%s is %s in the firmware, not %s" % (name, value, figures)
