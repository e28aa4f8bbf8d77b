# The pump: therapy, reservoir accounting, alarms and state, persisted ahead of every stroke.
import struct

from pump import alarms as al
from pump import fsm
from pump.errors import ArgError, LimitError
from pump.therapy import CONTINUOUS, NONE, Therapy

try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    def const(x):
        return x

_MODES = (NONE, CONTINUOUS)
# strokes, reservoir_nl, delivered_nl, mode, daily_dose_ug, concentration_ug_per_ml, anchor_ms,
# strokes_since_anchor, low_threshold_nl, empty_threshold_nl, low_since_ms, empty_since_ms,
# boots, clock_ms
_RECORD = "<14q"

LOW_RESERVOIR_DEFAULT_NL = const(2000000)
EMPTY_RESERVOIR_DEFAULT_NL = const(500000)
RESERVOIR_CAPACITY_NL = const(40000000)
MAX_DAILY_DOSE_UG = const(1500)
MAX_CONCENTRATION_UG_PER_ML = const(2000)


def positive_int(args, name, limit=None, limit_name=None):
    value = args.get(name)
    if type(value) is not int:
        raise ArgError("%s must be a whole number" % name)
    if value <= 0:
        raise ArgError("%s must be above 0, not %d" % (name, value))
    if limit is not None and value > limit:
        raise LimitError(limit_name, "%s %d is above the limit of %d" % (name, value, limit))
    return value


class Pump:
    def __init__(self, clock, motor, store, stroke_nl):
        self.clock = clock
        self.motor = motor
        self.store = store
        self.stroke_nl = stroke_nl
        self.therapy = Therapy(stroke_nl)
        self.alarms = al.Alarms()
        self.machine = fsm.Machine(self)
        self.strokes = 0
        self.reservoir_nl = 0
        self.delivered_nl = 0
        self.low_threshold_nl = LOW_RESERVOIR_DEFAULT_NL
        self.empty_threshold_nl = EMPTY_RESERVOIR_DEFAULT_NL
        self.boots = 0
        self._record = bytearray(struct.calcsize(_RECORD))

    # -- state ---------------------------------------------------------------------------------

    @property
    def state(self):
        return self.machine.state

    def can_infuse(self):
        return self.therapy.programmed() and not self.alarms.critical()

    def settle(self):
        """Bring the state in line with the alarms and the programme."""
        if self.alarms.critical():
            if self.state != fsm.ALARM:
                self.machine.fire("empty")
        elif self.state == fsm.ALARM:
            self.machine.fire("cleared")
        if self.state == fsm.STOPPED and self.machine.allowed("resume"):
            self.machine.fire("resume")
        elif self.state == fsm.INFUSING and not self.therapy.programmed():
            self.machine.fire("stop")

    def check_reservoir(self, now_ms):
        self.alarms.set(al.LOW_RESERVOIR, self.reservoir_nl <= self.low_threshold_nl, now_ms)
        self.alarms.set(al.EMPTY_RESERVOIR, self.reservoir_nl <= self.empty_threshold_nl, now_ms)

    # -- persistence ---------------------------------------------------------------------------

    def _since(self, code):
        return self.alarms.active.get(code, -1)

    def save(self, strokes=None, reservoir_nl=None, delivered_nl=None, strokes_since_anchor=None):
        t = self.therapy
        struct.pack_into(
            _RECORD, self._record, 0,
            self.strokes if strokes is None else strokes,
            self.reservoir_nl if reservoir_nl is None else reservoir_nl,
            self.delivered_nl if delivered_nl is None else delivered_nl,
            _MODES.index(t.mode), t.daily_dose_ug, t.concentration_ug_per_ml, t.anchor_ms,
            t.strokes_since_anchor if strokes_since_anchor is None else strokes_since_anchor,
            self.low_threshold_nl, self.empty_threshold_nl,
            self._since(al.LOW_RESERVOIR), self._since(al.EMPTY_RESERVOIR),
            self.boots, self.clock.now_ms(),
        )
        self.store.save(self._record)

    def boot(self):
        """Power-up: restore what was saved and resume the programmed therapy by itself."""
        now_ms = self.clock.now_ms()
        payload = self.store.load()
        if payload is not None and len(payload) == len(self._record):
            (self.strokes, self.reservoir_nl, self.delivered_nl, mode, t_dose, t_conc, t_anchor,
             t_since, self.low_threshold_nl, self.empty_threshold_nl, low_since, empty_since,
             self.boots, _) = struct.unpack(_RECORD, payload)
            t = self.therapy
            t.mode, t.daily_dose_ug, t.concentration_ug_per_ml = _MODES[mode], t_dose, t_conc
            t.anchor_ms, t.strokes_since_anchor = t_anchor, t_since
            if low_since >= 0:
                self.alarms.restore(al.LOW_RESERVOIR, low_since)
            if empty_since >= 0:
                self.alarms.restore(al.EMPTY_RESERVOIR, empty_since)
            t.resume_after_outage(now_ms)
        self.boots += 1
        self.machine.fire("booted")
        self.check_reservoir(now_ms)
        self.settle()
        self.save()

    # -- strokes -------------------------------------------------------------------------------

    def next_event_ms(self):
        if self.state != fsm.INFUSING:
            return None
        return self.therapy.next_stroke_ms()

    def run_due(self, now_ms):
        """Make every stroke due by now_ms; returns how many."""
        made = 0
        while self.state == fsm.INFUSING:
            due_ms = self.therapy.next_stroke_ms()
            if due_ms is None or due_ms > now_ms:
                break
            self.stroke(due_ms)
            made += 1
        return made

    def stroke(self, at_ms):
        stroke_nl = self.stroke_nl
        # Written ahead: a power cut after this write and before the pulse counts one stroke
        # too many, never one too few, and the reservoir estimate errs on the safe side.
        self.save(self.strokes + 1, self.reservoir_nl - stroke_nl, self.delivered_nl + stroke_nl,
                  self.therapy.strokes_since_anchor + 1)
        self.motor.stroke()
        self.strokes += 1
        self.reservoir_nl -= stroke_nl
        self.delivered_nl += stroke_nl
        self.therapy.stroked()
        self.check_reservoir(at_ms)
        self.settle()

    # -- commands (validated: a refused command changes nothing) -------------------------------

    def refill(self, volume_ul, concentration_ug_per_ml):
        now_ms = self.clock.now_ms()
        self.machine.fire("refill")
        self.reservoir_nl = volume_ul * 1000
        self.therapy.set_concentration(concentration_ug_per_ml, now_ms)
        self.check_reservoir(now_ms)
        self.settle()
        self.save()

    def program_continuous(self, daily_dose_ug):
        now_ms = self.clock.now_ms()
        self.machine.fire("program")
        self.therapy.set_continuous(daily_dose_ug, now_ms)
        self.settle()
        self.save()

    def configure(self, low_threshold_nl=None, empty_threshold_nl=None):
        if low_threshold_nl is not None:
            self.low_threshold_nl = low_threshold_nl
        if empty_threshold_nl is not None:
            self.empty_threshold_nl = empty_threshold_nl
        self.check_reservoir(self.clock.now_ms())
        self.settle()
        self.save()
