# The rig's logic, free of hardware: what a motor attempt does under each injected fault, how
# the counted edges become strokes, what the buzzer played, the battery DAC's calibration, and
# the rig protocol of docs/protocol.md. The hardware (rig/hw.py) is passed in; tests run this on
# CPython and on the MicroPython unix port with fakes.
import json

STALL_MODES = ("off", "on", "intermittent")
START_BATTERY_MV = 3200
_U32 = 0xFFFFFFFF
_LINE_MAX = 256


class Refused(Exception):
    """A request the rig cannot carry out; its text is the reply's "error"."""


class Motor:
    """Whether each motor attempt turns, by the fault injected: the emulated rigs' rules."""

    def __init__(self):
        self.mode = "off"
        self.fail_next = 0
        self.attempts = 0

    def set(self, mode, fail_next=0):
        self.mode, self.fail_next = mode, fail_next

    def steady(self):
        """True when every attempt from the next on has the same outcome (no stall, or a stall
        that stays)."""
        return self.mode in ("off", "on")

    def outcome(self):
        """Decide the next attempt: True when it turns."""
        self.attempts += 1
        if self.mode == "next":
            self.fail_next -= 1
            if self.fail_next <= 0:
                self.mode, self.fail_next = "off", 0
            return False
        return self.mode == "off" or (self.mode == "intermittent" and self.attempts % 2 == 0)


class Strokes:
    """Rising edges on MOTOR_STEP, as the edge counter read them, made into attempts and strokes.
    The feedback for an attempt is decided before its edge comes (the PIO drives it at the edge);
    edges that came faster than the rig could decide again saw the same feedback (`repeated`)."""

    def __init__(self, motor):
        self.motor = motor
        self.raw = 0  # the counter's last reading (32 bits, wraps)
        self.edges = 0
        self.pulses = 0
        self.repeated = 0
        self.last_pulse_ms = None
        self.last_failed_ms = None
        self.queued = motor.outcome()

    def counted(self, raw, now_ms):
        """The counter now reads raw: account the new edges. Returns the feedback for the next."""
        new = (raw - self.raw) & _U32
        self.raw = raw
        if new:
            self.edges += new
            self.repeated += new - 1
            if self.queued:
                self.pulses += new
                self.last_pulse_ms = now_ms
            else:
                self.last_failed_ms = now_ms
            self.queued = self.motor.outcome()
        return self.queued

    def requeue(self):
        """A new fault: the next attempt is decided again under it."""
        self.motor.attempts -= 1
        self.queued = self.motor.outcome()
        return self.queued


class Clock:
    """Rig time in ms since the rig started, from a wrapping tick counter read often enough."""

    def __init__(self, ticks_ms, ticks_diff):
        self._ticks_ms, self._ticks_diff = ticks_ms, ticks_diff
        self._last = ticks_ms()
        self.ms = 0

    def now_ms(self):
        t = self._ticks_ms()
        self.ms += self._ticks_diff(t, self._last)
        self._last = t
        return self.ms


class Tones:
    """What the buzzer played: sounds made of tone segments less than 100 ms apart, each a single
    tone or two alternating ones (as the emulated rigs list them)."""

    GAP_MS = 100

    def __init__(self):
        self.sounds = []
        self._on = None  # (start_ms, hz)

    def change(self, now_ms, hz):
        if self._on is not None:
            start_ms, on_hz = self._on
            self._segment(start_ms, now_ms, on_hz)
            self._on = None
        if hz > 0:
            self._on = (now_ms, hz)

    def _segment(self, start_ms, end_ms, hz):
        last = self.sounds[-1] if self.sounds else None
        if last is not None and start_ms - last["end_ms"] <= self.GAP_MS:
            last["end_ms"] = end_ms
            if hz not in last["freqs"]:
                last["freqs"].append(hz)
        else:
            self.sounds.append({"t_ms": start_ms, "end_ms": end_ms, "freqs": [hz]})
            del self.sounds[:-64]  # the newest 64 sounds

    def listing(self):
        return [{"t_s": s["t_ms"] // 1000, "t_ms": s["t_ms"], "duration_ms": s["end_ms"] - s["t_ms"],
                 "pattern": "two-tone" if len(s["freqs"]) > 1 else "single", "freqs": s["freqs"]}
                for s in self.sounds]


