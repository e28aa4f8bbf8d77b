# The pump's state machine, declared as data: (trigger, source, destination, guard).
# A trigger that is not in the table for the current state is refused with TransitionError.
# Order of a transition: guard(ctx) is asked first; only if it allows does the state change.
from pump.errors import TransitionError

BOOT = "boot"
STOPPED = "stopped"
INFUSING = "infusing"
ALARM = "alarm"  # a critical alarm: the pump never pumps here

STATES = (BOOT, STOPPED, INFUSING, ALARM)


def _can_infuse(ctx):
    return ctx.can_infuse()


TRANSITIONS = (
    ("booted", BOOT, STOPPED, None),
    ("resume", STOPPED, INFUSING, _can_infuse),
    ("program", STOPPED, STOPPED, None),
    ("program", INFUSING, INFUSING, None),
    ("program", ALARM, ALARM, None),
    ("stop", STOPPED, STOPPED, None),
    ("stop", INFUSING, STOPPED, None),
    ("stop", ALARM, ALARM, None),
    ("bolus", STOPPED, STOPPED, None),
    ("bolus", INFUSING, INFUSING, None),
    ("refill", STOPPED, STOPPED, None),
    ("refill", INFUSING, INFUSING, None),
    ("refill", ALARM, STOPPED, None),
    ("critical", STOPPED, ALARM, None),
    ("critical", INFUSING, ALARM, None),
    ("critical", ALARM, ALARM, None),
    ("cleared", ALARM, STOPPED, None),
)

TRIGGERS = tuple(sorted(set(t[0] for t in TRANSITIONS)))


class Machine:
    def __init__(self, ctx, state=BOOT):
        self.ctx = ctx
        self.state = state

    def allowed(self, trigger):
        for name, source, dest, guard in TRANSITIONS:
            if name == trigger and source == self.state:
                return guard is None or guard(self.ctx)
        return False

    def fire(self, trigger):
        for name, source, dest, guard in TRANSITIONS:
            if name == trigger and source == self.state:
                if guard is not None and not guard(self.ctx):
                    raise TransitionError("%s refused in state %s: guard" % (trigger, self.state))
                self.state = dest
                return dest
        raise TransitionError("%s is not allowed in state %s" % (trigger, self.state))
