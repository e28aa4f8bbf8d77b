"""`make soak`: years of clinic life on a virtual board, checked step by step against the model.

    python -m pumpsim.hil.soak [--years 5] [--cuts 1000] [--frames 100000] [--seed N] [--write docs/benchmarks.md]

A patient is refilled every 4 to 12 weeks, titrated, given boluses; the pump meets motor stalls,
battery ends, flash corruption, wrong keys and power cuts (a third of them in the middle of a
flash write) and fuzzed frames. After every step the rig's count, the pump's reservoir, its
alarms and its state are compared with the reference model (hil/model.py). A divergence is
reported with its transcript of `pumpsim` commands, and a new pump life begins.
"""

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from pumpsim.errors import PumpsimError
from pumpsim.hil.drive import BATTERY_LEVELS_MV, Board, Divergence, Driver, make_image

DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS
SECTION = "## Soak against the reference model"


class Life:
    """One pump in one patient: visits to the clinic and the weeks between them."""

    def __init__(self, driver, rng, plan):
        self.d, self.rng, self.plan = driver, rng, plan
        self.dose = rng.choice([300, 400, 500, 600])
        self.concentration = 2000
        self.cuts = self.mid_write_cuts = 0

    def begin(self):
        d = self.d
        d.config(catheter_ul=self.rng.choice([60, 100, 150]))
        d.refill(40_000, self.concentration)
        d.program("continuous", self.dose)

    def next_visit_ms(self):
        """4 to 12 weeks on, booked a day before the refill reminder; when the reminder already
        sounds (a titration brought it forward, or a small fill), within one to three days."""
        rng, m = self.rng, self.d.model
        if "REFILL_REMINDER" in m.alarms:
            return rng.randint(1, 3) * DAY_MS
        span = rng.randint(28, 84) * DAY_MS
        if m.reminder_ms is not None and m.reminder_ms - DAY_MS > m.t_ms:
            span = min(span, m.reminder_ms - DAY_MS - m.t_ms)
        return span

    def visit(self):
        d, rng = self.d, self.rng
        m = d.model
        withdrawn = int(m.reservoir_nl * rng.uniform(0.8, 1.2) / 1000) if m.known_reservoir else None
        if rng.random() < 0.15:
            self.concentration = rng.choice([500, 1000, 2000])
        d.refill(rng.choice([20_000, 30_000, 40_000]), self.concentration, withdrawn,
                 rng.choice([None, 56, 84]))
        self.titrate()
        if rng.random() < 0.3:
            d.program_patient(rng.choice([10, 20, 25]), rng.choice([60, 120]), rng.randint(2, 4))
        if rng.random() < 0.2:
            d.config(low_reservoir_ul=rng.choice([2000, 3000]), empty_reservoir_ul=rng.choice([500, 1000]))
        for code in sorted(m.alarms):
            if rng.random() < 0.5:
                d.ack(code)

    def titrate(self):
        d, rng = self.d, self.rng
        self.dose = max(100, min(1200, int(self.dose * rng.uniform(0.85, 1.2))))
        if rng.random() < 0.3:
            d.program("flex", steps=[(0, self.dose), (rng.choice([360, 420, 480]), int(self.dose * 1.2)),
                                     (rng.choice([1200, 1260, 1320]), self.dose)])
        else:
            d.program("continuous", self.dose)

    def fault(self):
        d, rng = self.d, self.rng
        roll = rng.random()
        if roll < 0.2:
            d.stall(rng.choice(["on", "intermittent"]))
            d.advance(rng.randint(1, 6) * 3_600_000)
            d.stall("off")
        elif roll < 0.4:
            d.battery(rng.choice(BATTERY_LEVELS_MV[2:]))
            d.advance(rng.randint(2, 48) * 3_600_000)
            if rng.random() < 0.5:
                d.power_cut()
            d.battery(rng.choice(BATTERY_LEVELS_MV[:2]))  # a new battery
            d.program("continuous", self.dose)
        elif roll < 0.55:
            d.corrupt_flash(rng.choice(["state", "state", "log", "both"]))
            if not d.model.known_reservoir:
                d.refill(40_000, self.concentration)
                d.program("continuous", self.dose)
        elif roll < 0.7:
            d.wrong_key(rng.randint(100, 1500))
        elif d.model.mode in ("continuous", "flex") and d.model.bridge_nl == 0:
            if d.model.patient and rng.random() < 0.5:
                d.bolus_patient()
            else:
                d.bolus(rng.choice([10, 25, 50]), rng.choice([30, 60]))

    def weeks_between(self, span_ms, cuts_per_day):
        """Time to the next visit, cut by power cuts; now and then a fault or fuzzed frames."""
        d, rng = self.d, self.rng
        end = d.model.t_ms + span_ms
        while d.model.t_ms < end:
            d.advance(min(end - d.model.t_ms, int(rng.expovariate(cuts_per_day) * DAY_MS) + 1000))
            if d.model.t_ms >= end:
                break
            # A third of all at least: a cut in a write needs a pump that writes (one infusing),
            # so those that could not be made while it was stopped are made up later.
            self.cuts += 1
            behind = 3 * self.mid_write_cuts < self.cuts
            if d.model.state == "infusing" and (behind or rng.random() < 0.4):
                self.mid_write_cuts += 1
                d.power_cut_mid_write(rng.randint(1, 4))
            else:
                d.power_cut()
            if rng.random() < 0.04:
                self.fault()
            if d.frames < self.plan["frames"] and rng.random() < 0.1:
                d.fuzz(min(2000, self.plan["frames"] - d.frames), rng)


