"""The mutation gate's list (tests/mutants.py) fits the tree as it is, checked on every run of the
suite without running a mutant: a fragment the code no longer contains, or a test that was renamed,
fails here first instead of in `make mutants`."""

from pathlib import Path

from pumpsim.hil import mutants as gate

ROOT = Path(__file__).resolve().parents[1]


def test_every_mutant_applies_exactly_once_and_names_tests_that_exist():
    problems = gate.list_problems(ROOT, gate.load(ROOT))
    assert not problems, "\n".join("%s: %s" % (key or "list", text)
                                   for key, texts in sorted(problems.items()) for text in texts)


def test_the_list_covers_the_safety_critical_lines():
    mutants = gate.load(ROOT)
    assert len(mutants) >= 40
    assert {m["hazard"] for m in mutants if m["hazard"]} == set(gate.hazard_rows(ROOT))


def test_every_reason_for_a_survivor_belongs_to_a_listed_mutant():
    listed = {m["id"] for m in gate.load(ROOT)}
    assert set(gate.survivor_reasons(ROOT)) <= listed


def test_a_stale_fragment_or_a_missing_test_is_reported():
    good = gate.load(ROOT)[0]
    stale = dict(good, id="stale", original=good["original"] + " # not in the file")
    missing = dict(good, id="missing", tests=["tests/unit/test_fsm_table.py::test_there_is_no_such_test"])
    twice = dict(good, id="twice", file="firmware/pump/core.py", original="self.")
    problems = gate.list_problems(ROOT, gate.load(ROOT) + [stale, missing, twice])
    assert "stale" in problems["stale"][0] and "no such test" in problems["missing"][0]
    assert "stale" in problems["twice"][0]


def test_the_shadow_package_mirrors_pyproject_s_package_dirs():
    import re

    text = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-dir]", 1)[1].split("\n[", 1)[0]
    mapped = dict(re.findall(r'^"([\w.]+)" = "(\w+)"', text, re.M))
    assert mapped == dict({"pumpsim": gate.HOST_DIR},
                          **{"pumpsim." + name: folder for name, folder in gate.PACKAGE_DIRS.items()})
