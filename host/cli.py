"""pumpsim: program, refill and watch a pump; run virtual boards and their rig.

    pumpsim emu start --dir DIR
    pumpsim --dir DIR refill --volume-ml 20 --concentration-ug-per-ml 2000
    pumpsim --dir DIR program continuous --daily-dose-ug 500
    pumpsim --dir DIR rig advance 10d
    pumpsim --dir DIR status --json
"""

import argparse
import json
import sys
from pathlib import Path

from pumpsim import units
from pumpsim.errors import PumpsimError, Refused, UsageError

DAY_MS = 86_400_000


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        command = self.prog.partition(" ")[2]
        raise UsageError("%s: %s" % (command, message) if command else message)


# -- where the pump is -------------------------------------------------------------------------


class Target:
    """The board a command talks to: a virtual board's folder, or a port, key and rig."""

    def __init__(self, args):
        self.args = args
        self.port, self.rig_url, self.key_file = args.port, args.rig, args.key
        if args.dir:
            from pumpsim.targets.emu import supervisor

            info = supervisor.info(args.dir)
            if info is None:
                raise PumpsimError("no virtual board runs in %s (pumpsim emu start --dir %s)"
                                   % (args.dir, args.dir))
            self.port = self.port or info["port"]
            self.rig_url = self.rig_url or info["rig"]
            self.key_file = self.key_file or info["key"]

    def client(self, need_key=False):
        from pumpsim import deploy
        from pumpsim.client import PumpClient

        if not self.port:
            raise UsageError("which pump? give --dir DIR or --port PORT")
        key = None
        if self.key_file and (need_key or Path(self.key_file).exists()):
            key = deploy.read_key(self.key_file)
        if need_key and key is None:
            raise UsageError("this command changes therapy: give the board's key with --key FILE")
        return PumpClient.open(self.port, key=key, timeout=self.args.timeout)

    def rig(self):
        from pumpsim.hil.rig import Rig

        if not self.rig_url:
            raise UsageError("which rig? give --dir DIR or --rig URL")
        return Rig.open(self.rig_url, timeout_s=self.args.timeout)


def emit(args, obj, human):
    print(json.dumps(obj) if getattr(args, "json", False) else human(obj))


def _day(seconds):
    return "-" if seconds is None else "%.1f" % (seconds / 86400)


def _ul(value):
    return "%.3f mL" % (float(value) / 1000)


def human_status(s):
    days, rest = divmod(s["clock_s"], 86400)
    hours, rest = divmod(rest, 3600)
    alarms = ", ".join("%s (%s)" % (a["code"], a["priority"]) for a in s["alarms"]) or "none"
    return "\n".join([
        "state      %s (%s)" % (s["state"], s["mode"]),
        "reservoir  %s   delivered %s" % (_ul(s["reservoir_ul"]), _ul(s["delivered_ul"])),
        "therapy    %d µg/day of %d µg/mL" % (s["daily_dose_ug"], s["concentration_ug_per_ml"]),
        "refill     by day %s%s" % (_day(s["refill_reminder_s"]), "" if s["projected_low_reservoir_s"] is None
                                    else " (low reservoir on day %s, empty on day %s)"
                                    % (_day(s["projected_low_reservoir_s"]), _day(s["projected_empty_s"]))),
        "clock      day %d %02d:%02d:%02d%s" % (days, hours, rest // 60, rest % 60, {
            "restored": " (restored from the saved clock: set it with set-clock)",
            "set": " (set)"}.get(s.get("clock_source"), "")),
        "alarms     %s" % alarms,
    ])


# -- commands ----------------------------------------------------------------------------------


def cmd_status(args):
    """The pump's state, therapy, reservoir, battery and alarms."""
    with Target(args).client() as client:
        emit(args, client.status(), human_status)


def human_refill(s):
    lines = [human_status(s)]
    if "discrepancy_pct" in s:
        lines.append("withdrawn  %s, calculated %s: discrepancy %.1f %%%s" % (
            _ul(s["withdrawn_ul"]), _ul(s["calculated_ul"]), s["discrepancy_pct"],
            "  FLAGGED: beyond the limit, suspect a malfunction" if s["flagged"] else ""))
    if "bridge_ul" in s:
        lines.append("bridge     %d µL of the old drug first, at the old concentration's rate" % s["bridge_ul"])
    return "\n".join(lines)