def run(years, cuts, frames, seed, micropython=None, log=print):
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="pumpsim-soak-"))
    totals = {"years": 0.0, "steps": 0, "power_cuts": 0, "mid_write_cuts": 0, "frames": 0, "divergences": 0,
              "lives": 0}
    found = []
    start = time.perf_counter()
    try:
        image = make_image(workdir / "image", micropython)
        target_ms = int(years * YEAR_MS)
        done_ms = 0
        while done_ms < target_ms:
            board = Board(*image, micropython=micropython)
            totals["lives"] += 1
            try:
                driver = Driver(board)
                life = Life(driver, rng, {"frames": max(0, frames - totals["frames"])})
                cuts_per_day = cuts / (years * 365) * 1.35  # visits cut some spans short
                try:
                    life.begin()
                    while done_ms + driver.model.t_ms < target_ms:
                        life.weeks_between(life.next_visit_ms(), cuts_per_day)
                        life.visit()
                        log("day %6.0f: %d steps, %d cuts, %d frames, %d divergences" % (
                            (done_ms + driver.model.t_ms) / DAY_MS, totals["steps"] + driver.steps,
                            totals["power_cuts"] + driver.model.power_cuts, totals["frames"] + driver.frames,
                            totals["divergences"]))
                except (Divergence, PumpsimError) as divergence:
                    if not isinstance(divergence, Divergence):  # the link or the rig failed
                        divergence = Divergence("harness: %s" % type(divergence).__name__, "an answer",
                                                divergence, driver.transcript)
                    totals["divergences"] += 1
                    found.append(divergence)
                    log("DIVERGENCE: %s: expected %s, seen %s" % (divergence.what, divergence.expected,
                                                                divergence.seen))
                done_ms += driver.model.t_ms
                totals["steps"] += driver.steps
                totals["power_cuts"] += driver.model.power_cuts
                totals["mid_write_cuts"] += sum(1 for line in driver.transcript if "--at-write" in line)
                totals["frames"] += driver.frames
            finally:
                board.close()
            if totals["divergences"] >= 10:
                break
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    totals["years"] = done_ms / YEAR_MS
    totals["wall_s"] = time.perf_counter() - start
    totals["seed"] = seed
    return totals, found


def render(totals):
    return "\n".join([
        SECTION,
        "",
        "Measured by `make soak` (`python -m pumpsim.hil.soak`, seed %d): a virtual board through"
        % totals["seed"],
        "clinic life, every step checked against the reference model (hil/model.py; docs/model.md).",
        "",
        "| figure | value | goal |",
        "| --- | --- | --- |",
        "| simulated pump time | %.2f years (%d pump %s) | ≥ 5 years |" % (
            totals["years"], totals["lives"], "life" if totals["lives"] == 1 else "lives"),
        "| steps (commands and time steps, each checked) | %d | |" % totals["steps"],
        "| power cuts | %d, %d of them in the middle of a flash write | ≥ 1000, a third mid-write |"
        % (totals["power_cuts"], totals["mid_write_cuts"]),
        "| fuzzed and mutated frames at the running board | %d | ≥ 100,000 |" % totals["frames"],
        "| divergences from the model | %d | 0 |" % totals["divergences"],
        "| wall time | %.0f s | a few minutes |" % totals["wall_s"],
        "",
    ])


def write_section(path, text):
    """Replace this section of the file, keeping what `make bench` writes around it."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    if SECTION in old:
        before, rest = old.split(SECTION, 1)
        after = rest[rest.find("\n## "):] if "\n## " in rest else ""
        old = before.rstrip("\n") + "\n\n" + text + after.lstrip("\n") if after else before.rstrip("\n") + "\n\n" + text
    else:
        old = old.rstrip("\n") + "\n\n" + text
    path.write_text(old)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pumpsim-soak", description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--cuts", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", metavar="FILE", help="write the figures into FILE's soak section")
    parser.add_argument("--transcripts", metavar="DIR", default="soak-divergences",
                        help="where each divergence's transcript goes")
    args = parser.parse_args(argv)
    totals, found = run(args.years, args.cuts, args.frames, args.seed)
    for i, divergence in enumerate(found, 1):
        folder = Path(args.transcripts)
        folder.mkdir(exist_ok=True)
        (folder / ("%d.txt" % i)).write_text(str(divergence) + "\n")
        print("divergence %d: %s: expected %s, seen %s (transcript: %s)"
              % (i, divergence.what, divergence.expected, divergence.seen, folder / ("%d.txt" % i)))
    print(json.dumps(totals, indent=2))
    if args.write:
        write_section(args.write, render(totals))
    short = [goal for goal, met in (
        ("%.1f simulated years" % args.years, totals["years"] >= args.years),
        ("%d power cuts" % args.cuts, totals["power_cuts"] >= args.cuts),
        ("a third of the cuts in the middle of a write", 3 * totals["mid_write_cuts"] >= totals["power_cuts"]),
        ("%d frames" % args.frames, totals["frames"] >= args.frames)) if not met]
    for goal in short:
        print("soak: short of its goal: %s" % goal)
    return 1 if found or short else 0


if __name__ == "__main__":
    raise SystemExit(main())
