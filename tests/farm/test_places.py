"""pytest runs against the loopback farm take its places as a lab's runs would: of three runs at
once two get a bench of their own and the third waits for one; what they got is read from the
coordinator and from the boards' own clocks, not from the runs' word alone. Bad requests are
refused and change nothing; an interrupted run leaves no place acquired and no reservation
behind."""

import itertools
import json
import os
import signal
import time

import pytest

from .lab import ASK_COORDINATOR_S, PLACES, TAGS, free_port, wait_for

HOUR_MS = 3_600_000

# The run's test: a real request to the pump, a record of where it ran, then (FARM_GO) a wait
# for the word to go on, and the board's pump time moved by FARM_ADVANCE_MS.
ON_A_PLACE = '''
import json, os, time
from pathlib import Path

import pytest


@pytest.mark.pumpsim_needs("stepped-clock")
@pytest.mark.parametrize("n", range(int(os.environ.get("FARM_TESTS", "1"))))
def test_a_pump_on_a_place(bench, n):
    started = time.time()
    with bench.client() as pump:
        state = pump.status()["state"]
    record = Path(os.environ["FARM_RECORD"] + ".%d" % n)
    record.write_text(json.dumps({"place": bench.place, "state": state, "started": started}))
    go = os.environ.get("FARM_GO")
    deadline = time.monotonic() + 60
    while go and not Path(go).exists():
        assert time.monotonic() < deadline, "no word to go on"
        time.sleep(0.05)
    bench.rig.advance(int(os.environ.get("FARM_ADVANCE_MS", "0")))
    record.write_text(json.dumps({**json.loads(record.read_text()), "ended": time.time()}))
'''


_RUN_NUMBERS = itertools.count()


