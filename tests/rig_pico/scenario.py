# A day of the rig's life, hardware faked, written for both interpreters: CPython imports it,
# and the MicroPython unix port runs it as a script (tests/rig/test_core.py). Prints nothing;
# returns the rig's replies and what its hardware was told.
from rig.core import Rig, ToneMeter


class FakeClock:
    def __init__(self):
        self.t = 0

    def now_ms(self):
        return self.t


class FakeHardware:
    """The counter is a number the test moves; every output is recorded."""

    def __init__(self):
        self.raw = 0
        self.log = []

    def counter_raw(self):
        return self.raw

    def feedback(self, level):
        self.log.append(("feedback", level))

    def power(self, on):
        self.log.append(("power", on))

    def run_pin(self, level):
        self.log.append(("run", level))

    def sleep_ms(self, ms):
        self.log.append(("sleep", ms))

    def battery_u16(self, duty):
        self.log.append(("dac", duty))


REQUESTS = [
    "hello", "measure", "stall intermittent", "@edges 4", "measure", "stall next 2", "@edges 3",
    "measure", "stall next 0", "stall next", "stall sideways", "stall off", "@edges 1", "measure",
    "battery", "battery 3300", "battery 3301", "battery 0", "battery duty 65536", "battery duty 32768",
    "battery calibrate 10000 500 60000 3100", "battery 500", "battery 3100", "battery 499", "battery 3200",
    "battery 2850", "battery calibrate 5 100 5 200", "battery calibrate x 1 2 3",
    "power-cycle", "power-cycle 1", "reset", "advance 1000", "clock stepped", "clock realtime",
    "hang", "corrupt-flash state", "rtc volatile", "frobnicate", "", "measure",
    "@tones", "tones", "@long",
]


def run():
    clock = FakeClock()
    hw = FakeHardware()
    rig = Rig(hw, clock, 3300, 250)
    meter = ToneMeter(rig.tones, 20)
    replies = []
    for request in REQUESTS:
        clock.t += 1000
        if request.startswith("@edges"):
            for _ in range(int(request.split()[1])):
                clock.t += 100
                hw.raw += 1
                rig.poll()
        elif request == "@tones":  # 1000 Hz for 300 ms, 50 ms off, 1500 Hz for 200 ms, silence
            for hz, ms in ((1000, 300), (0, 40), (1500, 200), (0, 500)):
                for _ in range(ms // 20):
                    clock.t += 20
                    meter.gate(clock.t, hz * 20 // 1000)
        elif request == "@long":
            replies.append(rig.handle(b"measure " + b"x" * 300))
            replies.append(rig.handle(b"\xff\xfe"))
        else:
            replies.append(rig.handle(request))
    return replies, hw.log
