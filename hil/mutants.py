"""`make mutants`: the mutation gate. Green tests mean something only if they fail when a safety
mitigation is broken; this breaks each one on purpose and checks that its tests notice.

    python -m pumpsim.hil.mutants [--jobs 2] [--timeout 300] [--only ID ...] [--no-baseline]

The curated list is tests/mutants.py. Each mutant replaces one fragment of one tracked source
file; the fragment must occur exactly once, or the mutant is stale and the gate fails (so the
list cannot rot silently while the code changes). For each mutant the gate copies the tracked
tree to a temporary folder, applies the mutation there and runs the mutant's tests in that copy,
with a `pumpsim` package of symlinks into the copy first on PYTHONPATH: the copy's firmware is
what mpy-cross compiles and mpremote deploys to the virtual board, the copy's firmware/ is what
the unit tests import (pumpsim.hil.mutant_guard checks both in every run).

The gate fails when a mutant is stale or broken, when the unmutated baseline fails, when a mutant
survives without a reason in docs/safety.md ("Mutation gate"), or when a hazard row of
docs/safety.md has no mutant that removes its mitigation and is killed by the row's own tests.
"""

import argparse
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pumpsim.hil.mutant_guard import EXIT_NOT_THE_COPY, ROOT_VARIABLE

LIST = "tests/mutants.py"
SAFETY = "docs/safety.md"
# The installed package's folders, as pyproject.toml maps them: the shadow package mirrors this.
PACKAGE_DIRS = {"hil": "hil", "firmware": "firmware", "boards": "boards"}
HOST_DIR = "host"

KILLED, SURVIVED, TIMEOUT, BROKEN = "killed", "survived", "timeout", "broken"


# -- the documents -------------------------------------------------------------------------------

def _section(text, title):
    parts = text.split("\n## %s" % title, 1)
    return parts[1].split("\n## ", 1)[0] if len(parts) == 2 else ""