def cmd_refill(args):
    """Record a refill: the volume put in and its concentration."""
    volume_ul = units.ml_to_ul(args.volume_ml)
    concentration = units.positive_int(args.concentration_ug_per_ml, "concentration")
    withdrawn_ul = None
    if args.withdrawn_ml is not None:
        withdrawn_ul = units.ml_to_ul(args.withdrawn_ml, "withdrawn volume", allow_zero=True)
    reminder = units.positive_int(args.reminder_days, "reminder days") if args.reminder_days else None
    with Target(args).client(need_key=True) as client:
        emit(args, client.refill(volume_ul, concentration, withdrawn_ul, reminder), human_refill)


def cmd_program_continuous(args):
    """Programme a constant daily dose."""
    dose = units.positive_int(args.daily_dose_ug, "daily dose")
    with Target(args).client(need_key=True) as client:
        emit(args, client.program_continuous(dose), human_status)


def cmd_program_flex(args):
    """Programme a flex schedule: daily doses from given times of day (or weekdays)."""
    daily, week = [], {}
    for day, minute, dose in (units.flex_step(step) for step in args.step):
        (daily if day is None else week.setdefault(day, [])).append((minute, dose))
    if not daily:
        raise UsageError("a flex schedule needs steps for every day (HH:MM=D), weekdays' own may follow")
    for steps in [daily] + list(week.values()):
        steps.sort()
        if len(steps) > 13:
            raise UsageError("a flex schedule has at most 13 steps a day, not %d" % len(steps))
    with Target(args).client(need_key=True) as client:
        emit(args, client.program_flex(daily, week), human_status)


WITHDRAWAL = ("%s: this risks abrupt withdrawal of intrathecal baclofen (high fever, altered mental "
              "status, rebound spasticity, muscle rigidity, death); repeat with --confirm to go ahead")


def _confirmed(args, command):
    # Asked here as well as by the pump: a refusal must change nothing, even on a board that
    # would not ask.
    if not args.confirm:
        raise UsageError(WITHDRAWAL % command)


def cmd_program_minimum_rate(args):
    """Run at the minimum rate that keeps the catheter open (needs --confirm)."""
    _confirmed(args, "program minimum-rate")
    with Target(args).client(need_key=True) as client:
        emit(args, client.program_minimum_rate(confirm=True), human_status)


def cmd_program_stop(args):
    """Stop therapy (needs --confirm: abrupt withdrawal is dangerous)."""
    _confirmed(args, "program stop")
    with Target(args).client(need_key=True) as client:
        reply = client.program_stop(confirm=True)
    print("WARNING: %s" % reply["warning"], file=sys.stderr)
    emit(args, reply, human_status)


def cmd_program_patient_bolus(args):
    """Allow patient boluses: dose, lockout and a daily maximum."""
    dose = units.positive_int(args.dose_ug, "bolus dose")
    lockout = units.positive_int(args.lockout_minutes, "lockout")
    most = units.positive_int(args.max_per_day, "maximum per day")
    with Target(args).client(need_key=True) as client:
        emit(args, client.program_patient_bolus(dose, lockout, most), human_status)


def cmd_bolus(args):
    """Give a clinician bolus, a patient bolus or a priming bolus."""
    kinds = [k for k in ("patient", "dose_ug", "prime_ul") if getattr(args, k)]
    if len(kinds) != 1:
        raise UsageError("bolus: give one of --dose-ug X --minutes M, --patient, --prime-ul V --minutes M")
    if not args.patient and not args.minutes:
        raise UsageError("bolus: --minutes M says over how long")
    with Target(args).client(need_key=True) as client:
        if args.patient:
            reply = client.bolus_patient()
        elif args.dose_ug:
            reply = client.bolus(units.positive_int(args.dose_ug, "bolus dose"),
                                 units.positive_int(args.minutes, "minutes"))
        else:
            reply = client.bolus_prime(units.positive_int(args.prime_ul, "priming volume (µL)"),
                                       units.positive_int(args.minutes, "minutes"))
    emit(args, reply, lambda s: "%s bolus: %s µL until %s s, at most %d µg to the patient\n%s" % (
        s["bolus"]["kind"], s["bolus"]["volume_ul"], s["bolus"]["end_s"], s["bolus"]["patient_ug"],
        human_status(s)))


