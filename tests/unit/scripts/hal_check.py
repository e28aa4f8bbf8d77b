# The hardware layer's byte I/O on the unix port: stdin is a pipe holding test bytes.
# Usage: printf 'bytes' | micropython hal_check.py
import json

from pump import hal


class Pin:
    def __init__(self, level=1):
        self.levels = []
        self.level = level

    def value(self, v=None):
        if v is None:
            return self.level
        self.levels.append(v)


link = hal.SerialLink()
link.start()
ready = link.wait(5000)
data = link.read_available()
link.stop()
step, feedback = Pin(), Pin(0)
motor = hal.Motor(step, feedback)
turned = motor.stroke()
now = hal.Clock().now_ms()
print(json.dumps({"ready": ready, "data": [b for b in data], "step_levels": step.levels,
                  "turned": turned, "now_is_int": type(now) is int and now > 0}))