@pytest.fixture
def runs(lab):
    """Start pytest runs of ON_A_PLACE against the farm: runs(name, *options, advance_ms=, go=)."""
    (lab.root / "test_on_a_place.py").write_text(ON_A_PLACE)
    started = []

    def start(name, *options, advance_ms=0, go=None, tests=1):
        name = "%d-%s" % (next(_RUN_NUMBERS), name)
        env = {"FARM_RECORD": str(lab.root / ("record-" + name)), "FARM_ADVANCE_MS": str(advance_ms),
               "FARM_TESTS": str(tests), **({"FARM_GO": str(go)} if go else {})}
        run = lab.pytest(name, "test_on_a_place.py", *options, env=env)
        run.record = lambda n=0: _read(lab.root / ("record-%s.%d" % (name, n)))
        started.append(run)
        return run

    yield start
    for run in started:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def _read(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def finish(run, timeout_s=90):
    out, _ = run.communicate(timeout=timeout_s)
    return run.returncode, out


def test_of_three_runs_at_once_two_take_a_place_each_and_the_third_waits_for_one(lab, runs):
    go = lab.root / "go-three-runs"
    clock_before = {place: lab.clock_ms(place) for place in PLACES}
    advance_ms = {"one": 1 * HOUR_MS, "two": 2 * HOUR_MS, "three": 4 * HOUR_MS}
    started = {name: runs(name, "--pumpsim-place", TAGS, advance_ms=advance_ms[name], go=go) for name in advance_ms}
    running = wait_for(lambda: [name for name, run in started.items() if run.record()] if
                       len([run for run in started.values() if run.record()]) >= 2 else None, 60, "two runs in their test")
    assert len(running) == 2
    (waiting,) = set(started) - set(running)
    holders = lab.who()
    assert set(holders) == set(PLACES), holders
    # The two runs' reservations are `acquired`, the third's `waiting`.
    wait_for(lambda: sorted(state for _, state in lab.reservations()) == ["acquired", "acquired", "waiting"], 30,
             "the third run's reservation waiting", ASK_COORDINATOR_S)
    assert lab.who() == holders
    assert started[waiting].record() is None, "the third run ran with both places taken"

    go_at = time.time()
    go.touch()
    for name, run in started.items():
        rc, out = finish(run)
        assert rc == 0, "%s:\n%s" % (name, out)
    records = {name: run.record() for name, run in started.items()}

    assert {records[name]["place"] for name in running} == set(PLACES)
    assert records[waiting]["place"] in PLACES
    assert records[waiting]["started"] > go_at
    assert all(record["state"] for record in records.values())
    # Each board's own clock moved by what the runs that say they had it moved it by, and no more.
    moved = {place: lab.clock_ms(place) - clock_before[place] for place in PLACES}
    assert moved == {place: sum(advance_ms[name] for name, record in records.items() if record["place"] == place)
                     for place in PLACES}
    assert lab.state() == ({}, [])


def test_the_workers_of_one_run_share_its_one_place_taking_turns(lab, runs):
    go = lab.root / "go-xdist"
    run = runs("xdist", "--pumpsim-place", "bench-b", "-n", "2", tests=2, advance_ms=HOUR_MS, go=go)
    clock_before = lab.clock_ms("bench-b")
    wait_for(lambda: run.record(0) or run.record(1), 60, "a worker in its test")
    time.sleep(1.0)  # the other worker has had time to start its test
    assert set(lab.who()) == {"bench-b"}
    assert (run.record(0) is None) != (run.record(1) is None), "both workers on the bench at once"
    go.touch()
    rc, out = finish(run)
    assert rc == 0, out
    first, second = sorted((run.record(0), run.record(1)), key=lambda r: r["started"])
    assert first["place"] == second["place"] == "bench-b"
    assert second["started"] >= first["ended"]
    assert lab.clock_ms("bench-b") - clock_before == 2 * HOUR_MS
    assert lab.state() == ({}, [])


def test_an_unknown_place_is_refused_and_changes_nothing(lab, runs):
    asked = {"bench-z": "no place bench-z on the coordinator", "pumpsim=kiln": "no place tagged pumpsim=kiln"}
    started = {spec: runs("unknown", "--pumpsim-place", spec) for spec in asked}
    for spec, run in started.items():
        rc, out = finish(run)
        assert rc == pytest.ExitCode.USAGE_ERROR, out
        assert asked[spec] in out and "its places: bench-a, bench-b" in out, out
    assert lab.state() == ({}, [])


def test_a_coordinator_that_does_not_answer_is_named(lab, runs):
    address = "127.0.0.1:%d" % free_port()
    rc, out = finish(runs("nobody", "--pumpsim-place", TAGS, "--pumpsim-coordinator", address))
    assert rc == pytest.ExitCode.USAGE_ERROR, out
    assert "no labgrid coordinator answers at %s" % address in out, out


def test_with_every_place_held_a_run_times_out_or_is_interrupted_leaving_them_held(lab, runs):
    lab.client.calls(*[("-p", place, "acquire") for place in PLACES])
    holders = lab.who()
    assert set(holders) == set(PLACES)
    started = time.monotonic()
    timing_out = runs("timeout", "--pumpsim-place", TAGS, "--pumpsim-place-timeout", "2")
    interrupted = runs("interrupted", "--pumpsim-place", TAGS)

    rc, out = finish(timing_out)
    assert rc == pytest.ExitCode.USAGE_ERROR, out
    assert "no place tagged pumpsim=bench came free within 2 s" in out, out
    assert time.monotonic() - started >= 2

    # What is left waiting is the other run's reservation: the one that timed out cancelled its own.
    wait_for(lambda: [state for _, state in lab.reservations()] == ["waiting"], 30, "the other run's reservation",
             ASK_COORDINATOR_S)
    os.killpg(interrupted.pid, signal.SIGINT)  # Ctrl-C while it waits for a place
    rc, out = finish(interrupted, 30)
    assert rc == pytest.ExitCode.INTERRUPTED, out
    assert lab.state() == (holders, [])


@pytest.mark.parametrize("how", [
    lambda run: os.killpg(run.pid, signal.SIGINT),  # Ctrl-C at its terminal
    lambda run: os.kill(run.pid, signal.SIGTERM),  # a CI job's timeout
], ids=["ctrl-c", "sigterm"])
def test_a_run_stopped_in_a_test_releases_the_place(lab, runs, how):
    run = runs("interrupted", "--pumpsim-place", "bench-a", go=lab.root / "never")
    wait_for(run.record, 60, "the run in its test")
    assert set(lab.who()) == {"bench-a"}
    how(run)
    rc, out = finish(run, 30)
    assert rc == pytest.ExitCode.INTERRUPTED, out
    assert lab.state() == ({}, [])


def test_lg_env_naming_a_remote_place_takes_that_place(lab, runs):
    env_file = lab.root / "remote-place.yaml"
    env_file.write_text("targets:\n  main:\n    resources:\n      RemotePlace:\n        name: bench-b\n"
                        "options:\n  coordinator_address: %s\n" % lab.coordinator)
    clock_before = lab.clock_ms("bench-b")
    run = runs("lg-env", "--lg-env", str(env_file), advance_ms=HOUR_MS)
    rc, out = finish(run)
    assert rc == 0, out
    assert run.record()["place"] == "bench-b"
    assert lab.clock_ms("bench-b") - clock_before == HOUR_MS
    assert lab.state() == ({}, [])


def test_lg_env_listing_a_bench_s_resources_uses_them_as_they_are(lab, runs):
    lab.lg("-p", "bench-a", "acquire")
    env_file = lab.root / "bench-a.yaml"
    env_file.write_text(lab.lg("-p", "bench-a", "env"))
    clock_before = lab.clock_ms("bench-a")
    run = runs("lg-env-resources", "--lg-env", str(env_file), advance_ms=HOUR_MS)
    rc, out = finish(run)
    assert rc == 0, out
    assert run.record()["place"] is None  # no place taken: the one held above was used as it is
    assert lab.clock_ms("bench-a") - clock_before == HOUR_MS
    assert set(lab.who()) == {"bench-a"}