def human_alarms(alarms):
    if not alarms:
        return "no alarms"
    return "\n".join("%-16s %-6s since day %.3f  %s%s" % (
        a["code"], a["priority"], a["since_s"] / 86400, a["pattern"], "  (acknowledged)" if a["acked"] else "")
        for a in alarms)


def cmd_alarms(args):
    """The alarms standing, with their priority and sound."""
    with Target(args).client() as client:
        emit(args, client.alarms(), human_alarms)


def cmd_alarms_ack(args):
    """Acknowledge an alarm by its code (it sounds less often; it stays until cleared)."""
    with Target(args).client(need_key=True) as client:
        emit(args, client.ack(args.code.upper()), human_alarms)


def cmd_alarms_test(args):
    """Play both alarm patterns on the buzzer."""
    with Target(args).client(need_key=True) as client:
        emit(args, client.alarm_test(), lambda r: "playing: %s" % ", ".join(r["patterns"]))


def cmd_rig_fault_motor_stall(args):
    """Make the motor stall: on, off, intermittent, or the next N attempts."""
    attempts = None
    if args.mode == "next":
        if args.attempts is None:
            raise UsageError("motor-stall next needs N: how many of the next motor attempts fail")
        attempts = units.positive_int(args.attempts, "motor-stall next N")
    elif args.attempts is not None:
        raise UsageError("only motor-stall next takes a number, not %s" % args.mode)
    with Target(args).rig() as rig:
        emit(args, rig.stall(args.mode, attempts), lambda r: "motor stall: %s%s" % (
            r["stall"], " %d attempts" % r["fail_next"] if "fail_next" in r else ""))


def cmd_rig_battery(args):
    """Set (or read) the battery voltage the board reads."""
    millivolts = None
    if args.volts is not None:
        millivolts = units.volts_to_mv(args.volts)
    with Target(args).rig() as rig:
        emit(args, rig.battery(millivolts), lambda r: "battery %.3f V" % (r["battery_mv"] / 1000))


def cmd_rig_corrupt_flash(args):
    """Flip bits in the board's saved records or event log."""
    with Target(args).rig() as rig:
        emit(args, rig.corrupt_flash(args.target), lambda r: "corrupted " + ", ".join(r["corrupted"]))


def cmd_rig_hang(args):
    """Hang the firmware's main loop, so that its watchdog must act."""
    with Target(args).rig() as rig:
        emit(args, rig.hang(), lambda r: "the board's main loop is hung")


def cmd_rig_tones(args):
    """The sounds the buzzer made: when, how long, which pattern."""
    with Target(args).rig() as rig:
        emit(args, rig.tones(), lambda tones: "\n".join(
            "day %.4f  %-8s %d ms" % (t["t_ms"] / 86_400_000, t["pattern"], t["duration_ms"])
            for t in tones) or "silence")


def cmd_log(args):
    """The pump's event log."""
    with Target(args).client() as client:
        events = client.log()
    emit(args, events, lambda evs: "\n".join(
        "day %8.4f  %-22s %s" % (e["t_ms"] / 86_400_000, e["event"], " ".join(
            "%s=%s" % (k, v) for k, v in e.items() if k not in ("event", "t_s", "t_ms", "seq")))
        for e in evs))


def cmd_config(args):
    """Set the pump's thresholds and the volumes of its tubing and catheter."""
    thresholds = {}
    for name in ("tubing_ul", "catheter_ul"):
        value = getattr(args, name)
        if value is not None:
            thresholds[name] = 0 if value.strip() == "0" else units.positive_int(value, name)
    if args.discrepancy_limit_pct is not None:
        thresholds["discrepancy_limit_permille"] = units.percent_to_permille(
            args.discrepancy_limit_pct, "discrepancy limit")
    if args.low_reservoir_ml is not None:
        thresholds["low_reservoir_ul"] = units.ml_to_ul(args.low_reservoir_ml, "low-reservoir threshold")
    if args.empty_reservoir_ml is not None:
        thresholds["empty_reservoir_ul"] = units.ml_to_ul(args.empty_reservoir_ml,
                                                          "empty-reservoir threshold")
    if args.reminder_lead_days is not None:
        value = args.reminder_lead_days
        thresholds["reminder_lead_days"] = 0 if value.strip() == "0" else units.positive_int(
            value, "reminder lead days")
    if not thresholds:
        raise UsageError("config: give at least one setting (pumpsim config --help)")
    with Target(args).client(need_key=True) as client:
        emit(args, client.config(**thresholds), human_status)


