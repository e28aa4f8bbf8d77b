"""A virtual board driven side by side with the reference model (hil/model.py).

Each action does what a `pumpsim` command does, through the client or the rig, does the same to
the model, and writes the command line into a transcript; `check()` then compares what the rig
and the pump report with what the model expects. A divergence carries the transcript: replayed
with the `pumpsim` CLI on a fresh virtual board, it reproduces the case.
"""

import secrets
import time
import shutil
import tempfile
from pathlib import Path

from pumpsim import frames
from pumpsim.client import PumpClient
from pumpsim.errors import Refused
from pumpsim.hil.model import PumpModel, Refusal
from pumpsim.hil.rig import Rig
from pumpsim.targets.emu.flashfs import IMAGE as FLASH_IMAGE

FLAG = {"low_reservoir_ul": "--low-reservoir-ml", "empty_reservoir_ul": "--empty-reservoir-ml",
        "tubing_ul": "--tubing-ul", "catheter_ul": "--catheter-ul",
        "discrepancy_limit_permille": "--discrepancy-limit-pct", "reminder_lead_days": "--reminder-lead-days"}
THERAPY_FIELDS = ("state", "mode", "reservoir_nl", "delivered_nl", "daily_dose_ug", "concentration_ug_per_ml",
                  "steps", "boluses", "patient_bolus", "low_reservoir_ul", "empty_reservoir_ul",
                  "tubing_ul", "catheter_ul", "refill_reminder_s")
DAY_S = 86_400
START_MS = 30 * 86_400_000
_MARKER_SEQ = 4_294_967_295  # the fuzzer draws seqs below it
# Kept clear of the thresholds (2.85, 2.75, 2.70 V) by more than weeks of drain: fresh, good, ERI,
# low-battery reset, EOS.
BATTERY_LEVELS_MV = (3200, 2950, 2800, 2740, 2600)


class Divergence(AssertionError):
    """The board did not do what the model expects."""

    def __init__(self, what, expected, seen, transcript):
        self.what, self.expected, self.seen = what, expected, seen
        self.transcript = list(transcript)
        super().__init__("%s: expected %s, seen %s\nreproducer (pumpsim commands):\n%s"
                         % (what, expected, seen, "\n".join(self.transcript)))


def ml(ul):
    return ("%.3f" % (ul / 1000)).rstrip("0").rstrip(".")


