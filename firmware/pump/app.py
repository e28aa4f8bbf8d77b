# The pump application: boot, then sleep until the next event (a stroke, or input on the line),
# never on a fixed tick: it saves the battery and lets emulated time run as fast as the machine.
import os

from pump import core, link
from pump.errors import ArgError, AuthError, PumpError, UnknownVerb
from pump.jsonfx import Milli

FW = "0.1.0"
PROTO = 1


class App:
    def __init__(self, hw):
        self.hw = hw
        self.pump = core.Pump(hw.clock, hw.motor, hw.store, hw.stroke_nl)
        self.framer = link.Framer()
        self.session = link.Session(hw.key, os.urandom)
        self.events_sent = 0
        self.running = True
        self.reset_cause = hw.reset_cause
        # verb -> (handler, needs authentication)
        self.verbs = {
            "hello": (self.hello, False),
            "status": (self.status, False),
            "refill": (self.refill, True),
            "program": (self.program, True),
            "config": (self.config, True),
            "maintenance": (self.maintenance, True),
        }

    # -- requests ------------------------------------------------------------------------------

    def hello(self, args):
        return {"proto": PROTO, "fw": FW, "board": self.hw.board, "nonce": self.session.start()}

    def status(self, args=None):
        p = self.pump
        t = p.therapy
        now_ms = p.clock.now_ms()
        return {
            "state": p.state,
            "mode": t.mode,
            "reservoir_ul": Milli(p.reservoir_nl),
            "delivered_ul": Milli(p.delivered_nl),
            "reservoir_nl": p.reservoir_nl,
            "delivered_nl": p.delivered_nl,
            "strokes": p.strokes,
            "daily_dose_ug": t.daily_dose_ug,
            "concentration_ug_per_ml": t.concentration_ug_per_ml,
            "rate_nl_per_day": t.rate_nl_per_day(),
            "stroke_nl": p.stroke_nl,
            "low_reservoir_ul": Milli(p.low_threshold_nl),
            "empty_reservoir_ul": Milli(p.empty_threshold_nl),
            "clock_s": now_ms // 1000,
            "clock_ms": now_ms,
            "alarms": p.alarms.listing(),
            "boots": p.boots,
            "reset_cause": self.reset_cause,
            "noise_bytes": self.framer.noise_bytes,
            "auth_failures": self.session.failures,
            "board": self.hw.board,
            "fw": FW,
        }

    def refill(self, args):
        volume_ul = core.positive_int(args, "volume_ul", core.RESERVOIR_CAPACITY_NL // 1000,
                                      "reservoir_capacity_ul")
        concentration = core.positive_int(args, "concentration_ug_per_ml",
                                          core.MAX_CONCENTRATION_UG_PER_ML,
                                          "max_concentration_ug_per_ml")
        self.pump.refill(volume_ul, concentration)
        return self.status()

    def program(self, args):
        if args.get("mode") != "continuous":
            raise ArgError("mode must be 'continuous'")
        dose = core.positive_int(args, "daily_dose_ug", core.MAX_DAILY_DOSE_UG, "max_daily_dose_ug")
        self.pump.program_continuous(dose)
        return self.status()

    def config(self, args):
        low = args.get("low_reservoir_ul")
        empty = args.get("empty_reservoir_ul")
        if low is None and empty is None:
            raise ArgError("config needs low_reservoir_ul or empty_reservoir_ul")
        cap = core.RESERVOIR_CAPACITY_NL // 1000
        if low is not None:
            low = core.positive_int(args, "low_reservoir_ul", cap, "reservoir_capacity_ul")
        if empty is not None:
            empty = core.positive_int(args, "empty_reservoir_ul", cap, "reservoir_capacity_ul")
        lo = low if low is not None else self.pump.low_threshold_nl // 1000
        em = empty if empty is not None else self.pump.empty_threshold_nl // 1000
        if em >= lo:
            raise ArgError("empty_reservoir_ul (%d) must be below low_reservoir_ul (%d)" % (em, lo))
        self.pump.configure(lo * 1000, em * 1000)
        return self.status()

    def maintenance(self, args):
        self.running = False
        return {"repl": True}

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
                try:
                    self.session.check(request)
                except AuthError:
                    self.session.failures += 1
                    raise
            return link.encode("<", seq, "ok", handler(request.args))
        except PumpError as exc:
            return self.error(seq, exc)

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

    def loop(self):
        hw = self.hw
        pump = self.pump
        items = []
        while self.running:
            now_ms = hw.clock.now_ms()
            pump.run_due(now_ms)
            self.announce()
            due_ms = pump.next_event_ms()
            timeout_ms = -1 if due_ms is None else max(0, due_ms - now_ms)
            if hw.link.wait(timeout_ms):
                self.framer.feed(hw.link.read_available(), items)
                for item in items:
                    hw.link.write(self.handle(item))
                del items[:]
                self.announce()


def run(hw):
    """Run the pump until a maintenance request hands the line to the REPL."""
    app = App(hw)
    app.pump.boot()
    hw.link.start()
    try:
        app.loop()
    finally:
        hw.link.stop()
    return app
