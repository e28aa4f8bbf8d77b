"""`make run`: a virtual board filled and programmed, 90 pump days, a timeline of what happened,
and the report of its delivery accuracy (DIR/report.html, hil/report.py).

The programmed volume is computed here from the dose, the concentration and the time the pump was
delivering; the delivered volume is the rig's pulse count. Neither comes from the firmware. The
report replays what the demo sent into the reference model, beside the rig's trace.
"""

import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

from pumpsim import deploy
from pumpsim.errors import PumpsimError
from pumpsim.targets.emu import supervisor
from pumpsim.client import PumpClient
from pumpsim.hil import report
from pumpsim.hil.rig import DAY_MS, Rig
from pumpsim.hil.verify import continuous_volume_nl

FILL_UL = 20_000
CONCENTRATION_UG_PER_ML = 2000
DOSE_UG_PER_DAY = 500


def days_bar(days, out=sys.stderr):
    """The pump days as they go by, on a terminal only (tqdm leaves a file or a CI log alone)."""
    from tqdm import tqdm

    return tqdm(total=days, unit="day", desc="pump days", file=out, disable=None)


# Left in each folder the demo makes: it clears only a folder that holds this (or nothing).
MARK = ".pumpsim-demo"


def clear(directory: Path):
    """Make directory an empty demo folder; PumpsimError, touching nothing, when it holds files
    the demo did not make."""
    if directory.exists():
        if not directory.is_dir() or (any(directory.iterdir()) and not (directory / MARK).exists()):
            raise PumpsimError("demo --dir %s: it holds files the demo did not make, and the demo clears its "
                               "folder; give a new or empty folder" % directory)
        supervisor.stop(directory)
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARK).write_text("made by pumpsim demo: the next demo in this folder clears it\n")


def run_demo(directory: Path, days=90, out=sys.stdout):
    clear(directory)
    print("booting a virtual board in %s and deploying the firmware with mpremote" % directory, file=out)
    info = supervisor.start(directory)
    try:
        key = deploy.new_key()
        (directory / "host.key").write_text(key.hex() + "\n")
        deploy.provision_key(info["port"], key)
        deploy.deploy(info["port"], "emu")
        with PumpClient.open(info["port"], key=key) as client, Rig.open(info["rig"]) as rig:
            return _run(client, rig, days, out, directory)
    finally:
        supervisor.stop(directory)


def _run(client, rig, days, out, directory=None):
    programme = report.Programme()  # what the demo sends, at the rig's time: the report's programme
    client = report.RecordingClient(client, rig, programme)
    client.refill(volume_ul=FILL_UL, concentration_ug_per_ml=CONCENTRATION_UG_PER_ML)
    client.program_continuous(daily_dose_ug=DOSE_UG_PER_DAY)
    start_ms = rig.time()["clock_ms"]
    print("filled %d mL of %d µg/mL, programmed %d µg/day continuous; running %d pump days"
          % (FILL_UL // 1000, CONCENTRATION_UG_PER_ML, DOSE_UG_PER_DAY, days), file=out)
    seen = {}
    started = time.monotonic()
    with days_bar(days) as bar:
        for _ in range(days):
            rig.advance(DAY_MS)
            for alarm in client.status()["alarms"]:
                seen.setdefault(alarm["code"], alarm)
            bar.update(1)
    wall_s = time.monotonic() - started

    measured = rig.measure()
    # The pump delivers until the empty-reservoir alarm stops it.
    empty = seen.get("EMPTY_RESERVOIR")
    end_ms = start_ms + days * DAY_MS
    delivering_ms = (min(end_ms, empty["since_s"] * 1000) if empty else end_ms) - start_ms
    programmed_nl = continuous_volume_nl(DOSE_UG_PER_DAY, CONCENTRATION_UG_PER_ML, delivering_ms)

    print("\ntimeline (pump days)", file=out)
    print("  day %6.2f  refill %d mL, continuous %d µg/day" % (start_ms / DAY_MS, FILL_UL // 1000,
                                                            DOSE_UG_PER_DAY), file=out)
    for alarm in sorted(seen.values(), key=lambda a: a["since_s"]):
        print("  day %6.2f  %s (%s)" % (alarm["since_s"] * 1000 / DAY_MS, alarm["code"],
                                        alarm["priority"]), file=out)
    print("  day %6.2f  end" % (end_ms / DAY_MS), file=out)
    error_ul = float(Fraction(measured["delivered_nl"]) - programmed_nl) / 1000
    print("\nrig measured   %10.3f µL  (%d pulses of %d nL)"
          % (measured["delivered_ul"], measured["pulses"], measured["stroke_nl"]), file=out)
    print("programmed     %10.3f µL  (%d µg/day for %.2f days at %d µg/mL)"
          % (float(programmed_nl) / 1000, DOSE_UG_PER_DAY, delivering_ms / DAY_MS,
             CONCENTRATION_UG_PER_ML), file=out)
    print("difference     %+10.3f µL  (one stroke is %.3f µL)" % (error_ul, measured["stroke_nl"] / 1000),
          file=out)
    print("%d pump days in %.1f s wall" % (days, wall_s), file=out)
    page = None
    if directory is not None:
        page = report.write_report(directory, report.gather(client, rig, programme))
        print("report         %s" % page, file=out)
    return {"days": days, "rig_delivered_nl": measured["delivered_nl"], "pulses": measured["pulses"],
            "stroke_nl": measured["stroke_nl"], "programmed_nl": float(programmed_nl),
            "difference_ul": round(error_ul, 3), "wall_s": round(wall_s, 1),
            "alarms": [{"code": a["code"], "priority": a["priority"], "since_s": a["since_s"]}
                       for a in sorted(seen.values(), key=lambda a: a["since_s"])],
            "report": None if page is None else str(page)}