def duration(ms):
    return "%ds" % (ms // 1000) if ms % 1000 == 0 else "%dms" % ms


class Board:
    """A virtual board booted from a flash image, with its client and rig."""

    def __init__(self, flash, key, micropython=None):
        from pumpsim.targets.emu import supervisor

        self._supervisor = supervisor
        self.dir = Path(tempfile.mkdtemp(prefix="pumpsim-model-"))
        shutil.copy(flash, self.dir / FLASH_IMAGE)
        (self.dir / "host.key").write_text(key.hex() + "\n")
        info = supervisor.start(self.dir, micropython=micropython)
        self.port, self.key = info["port"], key
        self.client = PumpClient.open(info["port"], key=key)
        self.rig = Rig.open(info["rig"])

    def close(self):
        for thing in (self.client, self.rig):
            try:
                thing.close()
            except Exception:  # noqa: BLE001 - a port that is already gone
                pass
        self._supervisor.stop(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


class Driver:
    def __init__(self, board):
        self.board, self.client, self.rig = board, board.client, board.rig
        measure = self.rig.measure()
        self.stroke_nl = measure["stroke_nl"]
        status = self.client.status()
        self.transcript = ["pumpsim emu start --dir BOARD"]
        # A month of pump time first: a clinic's pump is not new.
        self.say("rig advance %s" % duration(START_MS))
        self.rig.advance(START_MS)
        measure = self.rig.measure()
        self.contract = probe_contract(self.client, self.say)
        self.model = PumpModel(self.stroke_nl, (int(status["eri_volts"] * 1000), 2750,
                                                int(status["eos_volts"] * 1000)), contract=self.contract)
        self.model.t_ms = measure["clock_ms"]
        self.model.boot_ms = self._last_boot_ms() or measure["clock_ms"]
        # The probes' requests, done to the model too.
        self.model.program("stop", confirm=True)
        self.model.refill(1000, 2000)
        self.model.refill(1000, 2000, withdrawn_ul=1200)
        self.battery_level_mv = 3200
        self.fill_nl = 1_000_000
        self.rig_at_fill_nl = measure["delivered_nl"]
        self.steps = 0
        self.frames = 0
        self.divergence = None
        self.check()

    # -- recording ---------------------------------------------------------------------------

    def say(self, line):
        self.transcript.append("pumpsim --dir BOARD " + line)

    def _request(self, line, call, model_call):
        """Send a request and do it to the model: both refuse it, or neither."""
        self.say(line)
        self.steps += 1
        self.client.nonce = None  # each command a session of its own, as the CLI does
        try:
            expected = model_call()
        except Refusal as refusal:
            expected = refusal
        try:
            reply = call()
        except Refused as refused:
            if not isinstance(expected, Refusal):
                self.diverge(line, "accepted", "refused %s %s" % (refused.code, refused.reason))
            if refused.code != expected.code or (expected.limit and refused.limit != expected.limit):
                self.diverge(line, "refused %s" % expected, "refused %s (%s)" % (refused.code, refused.limit))
            return None
        if isinstance(expected, Refusal):
            self.diverge(line, "refused %s" % expected, "accepted")
        self.model.records_since_change = 0
        return reply, expected

    def diverge(self, what, expected, seen):
        self.divergence = Divergence(what, expected, seen, self.transcript)
        raise self.divergence

    # -- therapy -----------------------------------------------------------------------------

    def refill(self, volume_ul, concentration, withdrawn_ul=None, reminder_days=None):
        line = "refill --volume-ml %s --concentration-ug-per-ml %d" % (ml(volume_ul), concentration)
        if withdrawn_ul is not None:
            line += " --withdrawn-ml %s" % ml(withdrawn_ul)
        if reminder_days is not None:
            line += " --reminder-days %d" % reminder_days
        done = self._request(line, lambda: self.client.refill(volume_ul, concentration, withdrawn_ul, reminder_days),
                             lambda: self.model.refill(volume_ul, concentration, withdrawn_ul, reminder_days))
        if done:
            reply, expected = done
            self.fill_nl = volume_ul * 1000
            self.rig_at_fill_nl = self.rig.measure()["delivered_nl"]
            if "flagged" in expected and reply.get("flagged") != expected["flagged"] and \
                    not self._near_the_limit(expected):
                self.diverge(line, "flagged %s (%.2f %%)" % (expected["flagged"], expected["discrepancy_pct"]),
                             "flagged %s (%s %%)" % (reply.get("flagged"), reply.get("discrepancy_pct")))
        self.check()

    def _near_the_limit(self, expected):
        """Within a stroke of the discrepancy limit the pump's own count decides: no verdict."""
        stroke_pct = self.stroke_nl * 100 / max(1, expected["calculated_nl"])
        limit_pct = self.model.settings["discrepancy_limit_permille"] / 10
        return abs(abs(expected["discrepancy_pct"]) - limit_pct) <= stroke_pct

    def program(self, mode, daily_dose_ug=None, steps=None, confirm=True):
        args = {"mode": mode}
        line = "program %s" % mode
        if mode == "continuous":
            args["daily_dose_ug"] = daily_dose_ug
            line += " --daily-dose-ug %d" % daily_dose_ug
        elif mode == "flex":
            args["steps"] = [[m, d] for m, d in steps]
            line += "".join(" --step %02d:%02d=%d" % (m // 60, m % 60, d) for m, d in steps)
        elif confirm:
            args["confirm"] = True
            line += " --confirm"
        self._request(line, lambda: self.client.request("program", args),
                      lambda: self.model.program(mode, daily_dose_ug, steps, confirm))
        self.check()

    def program_patient(self, dose_ug, lockout_minutes, max_per_day):
        self._request("program patient-bolus --dose-ug %d --lockout-minutes %d --max-per-day %d"
                      % (dose_ug, lockout_minutes, max_per_day),
                      lambda: self.client.program_patient_bolus(dose_ug, lockout_minutes, max_per_day),
                      lambda: self.model.program_patient(dose_ug, lockout_minutes, max_per_day))
        self.check()

    def bolus(self, dose_ug, minutes):
        self._request("bolus --dose-ug %d --minutes %d" % (dose_ug, minutes),
                      lambda: self.client.bolus(dose_ug, minutes), lambda: self.model.bolus(dose_ug, minutes))
        self.check()

    def bolus_patient(self):
        self._request("bolus --patient", self.client.bolus_patient, self.model.bolus_patient)
        self.check()

    def bolus_prime(self, volume_ul, minutes):
        self._request("bolus --prime-ul %d --minutes %d" % (volume_ul, minutes),
                      lambda: self.client.bolus_prime(volume_ul, minutes),
                      lambda: self.model.bolus_prime(volume_ul, minutes))
        self.check()

    def config(self, **values):
        words = []
        for name, value in values.items():
            if name.endswith("reservoir_ul"):
                words.append("%s %s" % (FLAG[name], ml(value)))
            elif name == "discrepancy_limit_permille":
                words.append("%s %s" % (FLAG[name], ("%.1f" % (value / 10)).rstrip("0").rstrip(".")))
            else:
                words.append("%s %d" % (FLAG[name], value))
        self._request("config " + " ".join(words), lambda: self.client.config(**values),
                      lambda: self.model.config(**values))
        self.check()

    def ack(self, code):
        self._request("alarms ack %s" % code, lambda: self.client.ack(code), lambda: self.model.ack(code))
        self.check()

    def wrong_key(self, daily_dose_ug):
        """A therapy change signed with another key: refused, and nothing changes."""
        self.transcript.append("pumpsim --port PORT --key OTHER.key program continuous --daily-dose-ug %d"
                               % daily_dose_ug)
        self.steps += 1
        before = self.client.status()
        self.client.nonce = None
        key, self.client.key = self.client.key, secrets.token_bytes(32)
        try:
            self.client.program_continuous(daily_dose_ug)
            code = "accepted"
        except Refused as refused:
            code = refused.code
        finally:
            self.client.key = key
        expected = self.model.wrong_key()
        if code != expected:
            self.diverge("a request signed with another key", expected, code)
        after = self.client.status()
        changed = {k: (before.get(k), after.get(k)) for k in THERAPY_FIELDS if before.get(k) != after.get(k)}
        if changed:
            self.diverge("a request signed with another key", "nothing changed", changed)
        self.check()

    # -- the rig -------------------------------------------------------------------------------

    def advance(self, ms):
        """Pump time moves on; never so far that the battery drains across a threshold unseen."""
        margin = self.model.battery_margin_ms()
        if margin is not None and margin < ms:
            if margin < 3_600_000:
                self.battery(self.battery_level_mv)  # a fresh battery of the same level
                margin = self.model.battery_margin_ms()
            ms = min(ms, margin) if margin else ms
        self.say("rig advance %s" % duration(ms))
        self.steps += 1
        target = self.model.t_ms + ms
        self.rig.advance(ms)
        self.model.advance(target)
        self.check()

    def power_cut(self):
        self.say("rig power-cycle")
        self.steps += 1
        self.rig.power_cycle()
        self.model.power_cut()
        self.check()

    def power_cut_mid_write(self, at_write, step_ms=300_000, most_ms=7 * 86_400_000):
        """Arm a cut at the at_write-th write and let time run until the power went."""
        self.say("rig power-cycle --at-write %d" % at_write)
        self.steps += 1
        cuts = self.rig.measure()["power_cuts"]
        self.rig.power_cycle(at_write)
        waited = 0
        while True:
            if waited >= most_ms:
                self.diverge("a power cut armed at write %d" % at_write, "a write within %s" % duration(most_ms),
                             "none")
            self.say("rig advance %s" % duration(step_ms))
            self.rig.advance(step_ms)
            waited += step_ms
            measure = self.rig.measure()
            if measure["power_cuts"] != cuts:
                # When the power went is the moment the pump's log says it booted again.
                self.model.advance(self._last_boot_ms())
                self.model.power_cut(torn=True)
                self.model.advance(measure["clock_ms"])
                break
            self.model.advance(measure["clock_ms"])
        self.check()

    def _last_boot_ms(self):
        boots = [e for e in self.client.log() if e["event"] == "boot"]
        return boots[-1]["t_ms"] if boots else None

    def stall(self, mode):
        self.say("rig fault motor-stall %s" % mode)
        self.steps += 1
        self.rig.stall(mode)
        self.model.stall = mode
        self.check()

    def battery(self, millivolts):
        self.say("rig battery --volts %.3f" % (millivolts / 1000))
        self.steps += 1
        self.rig.battery(millivolts)
        self.model.set_battery(millivolts)
        self.battery_level_mv = millivolts
        self.check()

    def corrupt_flash(self, target):
        """Flip bits in the records or the log, then cut the power: the boot must find it."""
        m = self.model
        if target == "state" and not m.known_reservoir:
            # After a memory loss the older copy may be bad too: that is the "both" case.
            target = "log"
        self.say("rig corrupt-flash --target %s" % target)
        self.say("rig power-cycle")
        self.steps += 1
        self.rig.corrupt_flash(target)
        self.rig.power_cycle()
        self.model.power_cut(records={"state": "one-bad", "both": "lost", "log": "kept"}[target])
        if target == "both":
            self.fill_nl = None
        self.check()

    def fuzz(self, count, rng):
        """Fuzzed and mutated frames at the running board: errors answered, nothing changed."""
        import serial

        from pumpsim.hil.fuzz import fuzzed_line

        self.transcript.append("# %d fuzzed frames (pumpsim.hil.fuzz) on the pump's port" % count)
        before = self.client.status()
        boots = self.rig.measure()["boots"]
        line = serial.serial_for_url(self.board.port, timeout=0.01)
        replies, sent = b"", 0
        try:
            while sent < count:
                batch = b"".join(fuzzed_line(rng) for _ in range(min(50, count - sent)))
                sent += min(50, count - sent)
                line.write(batch)
                replies += line.read(1 << 20)
            # A status request of a seq the fuzzer never sends marks the end: every reply to
            # the fuzz comes before its own, and none is left for the client to take as its answer.
            marker = b"<%d ok " % _MARKER_SEQ
            line.write(frames.request(_MARKER_SEQ, "status", {}))
            deadline = time.monotonic() + 30
            while marker not in replies and time.monotonic() < deadline:
                replies += line.read(1 << 20)
        finally:
            line.close()
        self.client._port.reset_input_buffer()
        self.frames += count
        answers = [r for r in replies.split(b"\n") if r.startswith(b"<") and b"<%d " % _MARKER_SEQ not in r]
        if len(answers) < count * 0.9 or any(b" err " not in a and b" ok " not in a for a in answers):
            self.diverge("fuzzed frames", "an answer to each", "%d answers to %d" % (len(answers), count))
        if [a for a in answers if b" ok " in a and b'"state"' not in a]:
            self.diverge("fuzzed frames", "only status answered ok", "another verb answered ok")
        if self.rig.measure()["boots"] != boots:
            self.diverge("fuzzed frames", "no reset", "the board reset")
        after = self.client.status()
        changed = {k: (before.get(k), after.get(k)) for k in THERAPY_FIELDS if before.get(k) != after.get(k)}
        if changed:
            self.diverge("fuzzed frames", "nothing changed", changed)
        # Random MACs failed authentication: programming is locked for up to 10 minutes. Wait it
        # out, then one good request ends the run of failures.
        self.model.locked_until_ms = self.model.t_ms + 10 * 60_000
        self.advance(10 * 60_000 + 1000)
        self.model.locked_until_ms, self.model.auth_in_a_row = 0, 0
        self.config(tubing_ul=self.model.settings["tubing_ul"])

    # -- the invariants -----------------------------------------------------------------------

    def check(self):
        measure = self.rig.measure()
        status = self.client.status()
        m, s = self.model, self.stroke_nl
        if measure["clock_ms"] != m.t_ms:
            self.diverge("pump time", m.t_ms, measure["clock_ms"])
        m.follow_retry_phase(measure.get("last_failed_ms"))
        seen = {a["code"] for a in status["alarms"]}
        m.learn(seen)
        off = measure["delivered_nl"] - m.delivered_nl
        if abs(off) > s:
            self.diverge("rig volume", "%d nL (±%d)" % (m.delivered_nl, s), "%d nL" % measure["delivered_nl"])
        # Strokes are discrete: follow the rig's phase, owing what it has not delivered yet.
        m.delivered_nl += off
        m.owed -= off
        m.reservoir_nl -= off
        if self.fill_nl is not None and m.known_reservoir:
            expected = self.fill_nl - (measure["delivered_nl"] - self.rig_at_fill_nl)
            if abs(status["reservoir_nl"] - expected) > s:
                self.diverge("the pump's reservoir", "%d nL (fill - rig, ±%d)" % (expected, s),
                             "%d nL" % status["reservoir_nl"])
        dont_care = m.dont_care
        if seen - dont_care != m.expected_codes() - dont_care:
            self.diverge("alarms", sorted(m.expected_codes()), sorted(seen))
        if status["state"] != m.state:
            self.diverge("state", m.state, status["state"])
        self._check_reminder(status)

    def _check_reminder(self, status):
        """The reminder and projections within 0.1 day (docs: the pump's own count may differ
        by a stroke); the pump's date is then the one its alarm must keep."""
        m = self.model
        if "projected_low_reservoir_s" not in status or m.reminder_ms is None:
            return
        seen = status["refill_reminder_s"]
        if seen is None or abs(seen - m.reminder_ms / 1000) > DAY_S / 10:
            self.diverge("refill reminder", m.reminder_ms // 1000, seen)
        if "REFILL_REMINDER" not in m.alarms and abs(seen * 1000 - m.reminder_ms) >= 1000:
            m.reminder_ms = seen * 1000
        for key, threshold in (("projected_low_reservoir_s", "low_reservoir_ul"),
                               ("projected_empty_s", "empty_reservoir_ul")):
            want = m.projection_ms(m.settings[threshold])
            got = status[key]
            if want is None or want <= m.t_ms:
                if (want is None) != (got is None) and want is None:
                    self.diverge(key, None, got)
                continue
            if got is None or abs(got - want / 1000) > DAY_S / 10:
                self.diverge(key, want // 1000, got)


def probe_contract(client, say):
    """The hazard fixes this board does (hil/model.py, CONTRACT), from requests any programmer
    could send to a new pump: stop it, try a 40 % discrepancy limit, fill 1 mL twice."""
    found = set()
    status = client.status()
    if status.get("catheter_ul", 0) is None:
        found.add("catheter_unset")
    if "projected_low_reservoir_s" in status:
        found.add("projections")
    say("program stop")
    try:
        client.request("program", {"mode": "stop"})
    except Refused as refused:
        if refused.code != "E_CONFIRM":
            raise
        found.add("confirm")
        say("program stop --confirm")
        client.request("program", {"mode": "stop", "confirm": True})
    if "THERAPY_STOPPED" in {a["code"] for a in client.status()["alarms"]}:
        found.add("therapy_alarms")
    say("config --discrepancy-limit-pct 40")
    try:
        client.config(discrepancy_limit_permille=400)
        say("config --discrepancy-limit-pct 14.5")
        client.config(discrepancy_limit_permille=145)
    except Refused:
        found.add("config_ranges")
    say("refill --volume-ml 1 --concentration-ug-per-ml 2000")
    client.refill(1000, 2000)
    say("refill --volume-ml 1 --concentration-ug-per-ml 2000 --withdrawn-ml 1.2")
    if client.refill(1000, 2000, withdrawn_ul=1200)["flagged"]:
        found.add("both_ways")
    return found


def make_image(directory, micropython=None):
    """Deploy the firmware once into a board's flash; boards then start from copies of its image."""
    from pumpsim import deploy
    from pumpsim.targets.emu import supervisor
    from pumpsim.targets.emu.flashfs import FlashFiles

    directory = Path(directory)
    info = supervisor.start(directory, micropython=micropython)
    try:
        key = deploy.new_key()
        deploy.provision_key(info["port"], key)
        deploy.deploy(info["port"], "emu", build_dir=deploy.build("emu", out_dir=directory / "build"))
    finally:
        supervisor.stop(directory)
    FlashFiles(directory, micropython).remove("data")
    return directory / FLASH_IMAGE, key
