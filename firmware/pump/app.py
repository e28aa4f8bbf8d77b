# The pump application: boot, then sleep until the next event (a stroke, or input on the line),
# never on a fixed tick: it saves the battery and lets emulated time run as fast as the machine.
import os

from pump import alarms, core, link, sound, therapy
from pump import druglib as lib
from pump.errors import ArgError, AuthError, ConfirmError, LockedError, PumpError, UnknownVerb
from pump.jsonfx import Milli

# After this many failed authentications in a row, programming is locked for a while: a key
# cannot be guessed by trying, and a flood of bad frames cannot wear out the log.
AUTH_FAILURES_TO_LOCK = 5
AUTH_LOCK_MS = 10 * 60000

PROTO = 1
# The longest the REPL may keep the pump from its therapy: then the board resets into it.
MAINTENANCE_MS = 30 * 60000
NO_KEY = ("pumpsim: no key is provisioned (pump.key), so the pump does not run and the REPL is free; "
          "provision one: pumpsim provision --port PORT --key FILE")


class App:
    def __init__(self, hw):
        self.hw = hw
        self.pump = core.Pump(hw.clock, hw.motor, hw.store, hw.stroke_nl, hw.log, hw.battery,
                              (hw.eri_mv, hw.reset_mv, hw.eos_mv))
        self.player = sound.Player(hw.buzzer)
        self.framer = link.Framer()
        self.session = link.Session(hw.key, os.urandom)
        self.events_sent = 0
        self.running = True
        self.test_queue = []
        self.failures_in_a_row = 0
        self.locked_until_ms = 0
        self.reset_cause = hw.reset_cause
        self.maintenance_until_ms = None
        # verb -> (handler, needs authentication)
        self.verbs = {
            "hello": (self.hello, False),
            "status": (self.status, False),
            "refill": (self.refill, True),
            "program": (self.program, True),
            "config": (self.config, True),
            "bolus": (self.bolus, True),
            "log": (self.log, False),
            "alarms": (self.alarms, False),
            "ack": (self.ack, True),
            "alarm-test": (self.alarm_test, True),
            "maintenance": (self.maintenance, True),
            "set-clock": (self.set_clock, True),
        }
        self.programs = {
            therapy.CONTINUOUS: self._continuous,
            therapy.FLEX: self._flex,
            therapy.MINIMUM: self._minimum,
            therapy.STOP: self._stop,
            "patient-bolus": self._patient,
        }

    # -- requests ------------------------------------------------------------------------------

    def hello(self, args):
        return {"proto": PROTO, "fw": self.hw.fw, "micropython": self.hw.micropython, "board": self.hw.board,
                "nonce": self.session.start()}

    def status(self, args=None):
        p = self.pump
        t = p.therapy
        now_ms = p.clock.now_ms()
        persist = getattr(p.clock, "persist", None)
        if persist is not None:
            persist(now_ms)  # the time shown here is one pump time never comes back before
        return {
            "state": p.state,
            "mode": t.mode,
            "reservoir_ul": Milli(p.reservoir_nl),
            "delivered_ul": Milli(p.delivered_nl),
            "reservoir_nl": p.reservoir_nl,
            "delivered_nl": p.delivered_nl,
            "strokes": p.strokes,
            "daily_dose_ug": t.daily_dose_ug(),
            "concentration_ug_per_ml": t.concentration_ug_per_ml,
            "rate_nl_per_day": t.rate_at(now_ms),
            "steps": ["%02d:%02d=%d" % (m // 60, m % 60, d) for m, d in t.steps],
            "week": dict((str(day), ["%02d:%02d=%d" % (m // 60, m % 60, d) for m, d in steps])
                         for day, steps in t.week.items()),
            "boluses": [{"kind": b.kind, "dose_ug": b.dose_ug, "volume_ul": Milli(b.volume_nl),
                         "start_s": b.start_ms // 1000, "end_s": b.end_ms // 1000} for b in t.boluses],
            "bridge_remaining_ul": Milli(t.bridge_remaining_nl),
            "patient_bolus": None if p.boluses.patient is None else {
                "dose_ug": p.boluses.patient[0], "lockout_minutes": p.boluses.patient[1] // 60000,
                "max_per_day": p.boluses.patient[2]},
            "refill_reminder_s": _seconds(p.reminder_ms),
            "projected_low_reservoir_s": _seconds(p.projected_ms(p.low_threshold_nl)),
            "projected_empty_s": _seconds(p.projected_ms(p.empty_threshold_nl)),
            "reminder_lead_days": p.reminder_lead_days,
            "battery_volts": Milli(p.battery_mv),
            "eri_volts": Milli(p.eri_mv),
            "eos_volts": Milli(p.eos_mv),
            "tubing_ul": p.tubing_ul,
            "catheter_ul": p.catheter_ul,
            "discrepancy_limit_permille": p.discrepancy_limit_permille,
            "stroke_nl": p.stroke_nl,
            "low_reservoir_ul": Milli(p.low_threshold_nl),
            "empty_reservoir_ul": Milli(p.empty_threshold_nl),
            "clock_s": now_ms // 1000,
            "clock_ms": now_ms,
            "clock_source": getattr(p.clock, "source", "rtc"),
            "alarms": p.alarms.listing(),
            "boots": p.boots,
            "reset_cause": self.reset_cause,
            "noise_bytes": self.framer.noise_bytes,
            "auth_failures": self.session.failures,
            "programming_locked_s": max(0, self.locked_until_ms - now_ms) // 1000,
            "board": self.hw.board,
            "nvram": getattr(self.hw, "nvram", "flash"),
            "fw": self.hw.fw,
        }

    def refill(self, args):
        volume_ul = core.whole(args, "volume_ul", 1, lib.RESERVOIR_CAPACITY_UL, "reservoir_capacity_ul")
        conc = core.whole(args, "concentration_ug_per_ml")
        withdrawn_ul = None
        if "withdrawn_ul" in args:
            withdrawn_ul = core.whole(args, "withdrawn_ul", 0, lib.RESERVOIR_CAPACITY_UL)
        reminder_days = core.whole(args, "reminder_days", 1, 365) if "reminder_days" in args else None
        result = self.pump.refill(volume_ul, conc, withdrawn_ul, reminder_days)
        status = self.status()
        if "discrepancy_milli_pct" in result:
            status["discrepancy_pct"] = Milli(result.pop("discrepancy_milli_pct"))
        status.update(result)
        return status

    def program(self, args):
        mode = args.get("mode")
        # Checked first: a list or an object is unhashable and would end the main loop.
        handler = self.programs.get(mode) if type(mode) is str else None
        if handler is None:
            raise ArgError("mode must be one of %s" % ", ".join(sorted(self.programs)))
        reply = handler(args) or {}
        status = self.status()
        status.update(reply)
        return status

    def _continuous(self, args):
        dose = core.whole(args, "daily_dose_ug", 1, lib.MAX_DAILY_DOSE_UG, "max_daily_dose_ug")
        self.pump.program_steps(therapy.CONTINUOUS, [(0, dose)])

    def _flex(self, args):
        week = args.get("week", {})
        if type(week) is not dict:
            raise ArgError("week maps a weekday (\"0\"-\"6\") to its steps")
        parsed_week = {}
        for day, steps in week.items():
            if not (type(day) is str and day.isdigit()):
                raise ArgError("weekdays are \"0\" to \"6\", not %r" % (day,))
            parsed_week[int(day)] = self._steps(steps)
        self.pump.program_steps(therapy.FLEX, self._steps(args.get("steps")), parsed_week)

    @staticmethod
    def _steps(steps):
        if type(steps) is not list:
            raise ArgError("flex needs steps: [[minute of the day, µg/day], ...]")
        parsed = []
        for step in steps:
            if type(step) is not list or len(step) != 2 or type(step[0]) is not int:
                raise ArgError("a step is [minute of the day, µg/day]")
            parsed.append((step[0], step[1]))
        return parsed

    @staticmethod
    def _confirmed(args, what):
        if args.get("confirm") is not True:
            raise ConfirmError(core.WITHDRAWAL % what)

    def _minimum(self, args):
        self._confirmed(args, "dropping to the minimum rate")
        self.pump.program_minimum()

    def _stop(self, args):
        self._confirmed(args, "stopping therapy")
        self.pump.program_stop()
        return {"warning": core.STOP_WARNING}

    def _patient(self, args):
        self.pump.boluses.program_patient(
            core.whole(args, "dose_ug", 1, lib.MAX_BOLUS_UG_PER_24H, "max_bolus_ug_per_24h"),
            core.whole(args, "lockout_minutes", 1, 1440),
            core.whole(args, "max_per_day", 1, 96))

    def bolus(self, args):
        if args.get("patient") is True:
            bolus = self.pump.boluses.patient_request()
        elif "prime_ul" in args:
            bolus = self.pump.boluses.prime(core.whole(args, "prime_ul", 1, 5000),
                                          core.whole(args, "minutes", 1, 1440))
        else:
            bolus = self.pump.boluses.clinician(
                core.whole(args, "dose_ug", 1, lib.MAX_BOLUS_UG_PER_24H, "max_bolus_ug_per_24h"),
                core.whole(args, "minutes", 1, 1440))
        status = self.status()
        status["bolus"] = {"kind": bolus.kind, "dose_ug": bolus.dose_ug, "volume_ul": Milli(bolus.volume_nl),
                           "patient_ug": self.pump.boluses.patient_ug(bolus),
                           "start_s": bolus.start_ms // 1000, "end_s": bolus.end_ms // 1000}
        return status

    def config(self, args):
        values = {}
        for name in lib.CONFIG_RANGES:
            if name in args:
                values[name] = core.whole(args, name, 0)
        unknown = [name for name in args if name not in lib.CONFIG_RANGES]
        if unknown or not values:
            raise ArgError("config takes any of %s" % ", ".join(sorted(lib.CONFIG_RANGES)))
        self.pump.configure(values)
        return self.status()

    def log(self, args):
        since = args.get("since", 0)
        if type(since) is not int:
            raise ArgError("since must be a whole number")
        return {"events": self.pump.log.read(since)}

    def alarms(self, args):
        return {"alarms": self.pump.alarms.listing()}

    def ack(self, args):
        code = args.get("code")
        if type(code) is not str or code not in alarms.PRIORITY:
            raise ArgError("unknown alarm code %r" % code)
        self.pump.acknowledge(code)
        return {"alarms": self.pump.alarms.listing()}

    def alarm_test(self, args):
        now_ms = self.pump.clock.now_ms()
        self.test_queue = [alarms.TWO_TONE, alarms.SINGLE]
        self.player.play(self.test_queue.pop(0), now_ms)
        self.pump.note("alarm_test", {})
        return {"patterns": [alarms.TWO_TONE, alarms.SINGLE]}

    def set_clock(self, args):
        unknown = [name for name in args if name != "clock_ms"]
        if unknown:
            raise ArgError("set-clock takes clock_ms only, not %s" % ", ".join(sorted(unknown)))
        new_ms = core.whole(args, "clock_ms", 0, core.CLOCK_MAX_MS, "clock_ms")
        shift_ms = self.pump.set_clock(new_ms)
        # Authenticated, so not locked: a lockout that ended stays ended in the new time.
        self.locked_until_ms = min(self.locked_until_ms, new_ms)
        if self.player.next_ms is not None:
            self.player.next_ms += shift_ms  # a tone playing lasts its length, not the jump's
        return self.status()

    def maintenance(self, args):
        self.maintenance_until_ms = self.pump.clock.now_ms() + MAINTENANCE_MS
        self.pump.note("maintenance", {"repl": True, "minutes": MAINTENANCE_MS // 60000})
        self.running = False
        return {"repl": True, "minutes": MAINTENANCE_MS // 60000, "until_s": self.maintenance_until_ms // 1000}

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, item):
        seq, request = item
        if isinstance(request, PumpError):
            return self.error(seq, request)
        try:
            entry = self.verbs.get(request.verb)
            if entry is None:
                raise UnknownVerb("unknown verb '%s'" % request.verb)
            handler, needs_auth = entry
            if needs_auth:
                self.authenticate(request)
            return link.encode("<", seq, "ok", handler(request.args))
        except PumpError as exc:
            return self.error(seq, exc)

    def authenticate(self, request):
        now_ms = self.pump.clock.now_ms()
        if now_ms < self.locked_until_ms:
            raise LockedError("programming is locked for %d s after %d failed authentications"
                              % ((self.locked_until_ms - now_ms + 999) // 1000, AUTH_FAILURES_TO_LOCK))
        try:
            self.session.check(request)
        except AuthError as exc:
            self.session.failures += 1
            self.failures_in_a_row += 1
            if self.failures_in_a_row == 1:
                self.pump.note("auth_failure", {"verb": request.verb, "code": exc.code})
            if self.failures_in_a_row >= AUTH_FAILURES_TO_LOCK:
                self.locked_until_ms = now_ms + AUTH_LOCK_MS
                self.failures_in_a_row = 0
                self.pump.note("auth_lockout", {"minutes": AUTH_LOCK_MS // 60000})
            raise
        self.failures_in_a_row = 0

    def error(self, seq, exc):
        payload = {"code": exc.code, "reason": str(exc.args[0]) if exc.args else exc.code}
        limit = getattr(exc, "limit", None)
        if limit:
            payload["limit"] = limit
        return link.encode("<", seq, "err", payload)

    def announce(self):
        for code, active, at_ms in self.pump.alarms.pop_events():
            self.events_sent += 1
            self.hw.link.write(link.encode("!", self.events_sent, "alarm", {
                "code": code, "priority": core.al.PRIORITY[code], "active": active,
                "t_s": at_ms // 1000,
            }))

    # -- main loop -----------------------------------------------------------------------------

    def sound(self, now_ms):
        """Advance the pattern that is playing; start the next one that is due."""
        self.player.update(now_ms)
        if self.player.next_ms is not None:
            return
        if self.test_queue:
            self.player.play(self.test_queue.pop(0), now_ms)
            return
        pattern = self.pump.alarms.due_sound(now_ms)
        if pattern:
            self.player.play(pattern, now_ms)

    def next_wake_ms(self):
        # While a pattern plays, an alarm that falls due waits for it to end: waking for it
        # meanwhile would find the buzzer busy, and a board that never sleeps lets no time pass.
        sound_ms = self.player.next_ms
        if sound_ms is None:
            sound_ms = self.pump.alarms.next_sound_ms()
        times = [t for t in (self.pump.next_event_ms(), sound_ms) if t is not None]
        return min(times) if times else None

    def loop(self):
        hw = self.hw
        pump = self.pump
        items = []
        while self.running:
            hw.watchdog.feed()
            now_ms = hw.clock.now_ms()
            pump.run_due(now_ms)
            self.sound(now_ms)
            self.announce()
            due_ms = self.next_wake_ms()
            timeout_ms = -1 if due_ms is None else max(0, due_ms - now_ms)
            if hw.max_sleep_ms and (timeout_ms < 0 or timeout_ms > hw.max_sleep_ms):
                timeout_ms = hw.max_sleep_ms  # wake to feed the watchdog
            if hw.link.wait(timeout_ms):
                self.framer.feed(hw.link.read_available(), items)
                if items:
                    # Strokes that fell due during the wait come first: a reply's counts are
                    # those of its clock_ms, and what was due under the old programme stays due.
                    pump.run_due(hw.clock.now_ms())
                for item in items:
                    hw.link.write(self.handle(item))
                del items[:]
                self.announce()


def _seconds(ms):
    return None if ms is None else ms // 1000


def run(hw):
    """Run the pump until a maintenance request hands the line to the REPL. Nothing else may
    leave the application: an unexpected error is logged and the board resets, so that therapy
    resumes from its records instead of stopping silently in the REPL. A board with no key
    cannot be programmed, nor sent to maintenance: it leaves the line to the REPL at once, so
    that a key can be provisioned, and starts no watchdog."""
    if hw.key is None:
        print(NO_KEY)
        return None
    # Ctrl-C is data from the first moment: a 0x03 on the line during boot must not stop the pump.
    hw.link.start()
    hw.watchdog.start()
    try:
        app = App(hw)
        app.pump.boot(hw.reset_cause, hw.reset_at_ms)
        records = getattr(hw, "records", None)
        if records is not None and (records.formatted or records.moved):
            app.pump.note("nvram", {"medium": records.medium, "formatted": records.formatted,
                                    "moved": records.moved})
        app.loop()
    except Exception as exc:  # anything at all: the pump must not stop here
        hw.fault(exc)  # logs firmware_fault and resets: does not return
        raise
    hw.link.stop()
    # In the REPL after maintenance: a dev board's watchdog keeps running and must be fed, across
    # mpremote's soft resets too (boot.py), until maintenance ends by a reset or its time limit.
    hw.watchdog.keep_fed(hw.start_maintenance(app.maintenance_until_ms))
    return app