def _table_rows(section, header):
    return [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| " + header) and not line.startswith("| ---")]


def hazard_rows(root):
    """{hazard: [test node ids]} of docs/safety.md's hazard table, read as tests/test_safety_doc.py
    reads it: the first cell names the row, the `tests/…::name` references are its tests."""
    rows = {}
    for line in _table_rows(_section((root / SAFETY).read_text(), "Hazards"), "hazard"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = ["%s::%s" % ref for ref in re.findall(r"(tests/[\w/]+\.py)::(\w+)", line)]
    return rows


def survivor_reasons(root):
    """{mutant id: reason} from the table of docs/safety.md's "Mutation gate" section."""
    reasons = {}
    for line in _table_rows(_section((root / SAFETY).read_text(), "Mutation gate"), "mutant"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`") and cells[1]:
            reasons[cells[0].strip("`")] = cells[1]
    return reasons


def load(root):
    return runpy.run_path(str(root / LIST))["MUTANTS"]


def tracked_files(root):
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


# -- checks that need no test run ----------------------------------------------------------------

def _test_exists(root, node_id):
    """The node id's file defines its function; a parameter id, if any, is written in the file."""
    path, _, name = node_id.partition("::")
    function, _, param = name.partition("[")
    source = root / path
    if not (function and source.is_file()):
        return False
    text = source.read_text()
    return (re.search(r"^def %s\(" % re.escape(function), text, re.M) is not None
            and (not param or param.rstrip("]") in text))


def _bare(node_id):
    return node_id.split("[", 1)[0]


def list_problems(root, mutants, rows=None):
    """What is wrong with the list against the tree as it is, without running a test: stale or
    ambiguous fragments, missing tests, hazard rows without a mutant. {mutant id or '': [..]}."""
    rows = hazard_rows(root) if rows is None else rows
    tracked = set(tracked_files(root))
    problems = {}
    seen = set()

    def bad(key, text):
        problems.setdefault(key, []).append(text)

    for m in mutants:
        key = m["id"]
        if key in seen:
            bad(key, "the id is used twice")
        seen.add(key)
        if "\n" in m["original"] or "\n" in m["replacement"] or m["original"] == m["replacement"]:
            bad(key, "a mutant changes one line into another line")
        if m["file"] not in tracked:
            bad(key, "%s is not a tracked file" % m["file"])
            continue
        source = (root / m["file"]).read_text()
        found = source.count(m["original"])
        if found != 1:
            bad(key, "stale: %r occurs %d times in %s, not once" % (m["original"], found, m["file"]))
        elif m["file"].endswith(".py"):
            try:
                compile(mutate(source, m), m["file"], "exec")
            except SyntaxError as exc:
                bad(key, "the mutated file does not compile: %s" % exc)
        if not m["tests"]:
            bad(key, "names no test")
        for node_id in m["tests"]:
            if not _test_exists(root, node_id):
                bad(key, "no such test: %s" % node_id)
            elif node_id.partition("::")[0] not in tracked:
                bad(key, "%s is not tracked: the gate's copy of the tree would not hold it" % node_id)
        if m["hazard"] is not None:
            if m["hazard"] not in rows:
                bad(key, "no hazard row %r in %s" % (m["hazard"], SAFETY))
            else:
                foreign = [t for t in m["tests"] if _bare(t) not in rows[m["hazard"]]]
                if foreign:
                    bad(key, "a hazard mutant runs only its row's tests, not %s" % ", ".join(foreign))
    covered = {m["hazard"] for m in mutants}
    for hazard in rows:
        if hazard not in covered:
            bad("", "hazard row %r has no mutant that removes its mitigation" % hazard)
    return problems


def mutate(source, mutant):
    return source.replace(mutant["original"], mutant["replacement"], 1)


def line_of(root, mutant):
    source = (root / mutant["file"]).read_text()
    at = source.find(mutant["original"])
    return source.count("\n", 0, at) + 1 if at >= 0 else 0


# -- one run in a copy of the tree ----------------------------------------------------------------

def _copy_tree(root, files, dest):
    for name in files:
        source = root / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _shadow_package(copy, shadow):
    """shadow/pumpsim: the installed package's layout, made of symlinks into the copy."""
    package = shadow / "pumpsim"
    package.mkdir(parents=True)
    for entry in (copy / HOST_DIR).iterdir():
        (package / entry.name).symlink_to(entry)
    for name, folder in PACKAGE_DIRS.items():
        (package / name).symlink_to(copy / folder)


def _stop_boards(basetemp):
    """Boards a killed run left behind (the supervisor runs in a session of its own)."""
    from pumpsim.targets.emu import supervisor

    for info in basetemp.rglob("emu.json"):
        try:
            supervisor.stop(info.parent)
        except (OSError, ValueError):
            pass


def run_tests(snapshot, tests, mutant=None, timeout_s=600):
    """(outcome, seconds, output tail) of the tests in a fresh copy of the snapshot, mutated or not."""
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="pumpsim-mutant-"))
    try:
        copy, shadow, basetemp = work / "tree", work / "shadow", work / "pytest"
        shutil.copytree(snapshot, copy, symlinks=True)
        if mutant is not None:
            path = copy / mutant["file"]
            path.write_text(mutate(path.read_text(), mutant))
        _shadow_package(copy, shadow)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(shadow)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        env[ROOT_VARIABLE] = str(copy)
        env.pop("PYTEST_ADDOPTS", None)
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:cacheprovider",
               "-p", "pumpsim.hil.mutant_guard", "--basetemp", str(basetemp), *tests]
        proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            _stop_boards(basetemp)
            return TIMEOUT, time.monotonic() - start, output[-2000:]
        _stop_boards(basetemp)
        return _outcome(proc.returncode), time.monotonic() - start, output[-2000:]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _outcome(returncode):
    if returncode == EXIT_NOT_THE_COPY:
        raise SystemExit("mutation gate: the tests did not run the copy's code; nothing it reports "
                         "would mean anything")
    # 1: a test failed; 2: collection failed (the mutated module raised on import). Anything else
    # (no test collected, a usage error) is a broken entry, not a kill.
    return {0: SURVIVED, 1: KILLED, 2: KILLED}.get(returncode, BROKEN)


# -- the report -----------------------------------------------------------------------------------

def _short_tests(tests, width=44):
    """The first test's name, cut to width, and how many more there are."""
    first = tests[0].rsplit("::", 1)[-1]
    if len(first) > width:
        first = first[:width - 1] + "~"
    return first + (" +%d" % (len(tests) - 1) if len(tests) > 1 else "")


