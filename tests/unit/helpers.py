"""Talking to pump.app.App in-process, the way the main loop does: bytes in, reply lines out."""

import json

from pump import app as app_module
from pump import jsonfx

from .conftest import KEY
from .fakes import FakeHardware, frame, signed, split_line

# Fields that count what the line brought, not what the pump does.
DIAGNOSTICS = ("noise_bytes", "auth_failures", "programming_locked_s", "clock_s", "clock_ms")


class Bench:
    def __init__(self, data_dir, key=KEY):
        self.hw = FakeHardware(str(data_dir), key)
        self.app = app_module.App(self.hw)
        self.app.pump.boot(self.hw.reset_cause)
        self.data_dir = data_dir
        self.nonce = None
        self.seq = 0

    def send(self, data):
        """Feed raw bytes; every reply line, split into (kind, seq, verb, payload, crc_ok)."""
        items = []
        self.app.framer.feed(data, items)
        return [split_line(self.app.handle(item)) for item in items]

    def request(self, verb, payload=None, sign=None, seq=None):
        """One request, signed when the verb needs it; its (verb, payload) reply."""
        self.seq = self.seq + 1 if seq is None else seq
        text = json.dumps(payload if payload is not None else {}, separators=(",", ":"))
        if sign is None:
            sign = verb in ("refill", "program", "bolus", "config", "maintenance", "ack", "alarm-test")
        data = signed(KEY, self.nonce, self.seq, verb, text) if sign else frame(self.seq, verb, text)
        (reply,) = self.send(data)
        kind, seq, verb, payload, crc_ok = reply
        assert kind == "<" and seq == self.seq and crc_ok
        return verb, payload

    def hello(self):
        verb, payload = self.request("hello")
        self.nonce = payload["nonce"]
        return payload

    def therapy(self):
        """The status without the diagnostics, as the bytes it would be sent as."""
        status = self.app.status()
        for name in DIAGNOSTICS:
            status.pop(name)
        return jsonfx.dumps(status)

    def flash(self):
        return {p.name: p.read_bytes() for p in sorted(self.data_dir.iterdir()) if p.name.startswith("state.")}

    def infusing(self):
        self.hello()
        assert self.request("refill", {"volume_ul": 20000, "concentration_ug_per_ml": 2000})[0] == "ok"
        assert self.request("program", {"mode": "continuous", "daily_dose_ug": 500})[0] == "ok"
        return self
