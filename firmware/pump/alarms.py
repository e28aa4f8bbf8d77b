# The set of active alarms. Raising or clearing one yields an event for the host.
HIGH = "high"  # critical: the drug no longer flows
MEDIUM = "medium"  # non-critical: act soon (refill, battery)
LOW = "low"

LOW_RESERVOIR = "LOW_RESERVOIR"
EMPTY_RESERVOIR = "EMPTY_RESERVOIR"
REFILL_REMINDER = "REFILL_REMINDER"

PRIORITY = {
    LOW_RESERVOIR: MEDIUM,
    EMPTY_RESERVOIR: HIGH,
    REFILL_REMINDER: MEDIUM,
}


class Alarms:
    def __init__(self):
        self.active = {}  # code -> since_ms
        self.events = []

    def raise_(self, code, now_ms):
        if code in self.active:
            return False
        self.active[code] = now_ms
        self.events.append((code, True, now_ms))
        return True

    def clear(self, code, now_ms):
        if code not in self.active:
            return False
        del self.active[code]
        self.events.append((code, False, now_ms))
        return True

    def set(self, code, on, now_ms):
        return self.raise_(code, now_ms) if on else self.clear(code, now_ms)

    def critical(self):
        for code in self.active:
            if PRIORITY[code] == HIGH:
                return True
        return False

    def restore(self, code, since_ms):
        self.active[code] = since_ms

    def pop_events(self):
        events, self.events = self.events, []
        return events

    def listing(self):
        return [
            {"code": code, "priority": PRIORITY[code], "since_s": since_ms // 1000}
            for code, since_ms in sorted(self.active.items())
        ]
