# The alarm set and what it sounds like.
#
# High-priority alarms play a two-tone pattern and repeat often; the others play a single tone
# about every hour. Acknowledging silences an alarm until its next repeat is due; it sounds again
# then for as long as its cause remains. Priority is how loud; CRITICAL is what stops the drug:
# a low-battery reset is as urgent as an empty pump, but its minimum rate must go on.
HIGH = "high"  # act now
MEDIUM = "medium"  # act soon (refill, battery, memory repaired, therapy stopped, clock)
LOW = "low"

LOW_RESERVOIR = "LOW_RESERVOIR"
EMPTY_RESERVOIR = "EMPTY_RESERVOIR"
REFILL_REMINDER = "REFILL_REMINDER"
BATTERY_ERI = "BATTERY_ERI"
BATTERY_EOS = "BATTERY_EOS"
MOTOR_STALL = "MOTOR_STALL"
MEMORY_ERROR = "MEMORY_ERROR"
MEMORY_REPAIRED = "MEMORY_REPAIRED"
LOW_BATTERY_RESET = "LOW_BATTERY_RESET"  # the pump came back at minimum rate: reprogram it
THERAPY_STOPPED = "THERAPY_STOPPED"  # `program stop`: a stopped pump is never silent
# The RTC read earlier than the saved clock at boot (or the records hold times later than it):
# pump time went on from the newest saved time, and how long the power was off is unknown.
CLOCK_RESTORED = "CLOCK_RESTORED"

PRIORITY = {
    LOW_RESERVOIR: MEDIUM,
    EMPTY_RESERVOIR: HIGH,
    REFILL_REMINDER: MEDIUM,
    BATTERY_ERI: MEDIUM,
    BATTERY_EOS: HIGH,
    MOTOR_STALL: HIGH,
    MEMORY_ERROR: HIGH,
    MEMORY_REPAIRED: MEDIUM,
    LOW_BATTERY_RESET: HIGH,
    THERAPY_STOPPED: MEDIUM,
    CLOCK_RESTORED: MEDIUM,
}

# The drug no longer flows while one of these is active: the pump is in its alarm state.
CRITICAL = (EMPTY_RESERVOIR, MOTOR_STALL, BATTERY_EOS, MEMORY_ERROR)

TWO_TONE = "two-tone"
SINGLE = "single"
# (Hz, ms) steps of each pattern; silence between steps is not part of a pattern.
PATTERNS = {
    TWO_TONE: ((880, 250), (1320, 250), (880, 250), (1320, 250)),
    SINGLE: ((1000, 500),),
}

CRITICAL_REPEAT_MS = 10 * 60000
NON_CRITICAL_REPEAT_MS = 60 * 60000


def pattern_of(code):
    return TWO_TONE if PRIORITY[code] == HIGH else SINGLE


class Alarms:
    def __init__(self):
        self.active = {}  # code -> since_ms
        self.next_sound = {}  # code -> when it sounds next (ms)
        self.acked = {}  # code -> True once acknowledged (until it sounds again)
        self.events = []  # (code, active, at_ms) changes, until the app announces them
        self.unlogged = []  # the same changes, until the pump logs them
        self.critical_repeat_ms = CRITICAL_REPEAT_MS
        self.non_critical_repeat_ms = NON_CRITICAL_REPEAT_MS

    def repeat_ms(self, code):
        return self.critical_repeat_ms if PRIORITY[code] == HIGH else self.non_critical_repeat_ms

    def raise_(self, code, now_ms):
        if code in self.active:
            return False
        self.active[code] = now_ms
        self.next_sound[code] = now_ms
        self.acked[code] = False
        self.events.append((code, True, now_ms))
        self.unlogged.append((code, True, now_ms))
        return True

    def clear(self, code, now_ms):
        if code not in self.active:
            return False
        del self.active[code]
        self.next_sound.pop(code, None)
        self.acked.pop(code, None)
        self.events.append((code, False, now_ms))
        self.unlogged.append((code, False, now_ms))
        return True

    def set(self, code, on, now_ms):
        return self.raise_(code, now_ms) if on else self.clear(code, now_ms)

    def critical(self, but=None):
        """Whether a critical alarm (other than `but`) is active."""
        for code in self.active:
            if code in CRITICAL and code != but:
                return True
        return False

    def restore(self, code, since_ms, now_ms):
        self.active[code] = since_ms
        self.next_sound[code] = now_ms
        self.acked[code] = False

    def ack(self, code, now_ms):
        """Silence an active alarm until its next repeat; False if it is not active."""
        if code not in self.active:
            return False
        self.acked[code] = True
        self.next_sound[code] = now_ms + self.repeat_ms(code)
        return True

    def next_sound_ms(self):
        return min(self.next_sound.values()) if self.next_sound else None

    def due_sound(self, now_ms):
        """The pattern to play now (critical first), rescheduling every alarm that was due."""
        pattern = None
        for code, at_ms in self.next_sound.items():
            if at_ms <= now_ms:
                self.next_sound[code] = now_ms + self.repeat_ms(code)
                self.acked[code] = False
                if pattern != TWO_TONE:
                    pattern = pattern_of(code)
        return pattern

    def pop_unlogged(self):
        changes, self.unlogged = self.unlogged, []
        return changes

    def pop_events(self):
        events, self.events = self.events, []
        return events

    def listing(self):
        return [
            {"code": code, "priority": PRIORITY[code], "since_s": since_ms // 1000,
             "pattern": pattern_of(code), "acked": self.acked.get(code, False),
             "next_sound_s": self.next_sound.get(code, since_ms) // 1000}
            for code, since_ms in sorted(self.active.items())
        ]