def render_table(rows):
    head = ("id", "file:line", "mutation", "tests", "result", "s")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def gate(root, mutants, results, rows, reasons, full):
    """The verdict lines and whether the gate passes."""
    failures = []
    for m in mutants:
        outcome = results[m["id"]][0]
        if outcome == BROKEN:
            failures.append("%s: broken: no test ran (%s)" % (m["id"], _short_tests(m["tests"])))
        elif outcome == SURVIVED and m["id"] not in reasons:
            failures.append("%s survived without a reason in %s (Mutation gate)" % (m["id"], SAFETY))
    if full:
        for hazard in rows:
            mine = [m for m in mutants if m["hazard"] == hazard]
            alive = [m["id"] for m in mine if results[m["id"]][0] not in (KILLED, TIMEOUT)]
            if alive:
                failures.append("hazard row %r: its tests do not kill %s" % (hazard, ", ".join(alive)))
        listed = {m["id"] for m in mutants}
        for name in reasons:
            if name not in listed:
                failures.append("%s (Mutation gate) gives a reason for %s, which is not a mutant" % (SAFETY, name))
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pumpsim-mutants", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at a time (default 2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a mutant's run may take")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants (no row check)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated tree")
    args = parser.parse_args(argv)

    root = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                               check=True).stdout.strip())
    mutants = load(root)
    rows, reasons = hazard_rows(root), survivor_reasons(root)
    problems = list_problems(root, mutants, rows)
    if args.only:
        unknown = set(args.only) - {m["id"] for m in mutants}
        if unknown:
            parser.error("no mutant %s" % ", ".join(sorted(unknown)))
        mutants = [m for m in mutants if m["id"] in args.only]
        problems = {k: v for k, v in problems.items() if k in args.only}
    if problems:
        for key, texts in sorted(problems.items()):
            for text in texts:
                print("%s: %s" % (key or "list", text))
        print("mutation gate: FAILED: fix the list (%s) first" % LIST)
        return 1
    # One snapshot of the tracked tree: edits made while the gate runs do not leak into it.
    snapshot = Path(tempfile.mkdtemp(prefix="pumpsim-snapshot-"))
    try:
        _copy_tree(root, tracked_files(root), snapshot / "tree")
        return _run(args, root, snapshot / "tree", mutants, rows, reasons)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def _run(args, root, snapshot, mutants, rows, reasons):
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        if not args.no_baseline:
            # Every test must pass on the unmutated tree, or a failure would prove nothing.
            tests = sorted({t for m in mutants for t in m["tests"]})
            halves = [tests[i::max(1, args.jobs)] for i in range(max(1, args.jobs))]
            runs = list(pool.map(lambda part: run_tests(snapshot, part, timeout_s=args.timeout * 2),
                                 [h for h in halves if h]))
            for outcome, seconds, output in runs:
                if outcome != SURVIVED:
                    print(output)
                    print("mutation gate: FAILED: the tests do not pass on the unmutated tree (%s)" % outcome)
                    return 1
            print("baseline: %d tests pass on the unmutated tree (%.0f s)"
                  % (len(tests), max(r[1] for r in runs)))

        def one(m):
            result = run_tests(snapshot, m["tests"], m, args.timeout)
            print("  %-28s %-8s %5.0f s" % (m["id"], result[0], result[1]), flush=True)
            return m["id"], result

        results = dict(pool.map(one, mutants))

    table = []
    for m in mutants:
        outcome, seconds, _ = results[m["id"]]
        shown = outcome + (" (reason)" if outcome == SURVIVED and m["id"] in reasons else "")
        table.append((m["id"] + (" *" if m["hazard"] else ""), "%s:%d" % (m["file"], line_of(snapshot, m)),
                      m["what"], _short_tests(m["tests"]), shown, "%.0f" % seconds))
    print()
    print(render_table(table))
    print("* removes the mitigation of a hazard row of %s; run against that row's tests" % SAFETY)
    killed = sum(1 for m in mutants if results[m["id"]][0] in (KILLED, TIMEOUT))
    print("kill rate: %d of %d (%.0f %%)" % (killed, len(mutants), 100.0 * killed / len(mutants)))
    for m in mutants:
        if results[m["id"]][0] == SURVIVED:
            print("survivor %s: %s" % (m["id"], reasons.get(m["id"], "NO REASON GIVEN")))
    failures = gate(root, mutants, results, rows, reasons, full=not args.only)
    for text in failures:
        print("FAIL " + text)
    print("mutation gate: %s" % ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
