"""`make bench`: how fast pump time runs on a virtual board, the host→firmware round trip, and,
when the official RPI_PICO firmware is given (PUMPSIM_RP2_FIRMWARE), what a stroke costs on an
emulated Pico: heap, CPU, flash erases and FRAM writes.

    python -m pumpsim.hil.bench [--days 90] [--round-trips 200] [--write docs/benchmarks.md]

The 90-day run is the one of `make run`: 20 mL of 2000 µg/mL at 500 µg/day, stroke by stroke
(every stroke is a pulse the rig counts and an accounting record written ahead of it).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pumpsim import deploy
from pumpsim.targets.emu import supervisor
from pumpsim.client import PumpClient
from pumpsim.hil.rig import DAY_MS, Rig
from pumpsim.hil.soak import SECTION as SOAK_SECTION


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    micropython = supervisor.find_micropython()
    version = subprocess.run([micropython, "-c", "import sys; v = sys.implementation.version; print('%d.%d.%d' % v[:3], v[3] if len(v) > 3 else '')"],
                             capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": "%s %s" % (platform.system(), platform.release()),
        "python": platform.python_version(),
        "micropython": version,
    }


def run(days, round_trips, fram=True):
    workdir = Path(tempfile.mkdtemp(prefix="pumpsim-bench-"))
    try:
        info = supervisor.start(workdir, fram=fram)
        key = deploy.new_key()
        deploy.provision_key(info["port"], key)
        deploy.deploy(info["port"], "emu")
        client = PumpClient.open(info["port"], key=key)
        rig = Rig.open(info["rig"])
        client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
        client.program_continuous(daily_dose_ug=500)

        samples = []
        for _ in range(round_trips):
            start = time.perf_counter()
            client.status()
            samples.append(time.perf_counter() - start)

        erases = rig.measure()["flash_erases"]
        start = time.perf_counter()
        rig.advance(days * DAY_MS, timeout_s=600)
        wall_s = time.perf_counter() - start
        measured = rig.measure()
        pulses = measured["pulses"]
        client.close()
        rig.close()
        return {
            "days": days,
            "wall_s": wall_s,
            "strokes": pulses,
            "us_per_stroke": wall_s / pulses * 1e6 if pulses else None,
            "round_trip_median_ms": statistics.median(samples) * 1000,
            "round_trip_p95_ms": sorted(samples)[int(len(samples) * 0.95) - 1] * 1000,
            "round_trips": round_trips,
            "flash_erases": measured["flash_erases"] - erases,
        }
    finally:
        supervisor.stop(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


# The most a pump delivers: 24 mL/day (the dose guard), in 250 nL strokes of the Pico board.
MAX_STROKES_PER_DAY = 24_000_000 // 250
YEARS = 7
# Littlefs on the Pico's flash: 1.4 MB of 4 KB sectors, each good for about 100,000 erases.
FLASH_SECTORS = 1408 * 1024 // 4096
SECTOR_ERASES = 100_000
FRAM_WRITES_PER_BYTE = 10 ** 13  # MB85RS1MT
ONBOARD = Path(__file__).resolve().parent / "onboard" / "stroke_cost.py"


def silicon(fram=True):
    """The firmware's strokes on official MicroPython on an emulated RP2040, measured on the chip
    (heap with gc.mem_alloc, CPU with ticks_us) and by the rig (flash erases, FRAM writes).
    fram=False: the same on a bare Pico, whose firmware keeps its records on flash."""
    from pumpsim.targets.rp2040js import supervisor as rp2040js

    workdir = Path(tempfile.mkdtemp(prefix="pumpsim-bench-rp2-"))
    try:
        info = rp2040js.start(workdir, fram=fram)
        build_dir = deploy.build("rpi_pico", out_dir=workdir / "build")
        mpy_b = sum(p.stat().st_size for p in build_dir.rglob("*.mpy"))
        deploy.deploy(info["port"], "rpi_pico", build_dir=build_dir)  # no key: the REPL stays free
        time.sleep(2.0)
        # Once to set up what a first boot writes (the FRAM's format, the flash's flag), then measured.
        deploy.mpremote(info["port"], "run", str(ONBOARD), timeout=900)
        rig = Rig.open(info["rig"])
        before = rig.measure()
        out = deploy.mpremote(info["port"], "run", str(ONBOARD), timeout=900)
        after = rig.measure()
        rig.close()
    finally:
        supervisor.stop(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    probe = json.loads(out.strip().splitlines()[-1])
    strokes = probe["strokes"]
    us = sorted(probe["stroke_us"])
    erases = after["flash_erases"] - before["flash_erases"]
    fram_writes = after["fram_writes"] - before["fram_writes"]
    fram_bytes = after["fram_written_bytes"] - before["fram_written_bytes"]
    per_day_erases = erases * MAX_STROKES_PER_DAY / strokes
    return {
        "strokes": strokes, "pulses": after["pulses"] - before["pulses"],
        "bytes_per_stroke": sum(probe["bytes_per_batch"]) / strokes,
        "bytes_per_stroke_max_batch": max(probe["bytes_per_batch"]) / probe["per_batch"],
        "cpu_median_us": statistics.median(us), "cpu_p95_us": us[int(len(us) * 0.95) - 1],
        "heap_b": probe["heap_b"], "after_boot_b": probe["after_boot_b"], "peak_b": probe["peak_b"],
        "mpy_b": mpy_b, "nvram": probe["nvram"], "freq_mhz": probe["freq_hz"] // 1_000_000,
        "flash_erases": erases, "fram_writes": fram_writes, "fram_bytes_per_stroke": fram_bytes / strokes,
        "flash_erases_per_day": per_day_erases,
        "flash_budget_used": per_day_erases * 365 * YEARS / (FLASH_SECTORS * SECTOR_ERASES),
        # Each stroke's record goes to one of two slots: a byte of a slot is written every other stroke.
        "fram_budget_used": MAX_STROKES_PER_DAY * 365 * YEARS / 2 / FRAM_WRITES_PER_BYTE,
    }


def render_silicon(r, bare):
    return "\n".join([
        "## A stroke on silicon",
        "",
        "Measured by `make bench` when `PUMPSIM_RP2_FIRMWARE` is set: the firmware deployed with",
        "mpremote to official MicroPython %s on an emulated RP2040 at %d MHz (rp2040js), then"
        % ("v1.28.0", r["freq_mhz"]),
        "`hil/onboard/stroke_cost.py` run on it twice, measured the second time (the first formats",
        "the FRAM): the real pump logic and hardware layer make %d"
        % r["strokes"],
        "strokes at the maximum rate (1200 µg/day of 50 µg/mL), in batches of 20 with the collector",
        "off. Heap and CPU are the chip's own readings (`gc.mem_alloc`, `ticks_us`); erases, FRAM",
        "writes and pulses are the rig's (%d pulses counted). CPU time is as rp2040js counts it:"
        % r["pulses"],
        "cycles per instruction, and each SPI byte's bits at the clock the firmware set.",
        "",
        "| figure | value | goal |",
        "| --- | --- | --- |",
        "| heap allocated per stroke, mean (worst batch) | %.0f B (%.0f B) | 0 B |"
        % (r["bytes_per_stroke"], r["bytes_per_stroke_max_batch"]),
        "| CPU per stroke, median (95th percentile) | %.2f ms (%.2f ms) | ≤ 1 ms |"
        % (r["cpu_median_us"] / 1000, r["cpu_p95_us"] / 1000),
        "| heap in use after boot, refill and programme; peak in the run; heap size | %.1f KB; %.1f KB; %.1f KB | |"
        % (r["after_boot_b"] / 1024, r["peak_b"] / 1024, r["heap_b"] / 1024),
        "| firmware, .mpy total | %.1f KB | |" % (r["mpy_b"] / 1024),
        "| where the records are | %s | fram |" % r["nvram"],
        "| flash erases in the run | %d | 0 |" % r["flash_erases"],
        "| flash erases per pump day at 96,000 strokes | %.0f | |" % r["flash_erases_per_day"],
        "| 7 years of them, share of the flash's %d sectors × 100,000 erases | %.2f %% | ≤ 100 %% |"
        % (FLASH_SECTORS, r["flash_budget_used"] * 100),
        "| FRAM bytes written per stroke | %.0f B | |" % r["fram_bytes_per_stroke"],
        "| 7 years at 96,000 strokes a day, share of an FRAM byte's 10^13 writes | %.4f %% | ≤ 100 %% |"
        % (r["fram_budget_used"] * 100),
        "",
        "The same run on a bare Pico, without the FRAM (the firmware keeps its records on flash,",
        "as files): %.0f B and %.2f ms (median) a stroke, %d flash erases in %d strokes, %.0f erases"
        % (bare["bytes_per_stroke"], bare["cpu_median_us"] / 1000, bare["flash_erases"], bare["strokes"],
           bare["flash_erases_per_day"]),
        "a pump day at the maximum rate: %.0f %% of the flash's seven-year budget, even with perfect"
        % (bare["flash_budget_used"] * 100),
        "wear levelling. That is why the records are on the FRAM (docs/architecture.md, \"Records\").",
        "",
    ])


SILICON_SECTION = "## A stroke on silicon"


def render(result, machine):
    return "\n".join([
        "# Benchmarks",
        "",
        "Measured by `make bench` (`python -m pumpsim.hil.bench`) on a virtual board in stepped time.",
        "",
        "| figure | value | target |",
        "| --- | --- | --- |",
        "| %d pump days, 20 mL of 2000 µg/mL at 500 µg/day, wall time | %.2f s | ≤ 10 s (goal ≤ 1 s) |"
        % (result["days"], result["wall_s"]),
        "| strokes in that run (rig count) | %d | |" % result["strokes"],
        "| wall time per stroke | %.0f µs | |" % result["us_per_stroke"],
        "| host→firmware round trip (`status`), median of %d | %.2f ms | ≤ 1 ms |"
        % (result["round_trips"], result["round_trip_median_ms"]),
        "| same, 95th percentile | %.2f ms | |" % result["round_trip_p95_ms"],
        "| the same %d days with the records on flash files instead of the FRAM, wall time | %.2f s (FRAM/files: %.2f) | |"
        % (result["days"], result["flash_wall_s"], result["wall_s"] / result["flash_wall_s"]),
        "| flash erases in those %d days (rig count), records on the FRAM; on flash files | %d; %d (%.2f a stroke) | |"
        % (result["days"], result["flash_erases"], result["files_flash_erases"],
           result["files_flash_erases"] / result["strokes"]),
        "",
        "Machine: %s, %d cores, %s, CPython %s, MicroPython %s."
        % (machine["cpu"], machine["cores"], machine["os"], machine["python"], machine["micropython"]),
        "",
        "The round trip is a framed, CRC-checked `status` request through the virtual board's pty",
        "and its supervisor to the firmware and back, as pyserial sees it. The pump empties at day",
        "78, so the 90-day run makes 39,000 strokes. On this shared virtual machine, repeated runs",
        "vary by up to a quarter, and from hour to hour by up to five times: compare the two 90-day",
        "runs by their ratio, measured in the same run. Most of the time per stroke is the",
        "firmware's own MicroPython.",
        "",
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pumpsim-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--write", metavar="FILE", help="write the figures as Markdown to FILE")
    args = parser.parse_args(argv)
    result = run(args.days, args.round_trips)
    # The same run with the records on flash files, as before the FRAM: the ratio of the two,
    # measured in the same run, is what the FRAM costs or saves on the virtual board.
    on_files = run(args.days, 20, fram=False)
    result["flash_wall_s"], result["files_flash_erases"] = on_files["wall_s"], on_files["flash_erases"]
    machine = machine_description()
    on_silicon = bare = None
    if os.environ.get("PUMPSIM_RP2_FIRMWARE"):
        on_silicon, bare = silicon(), silicon(fram=False)
    print(json.dumps({"result": result, "machine": machine, "silicon": on_silicon, "bare_pico": bare}, indent=2))
    if args.write:
        path = Path(args.write)
        text = render(result, machine)
        old = path.read_text() if path.exists() else ""
        if on_silicon is not None:
            text = text.rstrip("\n") + "\n\n" + render_silicon(on_silicon, bare)
        elif SILICON_SECTION in old:  # measured when the firmware was given: keep it
            kept = old[old.index(SILICON_SECTION):]
            text = text.rstrip("\n") + "\n\n" + (kept[:kept.index(SOAK_SECTION)] if SOAK_SECTION in kept else kept)
        if SOAK_SECTION in old:  # `make soak` owns that section: keep it
            text = text.rstrip("\n") + "\n\n" + old[old.index(SOAK_SECTION):]
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
