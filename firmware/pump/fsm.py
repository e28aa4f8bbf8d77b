# The pump's state machine, declared as data: (trigger, source, destination, guard, pulses).
# A trigger that is not in the table for the current state is refused with TransitionError.
# Order of a transition: guard(ctx) is asked first; only if it allows does the state change.
# The motor is reached only through a row that pulses: Machine.pulse is the one path to a stroke,
# so no state the table does not name can ever move drug.
from pump.errors import TransitionError

BOOT = "boot"
STOPPED = "stopped"
INFUSING = "infusing"
ALARM = "alarm"  # a critical alarm: the pump never pumps here, but for a stalled motor's retry

STATES = (BOOT, STOPPED, INFUSING, ALARM)

BOOTED = "booted"
RESUME = "resume"
PROGRAM = "program"
STOP = "stop"
BOLUS = "bolus"
REFILL = "refill"
CRITICAL = "critical"
CLEARED = "cleared"
STROKE = "stroke"
STALL_RETRY = "stall_retry"


def _can_infuse(ctx):
    return ctx.can_infuse()


def _only_stalled(ctx):
    return ctx.can_infuse_but_stalled()


PULSE = True

TRANSITIONS = (
    (BOOTED, BOOT, STOPPED, None, False),
    (RESUME, STOPPED, INFUSING, _can_infuse, False),
    (PROGRAM, STOPPED, STOPPED, None, False),
    (PROGRAM, INFUSING, INFUSING, None, False),
    (PROGRAM, ALARM, ALARM, None, False),
    (STOP, STOPPED, STOPPED, None, False),
    (STOP, INFUSING, STOPPED, None, False),
    (STOP, ALARM, ALARM, None, False),
    (BOLUS, STOPPED, STOPPED, None, False),
    (BOLUS, INFUSING, INFUSING, None, False),
    (REFILL, STOPPED, STOPPED, None, False),
    (REFILL, INFUSING, INFUSING, None, False),
    (REFILL, ALARM, STOPPED, None, False),
    (CRITICAL, STOPPED, ALARM, None, False),
    (CRITICAL, INFUSING, ALARM, None, False),
    (CRITICAL, ALARM, ALARM, None, False),
    (CLEARED, ALARM, STOPPED, None, False),
    (STROKE, INFUSING, INFUSING, _can_infuse, PULSE),
    (STALL_RETRY, ALARM, ALARM, _only_stalled, PULSE),
)

TRIGGERS = tuple(sorted(set(t[0] for t in TRANSITIONS)))


def _index(rows):
    """{trigger: {source: row}}: a stroke asks the table twice, and a lookup must allocate nothing
    (a (trigger, state) key would be a new tuple each time)."""
    index = {}
    for row in rows:
        by_source = index.setdefault(row[0], {})
        if row[1] in by_source:
            raise ValueError("two rows for %s in %s" % (row[0], row[1]))
        by_source[row[1]] = row
    return index


_BY_TRIGGER = _index(TRANSITIONS)


class Machine:
    def __init__(self, ctx, state=BOOT, motor=None):
        self._ctx = ctx
        self._state = state
        self._motor = motor

    @property
    def state(self):
        return self._state

    def _row(self, trigger):
        by_source = _BY_TRIGGER.get(trigger)
        return None if by_source is None else by_source.get(self._state)

    def allowed(self, trigger):
        row = self._row(trigger)
        return row is not None and (row[3] is None or row[3](self._ctx))

    def fire(self, trigger):
        row = self._row(trigger)
        if row is None:
            raise TransitionError("%s is not allowed in state %s" % (trigger, self._state))
        if row[3] is not None and not row[3](self._ctx):
            raise TransitionError("%s refused in state %s: guard" % (trigger, self._state))
        self._state = row[2]
        return row[2]

    def pulse(self, trigger):
        """One motor step through a pulsing row; True when the motor's feedback says it turned."""
        row = self._row(trigger)
        if row is None or not row[4]:
            raise TransitionError("%s may not pulse the motor in state %s" % (trigger, self._state))
        motor = self._motor
        if motor is None:
            raise TransitionError("%s: this machine drives no motor" % trigger)
        self.fire(trigger)
        return motor.stroke()