def cmd_set_clock(args):
    """Set the pump's clock (pump time in ms, or a day and time of day)."""
    clock_ms = units.pump_clock_ms(args.clock_ms, args.day, args.time)
    with Target(args).client(need_key=True) as client:
        emit(args, client.set_clock(clock_ms), human_status)


def cmd_maintenance(args):
    """Hand the serial line to mpremote for a while; therapy goes on."""
    target = Target(args)
    with target.client(need_key=True) as client:
        reply = client.maintenance()
    emit(args, reply, lambda r: "maintenance: the REPL is mpremote's on %s for at most %s minutes, then therapy "
         "resumes by itself; `mpremote connect %s reset` resumes it now" % (target.port, r.get("minutes"), target.port))


def cmd_rig_advance(args):
    """Move pump time on (stepped clock only): 90s, 36h, 10d."""
    from tqdm import tqdm

    duration = units.duration_ms(args.duration)
    with Target(args).rig() as rig:
        if duration < DAY_MS or not sys.stderr.isatty():
            reply = rig.advance(duration)
        else:  # a day or more at a terminal: an hour at a time, with a bar
            with tqdm(total=duration, unit_scale=1 / DAY_MS, desc="pump time", file=sys.stderr,
                      bar_format="{desc} {bar} {n:.2f}/{total:.2f} days {elapsed}") as bar:
                left = duration
                while left:
                    step = min(left, DAY_MS // 24)
                    reply = rig.advance(step)
                    left -= step
                    bar.update(step)
        emit(args, reply, lambda r: "pump time: %.3f days" % (r["clock_ms"] / DAY_MS))


def cmd_rig_measure(args):
    """The rig's own count: strokes, volume delivered, power cuts, flash writes."""
    with Target(args).rig() as rig:
        emit(args, rig.measure(),
             lambda m: "%d pulses, %.3f µL delivered (rig count)" % (m["pulses"], m["delivered_ul"]))


def cmd_rig_time(args):
    """Pump time as the rig keeps it, and how its clock runs."""
    with Target(args).rig() as rig:
        emit(args, rig.time(), lambda r: "pump time %d ms (%s)" % (r["clock_ms"], r["clock"]))


def cmd_rig_clock(args):
    """How pump time runs: stepped, realtime or xN."""
    with Target(args).rig() as rig:
        emit(args, rig.clock(args.mode), lambda r: "clock %s" % r["clock"])


def cmd_rig_rtc(args):
    """Whether the board's RTC keeps time across power-ups (kept) or restarts (volatile)."""
    with Target(args).rig() as rig:
        emit(args, rig.rtc(args.mode), lambda r: "rtc %s (from the board's next power-up or reset)"
             % r["rtc"])


def cmd_rig_power_cycle(args):
    """Cut the board's power and restore it, now or during a given write."""
    at_write = units.positive_int(args.at_write, "--at-write") if args.at_write else None
    with Target(args).rig() as rig:
        emit(args, rig.power_cycle(at_write),
             lambda r: "power will be cut during write %d" % at_write if at_write else "power cycled")


def human_report(r):
    s = r["summary"]

    def num(value, fmt):
        return "-" if value is None else fmt % value

    trumpet = ", ".join("%s %s/%s %%" % (name, num(t["max_pct"], "%+.2f"), num(t["min_pct"], "%+.2f"))
                        for name, t in zip(("1 h", "6 h", "24 h", "7 d"), s["trumpet"].values()))
    return "\n".join([
        "report     %s" % r["report"],
        "per day    %s" % r["csv"],
        "programme  %s" % ("sent by the harness" if s["programme"] == "harness" else
                           "read from the pump's event log (the harness sent none)"),
        "volume     rig %s µL, programmed %.3f µL: %s µL (%s %%) over %.2f days" % (
            num(s["delivered_ul"], "%.3f"), s["programmed_ul"], num(s["error_ul"], "%+.3f"),
            num(s["error_pct"], "%+.3f"), s["days"]),
        "worst hour %s µL, %s %% (of %d steady hours)" % (
            num(s["worst_hourly_error_ul"], "%+.3f"), num(s["worst_hourly_error_pct"], "%+.2f"), s["steady_hours"]),
        "trumpet    largest/smallest error: %s" % trumpet,
    ])


def cmd_report(args):
    """Write the delivery report (report.html, its plots, report.csv) from the rig's trace."""
    from pumpsim.hil import report

    if args.recording:
        try:
            recording = report.Recording.load(args.recording)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise PumpsimError("report --recording %s: not a recording the report wrote (%s)"
                               % (args.recording, exc)) from None
        out = Path(args.out) if args.out else Path(args.recording).parent
    else:
        target = Target(args)
        if not (args.out or args.dir):
            raise UsageError("report: where to write it? give --out FOLDER (or --dir DIR of a virtual board)")
        out = Path(args.out or args.dir)
        with target.client() as client, target.rig() as rig:
            recording = report.gather(client, rig)
    page = report.write_report(out, recording)
    emit(args, {"report": str(page), "csv": str(out / "report.csv"), "recording": str(out / report.RECORDING),
                "figures": [str(out / ("%s.png" % name)) for name in report.FIGURES],
                "summary": json.loads((out / "summary.json").read_text())}, human_report)


def cmd_emu_start(args):
    """Boot a virtual board (emu), an emulated Pico (rp2040js) or the emulated bench."""
    from pumpsim import targets

    info = targets.start(args.dir, args.target, micropython=args.micropython, firmware=args.firmware,
                         clock=args.clock, reset_causes=args.reset_causes)
    print(json.dumps({k: info[k] for k in ("port", "rig", "dir", "key", "pid", "observer") if k in info}))


def cmd_emu_stop(args):
    """Stop the virtual board running in a folder."""
    from pumpsim.targets.emu import supervisor

    stopped = supervisor.stop(Path(args.dir))
    emit(args, {"stopped": stopped, "dir": args.dir},
         lambda r: "stopped" if stopped else "no virtual board was running in %s" % args.dir)


def cmd_build(args):
    """Build a board's firmware with mpy-cross; prints the folder it is in."""
    from pumpsim import deploy

    emit(args, {"board": args.board, "build": str(deploy.build(args.board, out_dir=args.out))},
         lambda r: r["build"])


def cmd_deploy(args):
    """Copy a board's firmware onto it over its port with mpremote, then reset it."""
    from pumpsim import deploy

    deploy.deploy(args.port, args.board)
    emit(args, {"deployed": args.board, "port": args.port},
         lambda r: "deployed %s firmware to %s" % (args.board, args.port))


def cmd_provision(args):
    """Put a key on a board over its port (before the firmware holds the line)."""
    from pumpsim import deploy

    deploy.provision_key(args.port, deploy.read_key(args.key))
    emit(args, {"provisioned": args.port}, lambda r: "key provisioned on %s" % args.port)


def cmd_keygen(args):
    """Write a new random key, in hex, to a file."""
    from pumpsim import deploy

    path = Path(args.file)
    if path.exists():
        raise UsageError("%s exists: not overwriting a key" % path)
    path.write_text(deploy.new_key().hex() + "\n")
    emit(args, {"key": str(path)}, lambda r: r["key"])


def cmd_completion(args):
    """Print a shell's completion script for pumpsim, made from this parser."""
    import shtab

    script = shtab.complete(build_parser(), shell=args.shell)
    emit(args, {"shell": args.shell, "script": script}, lambda r: r["script"])


def cmd_demo(args):
    """Run the pump emulated for N days and show what the rig measured."""
    from pumpsim.demo import run_demo

    if args.json:  # the story on stderr, the summary alone on stdout
        print(json.dumps(run_demo(Path(args.dir), days=args.days, out=sys.stderr)))
    else:
        run_demo(Path(args.dir), days=args.days)


def cmd_scenario_run(args):
    """Run a scenario file on a new board of its own and print its pass/fail table."""
    from pumpsim.hil import scenario, scenario_runner

    played = scenario_runner.run_on_board(scenario.load(args.file), target=args.target, directory=args.dir,
                                   timeout_s=args.timeout)
    emit(args, played.as_json(), lambda r: played.human())
    if not played.passed:
        raise PumpsimError("scenario %s: %d of %d expectations failed" % (args.file, len(played.failed),
                                                                          len(played.rows)))


# The CLI is this table: (words, handler, options). Options are (flags, argparse keywords).
BOARD_HELP = "a board of boards/ (emu, rpi_pico, rig_pico)"
PORT_HELP = "the board's serial port: /dev/ttyACM0, a pty, socket://HOST:PORT"
# --json is taken before the command too (the top parser's); here it must not reset that one.
JSON = (("--json",), {"action": "store_true", "default": argparse.SUPPRESS,
                      "help": "print JSON (also before the command); errors too, on stderr"})
CONFIRM = (("--confirm",), {"action": "store_true",
                            "help": "go ahead although this risks abrupt withdrawal"})
COMMANDS = (
    (("status",), cmd_status, [JSON]),
    (("refill",), cmd_refill, [
        (("--volume-ml",), {"required": True, "help": "mL put into the reservoir"}),
        (("--concentration-ug-per-ml",), {"required": True, "help": "µg/mL of the drug put in"}),
        (("--withdrawn-ml",), {"help": "mL drawn out of the reservoir before the fill"}), (("--reminder-days",), {"help": "days from now to the refill reminder"}),
        JSON]),
    (("program", "continuous"), cmd_program_continuous, [
        (("--daily-dose-ug",), {"required": True, "help": "µg a day"}), JSON]),
    (("program", "flex"), cmd_program_flex, [
        (("--step",), {"action": "append", "required": True,
                        "help": "[DAY/]HH:MM=µg/day, up to 13 a day; DAY (mon-sun) gives a weekday its own"}),
        JSON]),
    (("program", "minimum-rate"), cmd_program_minimum_rate, [CONFIRM, JSON]),
    (("program", "stop"), cmd_program_stop, [CONFIRM, JSON]),
    (("program", "patient-bolus"), cmd_program_patient_bolus, [
        (("--dose-ug",), {"required": True, "help": "µg a patient bolus"}),
        (("--lockout-minutes",), {"required": True, "help": "minutes from one patient bolus to the next"}),
        (("--max-per-day",), {"required": True, "help": "patient boluses a day, at most"}), JSON]),
    (("bolus",), cmd_bolus, [
        (("--dose-ug",), {"help": "µg of a clinician bolus"}), (("--minutes",), {"help": "minutes the bolus lasts"}),
        (("--patient",), {"action": "store_true", "help": "a patient bolus, as programmed"}),
        (("--prime-ul",), {"help": "µL of tubing and catheter a priming bolus fills"}), JSON]),
    (("log",), cmd_log, [JSON]),
    (("alarms",), cmd_alarms, [JSON]),
    (("alarms", "ack"), cmd_alarms_ack, [(("code",), {"help": "the alarm's code, as `alarms` lists it (LOW_RESERVOIR, ...)"}), JSON]),
    (("alarms", "test"), cmd_alarms_test, [JSON]),
    (("config",), cmd_config, [
        (("--low-reservoir-ml",), {"help": "mL left that raise LOW_RESERVOIR"}),
        (("--empty-reservoir-ml",), {"help": "mL left that raise EMPTY_RESERVOIR"}),
        (("--tubing-ul",), {"help": "µL the pump's tubing holds"}), (("--catheter-ul",), {"help": "µL the catheter holds"}),
        (("--discrepancy-limit-pct",), {"help": "%% of a refill's expected volume that flags a discrepancy"}),
        (("--reminder-lead-days",), {"help": "days before the projected low reservoir that the reminder sounds"}),
        JSON]),
    (("set-clock",), cmd_set_clock, [
        (("--clock-ms",), {"help": "pump time in ms"}), (("--day",), {"help": "the pump's day (0: its first)"}), (("--time",), {"help": "HH:MM[:SS], with --day"}), JSON]),
    (("maintenance",), cmd_maintenance, [JSON]),
    (("rig", "advance"), cmd_rig_advance, [(("duration",), {"help": "e.g. 90s, 36h, 10d"}), JSON]),
    (("rig", "measure"), cmd_rig_measure, [JSON]),
    (("rig", "time"), cmd_rig_time, [JSON]),
    (("rig", "clock"), cmd_rig_clock, [(("mode",), {"help": "stepped, realtime or xN"}), JSON]),
    (("rig", "power-cycle"), cmd_rig_power_cycle, [(("--at-write",), {"help": "N: cut during the Nth write to the records from now"}), JSON]),
    (("rig", "rtc"), cmd_rig_rtc, [(("mode",), {"nargs": "?", "choices": ["kept", "volatile"], "help": "none: read the setting"}), JSON]),
    (("rig", "fault", "motor-stall"), cmd_rig_fault_motor_stall, [
        (("mode",), {"choices": ["on", "off", "intermittent", "next"], "help": "intermittent: every other attempt fails"}),
        (("attempts",), {"nargs": "?", "metavar": "N", "help": "with next: the next N motor attempts fail"}),
        JSON]),
    (("rig", "battery"), cmd_rig_battery, [(("--volts",), {"help": "V the battery reads, e.g. 2.85 (none: read it)"}), JSON]),
    (("rig", "corrupt-flash"), cmd_rig_corrupt_flash, [
        (("--target",), {"default": "state", "choices": ["state", "both", "log"], "help": "which records (default: state)"}), JSON]),
    (("rig", "hang"), cmd_rig_hang, [JSON]),
    (("rig", "tones"), cmd_rig_tones, [JSON]),
    (("report",), cmd_report, [
        (("--dir",), {"help": "the virtual board's folder; the report goes into it unless --out says"}),
        (("--out",), {"help": "the folder to write report.html, its PNGs, report.csv and recording.json into"}),
        (("--recording",), {"help": "make the report again from a recording.json it wrote (no board needed)"}),
        JSON]),
    (("emu", "start"), cmd_emu_start, [
        (("--dir",), {"required": True, "help": "the board's folder (emu.json, its flash, its key)"}),
        (("--target",), {"default": "emu", "choices": ["emu", "rp2040js", "bench"],
                         "help": "emu: the unix port in a virtual board; rp2040js: official "
                                 "MicroPython on an emulated RP2040 (Pico); bench: two emulated Picos, "
                                 "the DUT and the rig Pico, wired as docs/bench.md says"}),
        (("--micropython",), {"help": "emu: the unix port's micropython binary"}), (("--firmware",), {"help": "rp2040js, bench: the RPI_PICO uf2"}),
        (("--clock",), {"help": "emu: stepped (default), realtime or xN; rp2040js: realtime"}),
        (("--reset-causes",), {"default": "all", "choices": ["all", "rp2"],
                               "help": "emu: rp2 reports resets as an RP2040 does, power-on or watchdog"}),
        JSON]),
    (("emu", "stop"), cmd_emu_stop, [(("--dir",), {"required": True, "help": "the board's folder"}), JSON]),
    (("build",), cmd_build, [(("--board",), {"default": "emu", "help": BOARD_HELP}),
                             (("--out",), {"metavar": "DIR", "help": "the folder to build into (default build/BOARD "
                                                                     "in the current folder)"}), JSON]),
    (("deploy",), cmd_deploy, [(("--board",), {"required": True, "help": BOARD_HELP}),
                                 (("--port",), {"required": True, "help": PORT_HELP}), JSON]),
    (("provision",), cmd_provision, [(("--port",), {"required": True, "help": PORT_HELP}),
                                       (("--key",), {"required": True, "help": "file holding the key, in hex"}), JSON]),
    (("keygen",), cmd_keygen, [(("file",), {"help": "where to write the key (never overwritten)"}), JSON]),
    (("completion",), cmd_completion, [
        (("shell",), {"choices": ["bash", "zsh", "tcsh"],
                      "help": "the shell; e.g. `pumpsim completion bash > ~/.local/share/bash-completion/completions/pumpsim`"}),
        JSON]),
    (("scenario", "run"), cmd_scenario_run, [
        (("file",), {"help": "the scenario, a TOML file (docs/scenarios.md); scenarios/ has some"}),
        (("--target",), {"default": "emu", "choices": ["emu", "rp2040js", "bench"],
                         "help": "what runs the board (as emu start --target): emu, the default, has the "
                                 "stepped clock a scenario of pump days needs"}),
        (("--dir",), {"metavar": "DIR", "help": "a new or empty folder for the board and its report (default: a "
                                                "new temporary folder)"}),
        JSON]),
    (("demo",), cmd_demo, [(("--dir",), {"default": "run/demo", "help": "the demo's folder (default: run/demo)"}),
                           (("--days",), {"type": int, "default": 90, "help": "pump days to run (default: 90)"}),
                           JSON]),
)


# The groups of commands, each with its one line; a command's line is its handler's docstring.
GROUPS = {
    ("program",): "Programme the therapy: continuous, flex, minimum rate, stop, patient boluses.",
    ("rig",): "The rig beside the board: what it measured, pump time, and the faults it injects.",
    ("rig", "fault"): "Faults the rig injects into the board's hardware.",
    ("emu",): "Virtual boards: start one in a folder, stop it.",
    ("scenario",): "Scenario files: refills, programmes, boluses and faults at given pump times, and what must follow.",
}


def command_help(words):
    """The one line `pumpsim --help` gives a command or a group."""
    for command, handler, _ in COMMANDS:
        if command == words:
            return handler.__doc__.strip().splitlines()[0]
    return GROUPS[words]


def build_parser():
    from pumpsim import __version__

    parser = _Parser(prog="pumpsim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version="pumpsim %s" % __version__,
                        help="the version of pumpsim (pyproject.toml), which builds also give the firmware")
    parser.add_argument("--dir", help="folder of a virtual board (its port, rig and key)")
    parser.add_argument("--port", help="serial port of a board: /dev/ttyACM0, a pty, socket://")
    parser.add_argument("--key", help="file holding the board's key in hex")
    parser.add_argument("--rig", help="URL of the rig")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log each request to the pump and the rig, and each reply, on stderr")
    parser.add_argument("--json", action="store_true",
                        help="print JSON, before or after the command; errors too, on stderr")
    parsers = {(): parser}
    groups = {}

    def node(words):
        # A command may be both a command and a group ("alarms" and "alarms ack").
        if words not in parsers:
            parent = words[:-1]
            node(parent)
            if parent not in groups:
                groups[parent] = parsers[parent].add_subparsers(
                    dest="cmd%d" % len(parent), metavar="COMMAND", parser_class=_Parser)
            line = command_help(words)
            parsers[words] = groups[parent].add_parser(words[-1], help=line, description=line)
        return parsers[words]

    for words, handler, options in COMMANDS:
        leaf = node(words)
        for flags, kwargs in options:
            if "--dir" in flags:
                kwargs = dict(kwargs, dest="sub_dir")
            leaf.add_argument(*flags, **kwargs)
        leaf.set_defaults(handler=handler)
    return parser


def _fail(argv, code, message, **fields):
    """A refusal: one line on stderr, JSON when --json was given (wherever it stood)."""
    if "--json" in (sys.argv[1:] if argv is None else argv):
        print(json.dumps({"error": message, "exit": code, **fields}), file=sys.stderr)
    else:
        print("pumpsim: %s" % message, file=sys.stderr)
    return code


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.verbose:
            import logging

            logging.basicConfig(level=logging.WARNING, format="pumpsim: %(message)s")
            for name in ("pumpsim.client", "pumpsim.rig"):
                logging.getLogger(name).setLevel(logging.DEBUG)
        if getattr(args, "handler", None) is None:
            group = " ".join(w for w in (getattr(args, "cmd%d" % i, None) for i in range(3)) if w)
            raise UsageError("%sgive a command (pumpsim %s--help lists them)"
                             % (group + ": " if group else "", group + " " if group else ""))
        if getattr(args, "sub_dir", None):
            args.dir = args.sub_dir
        args.handler(args)
    except UsageError as exc:
        return _fail(argv, 2, str(exc))
    except Refused as exc:
        limit = " (limit: %s)" % exc.limit if exc.limit else ""
        return _fail(argv, 1, "refused by the pump: %s%s" % (exc, limit), refused=str(exc), limit=exc.limit)
    except PumpsimError as exc:
        return _fail(argv, 1, str(exc))
    except KeyboardInterrupt:
        return _fail(argv, 130, "interrupted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