class ToneMeter:
    """The buzzer's frequency from edges counted over gates of about gate_ms: a frequency counts
    once two gates in a row agree (a gate that straddles a change reads neither tone). A gate is
    as long as it really was: one that came late (the loop was busy with a request) reads the
    edges of its whole span, and neither ends a tone nor makes one up."""

    def __init__(self, tones, gate_ms, round_hz=10):
        self.tones, self.gate_ms, self.round_hz = tones, gate_ms, round_hz
        self.hz = 0
        self._candidate = None  # (hz, start_ms)
        self._last_ms = None

    def gate(self, now_ms, edges):
        span_ms = self.gate_ms if self._last_ms is None else max(1, now_ms - self._last_ms)
        self._last_ms = now_ms
        hz = (edges * 1000 // span_ms + self.round_hz // 2) // self.round_hz * self.round_hz
        if hz == self.hz:
            self._candidate = None
        elif self._candidate is not None and self._candidate[0] == hz:
            self.tones.change(self._candidate[1], hz)
            self.hz, self._candidate = hz, None
        else:
            self._candidate = (hz, now_ms - span_ms)


class BatteryDac:
    """The battery voltage the DUT reads: a DAC (PWM through an RC filter, or an MCP4725) into its
    divider. Calibrated in two points from the DUT's own reading: at duty d1 it read mv1, at d2
    mv2; before that, the DAC's nominal full scale."""

    def __init__(self, write_u16, full_scale_mv):
        self._write = write_u16
        self.points = (0, 0, 65535, full_scale_mv)
        self.mv = None
        self.duty = None

    def calibrate(self, d1, mv1, d2, mv2):
        if not (0 <= d1 < d2 <= 65535) or not (0 <= mv1 < mv2):
            raise Refused("battery calibrate takes D1 MV1 D2 MV2 with 0 <= D1 < D2 <= 65535 and MV1 < MV2")
        self.points = (d1, mv1, d2, mv2)

    def range_mv(self):
        return self.duty_mv(0), self.duty_mv(65535)

    def duty_mv(self, duty):
        d1, mv1, d2, mv2 = self.points
        return mv1 + (duty - d1) * (mv2 - mv1) // (d2 - d1)

    def set_mv(self, mv):
        low, high = self.range_mv()
        if not max(low, 1) <= mv <= high:
            raise Refused("battery %d mV: this rig's DAC makes %d to %d mV as calibrated" % (mv, max(low, 1), high))
        d1, mv1, d2, mv2 = self.points
        self.set_duty(d1 + ((mv - mv1) * (d2 - d1) + (mv2 - mv1) // 2) // (mv2 - mv1))
        self.mv = mv

    def set_duty(self, duty):
        if not 0 <= duty <= 65535:
            raise Refused("battery duty takes 0 to 65535, not %d" % duty)
        self.duty = duty
        self.mv = None
        self._write(duty)


def _int(text, what):
    try:
        return int(text)
    except ValueError:
        raise Refused("%s takes a whole number, not %r" % (what, text))


class Rig:
    """The rig protocol over one line per request. hw: the rig's hardware (rig/hw.py or a fake):
    counter_raw(), feedback(level), power(on), run_pin(level), sleep_ms(ms), battery_u16(duty)."""

    # What this rig can do, by the names tests declare with pumpsim_needs (docs/testing.md).
    CAN = ("reset", "power-cut", "motor-stall", "battery", "tones")
    POWER_OFF_MS = 200
    RESET_MS = 10

    def __init__(self, hw, clock, full_scale_mv, stroke_nl, board="rpi_pico"):
        self.hw, self.clock, self.stroke_nl, self.board = hw, clock, stroke_nl, board
        self.motor = Motor()
        self.strokes = Strokes(self.motor)
        self.tones = Tones()
        self.battery = BatteryDac(hw.battery_u16, full_scale_mv)
        # A fresh lithium cell until a test says otherwise, as the virtual board's battery starts:
        # a DAC left at 0 V would have the DUT at end of service from its first reading.
        self.battery.set_mv(START_BATTERY_MV)
        self.power_cuts = 0
        self.resets = 0
        hw.feedback(1 if self.strokes.queued else 0)
        self.verbs = {
            "hello": self.hello, "measure": self.measure, "time": self.time, "advance": self.advance,
            "clock": self.set_clock, "reset": self.reset, "power-cycle": self.power_cycle,
            "battery": self.set_battery, "stall": self.stall, "tones": self.list_tones,
            "hang": self.hang, "corrupt-flash": self.corrupt_flash, "rtc": self.rtc,
        }

    def poll(self):
        """Account the edges counted since the last poll; drive the feedback for the next."""
        queued = self.strokes.counted(self.hw.counter_raw(), self.clock.now_ms())
        self.hw.feedback(1 if queued else 0)

    def poll_every_ms(self, gate_ms):
        """How often the main loop must poll: every millisecond while each attempt is decided
        anew (intermittent, the next N failing); with a steady motor, once a gate, as the PIO
        counts every edge and keeps driving the same feedback (a request polls first)."""
        motor = self.motor
        steady = motor.steady() and self.strokes.queued == (motor.mode == "off")
        return gate_ms if steady else 1

    def handle(self, line):
        """One request line -> one reply line (JSON)."""
        if len(line) > _LINE_MAX:
            return json.dumps({"error": "request line too long (at most %d bytes)" % _LINE_MAX})
        try:
            text = line.decode() if isinstance(line, (bytes, bytearray)) else line
        except UnicodeError:
            return json.dumps({"error": "a request is ASCII text"})
        verb, _, arg = text.strip().partition(" ")
        handler = self.verbs.get(verb)
        if handler is None:
            return json.dumps({"error": "unknown rig request %r (known: %s)" % (verb, ", ".join(sorted(self.verbs)))})
        self.poll()
        try:
            reply = handler(arg.strip())
        except Refused as exc:
            reply = {"error": str(exc)}
        text = json.dumps(reply)
        delivered_nl = reply.get("delivered_nl")
        if isinstance(delivered_nl, int):  # in µL as well, a decimal written out (no float here)
            text = text[:-1] + ', "delivered_ul": %d.%03d}' % (delivered_nl // 1000, delivered_nl % 1000)
        return text

    # -- requests ----------------------------------------------------------------------------

    def hello(self, arg):
        return {"rig": "rig_pico", "proto": 1, "clock": "realtime", "board": self.board, "can": list(self.CAN)}

    def measure(self, arg):
        self.poll()
        s = self.strokes
        delivered_nl = s.pulses * self.stroke_nl
        return {"pulses": s.pulses, "stroke_nl": self.stroke_nl, "delivered_nl": delivered_nl,
                "clock_ms": self.clock.now_ms(),
                "power_cuts": self.power_cuts, "resets": self.resets, "boots": None,
                "step_edges": s.edges, "repeated_edges": s.repeated,
                "last_pulse_ms": s.last_pulse_ms, "last_failed_ms": s.last_failed_ms}

    def time(self, arg):
        return {"clock_ms": self.clock.now_ms(), "clock": "realtime"}

    def advance(self, arg):
        raise Refused("advance: this rig is hardware beside a real pump; pump time runs in real time "
                      "and can only be waited for (the emu target has a stepped clock)")

    def set_clock(self, arg):
        if arg != "realtime":
            raise Refused("clock %s: the pump's clock is its own crystal; only `clock realtime` holds" % arg)
        return self.time(arg)

    def reset(self, arg):
        self.hw.run_pin(0)
        self.hw.sleep_ms(self.RESET_MS)
        self.hw.run_pin(1)
        self.resets += 1
        return {"reset": "hard", "clock_ms": self.clock.now_ms()}

    def power_cycle(self, arg):
        if arg:
            raise Refused("power-cycle %s: a cut timed to the pump's Nth write needs its FRAM's bus "
                          "watched; this rig cuts VSYS only when asked" % arg)
        self.hw.power(0)
        self.hw.sleep_ms(self.POWER_OFF_MS)
        self.hw.power(1)
        self.power_cuts += 1
        return {"power": "cycled", "clock_ms": self.clock.now_ms()}

    def set_battery(self, arg):
        words = arg.split()
        if words and words[0] == "calibrate":
            if len(words) != 5:
                raise Refused("battery calibrate takes D1 MV1 D2 MV2")
            self.battery.calibrate(*(_int(w, "battery calibrate") for w in words[1:]))
            low, high = self.battery.range_mv()
            return {"calibrated": list(self.battery.points), "range_mv": [low, high]}
        if words and words[0] == "duty":
            if len(words) != 2:
                raise Refused("battery duty takes one duty, 0 to 65535")
            self.battery.set_duty(_int(words[1], "battery duty"))
            return {"duty": self.battery.duty, "battery_mv": self.battery.duty_mv(self.battery.duty)}
        if len(words) > 1:
            raise Refused("battery takes millivolts, `duty N` or `calibrate D1 MV1 D2 MV2`")
        if words:
            self.battery.set_mv(_int(words[0], "battery"))
        return {"battery_mv": self.battery.mv, "duty": self.battery.duty}

    def stall(self, arg):
        mode, _, count = arg.partition(" ")
        if mode == "next":
            if not count.strip().isdigit() or int(count) < 1:
                raise Refused("stall next takes how many of the next motor attempts fail, a whole "
                              "number from 1, not %r" % count.strip())
            count = count.strip()
            self.motor.set("next", int(count))
        elif arg in STALL_MODES:
            self.motor.set(arg)
        else:
            raise Refused("stall takes on, off, intermittent or next N, not %r" % arg)
        self.hw.feedback(1 if self.strokes.requeue() else 0)
        return {"stall": "next", "fail_next": int(count)} if mode == "next" else {"stall": arg}

    def list_tones(self, arg):
        return {"tones": self.tones.listing()}

    def hang(self, arg):
        raise Refused("hang: the pump runs its firmware unchanged on its own chip; nothing beside it "
                      "can stop its main loop (the emu target can)")

    def corrupt_flash(self, arg):
        raise Refused("corrupt-flash: the pump's records are inside its own FRAM and flash, which this "
                      "rig does not reach")

    def rtc(self, arg):
        raise Refused("rtc: the pump's RTC is its own; this rig neither keeps nor clears it")
