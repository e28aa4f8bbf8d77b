# JSON out of the firmware, with exact fixed-point numbers: volumes in µL are reported to the nL
# without ever becoming floats (a float32 board cannot hold 19999.999 exactly).
import json


class Milli:
    """An integer count of thousandths, written as a decimal number."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _ascii(text):
    # Frames are ASCII: MicroPython's json writes UTF-8, so escape what is beyond it.
    out = json.dumps(text)
    for c in out:
        if ord(c) > 126:
            return "".join(c if ord(c) < 127 else "\\u%04x" % ord(c) for c in out)
    return out


def dumps(obj):
    if isinstance(obj, Milli):
        value = obj.value
        sign = "-" if value < 0 else ""
        whole, frac = divmod(abs(value), 1000)
        return "%s%d.%03d" % (sign, whole, frac)
    if isinstance(obj, str):
        return _ascii(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(_ascii(str(k)) + ":" + dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    return json.dumps(obj)
