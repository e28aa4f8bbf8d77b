"""The clinician's programmer: a client of the pump over its serial line.

    client = PumpClient.open("/dev/ttyACM0", key=key)     # or a pty path, socket://, loop://
    client.refill(volume_ul=20000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    client.status()["reservoir_ul"]
"""

from __future__ import annotations

import logging
import time

import serial

from pumpsim import frames
from pumpsim.errors import BoardGone, FrameError, LinkTimeout, PumpsimError, Refused

# `pumpsim -v` shows it: each request as sent and each reply as received (the signature is the
# key's HMAC of the frame, never the key).
log = logging.getLogger("pumpsim.client")

AUTHENTICATED = ("refill", "program", "bolus", "config", "maintenance", "ack", "alarm-test", "set-clock")


class PumpClient:
    def __init__(self, port, key=None, timeout=5.0):
        self._port = port
        self.key = key
        self.timeout = timeout
        self.seq = 0
        self.nonce = None
        self.events = []

    @classmethod
    def open(cls, url: str, key: bytes | None = None, timeout: float = 5.0) -> "PumpClient":
        try:
            port = serial.serial_for_url(url, baudrate=115200, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise BoardGone("cannot open %s: %s" % (url, exc)) from None
        port.reset_input_buffer()
        return cls(port, key, timeout)

    def close(self):
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one request, one reply ----------------------------------------------------------------

    def request(self, verb: str, payload: dict | None = None):
        payload = payload or {}
        signed = verb in AUTHENTICATED
        if signed:
            if self.key is None:
                raise PumpsimError("'%s' changes therapy and needs the board's key (--key FILE)" % verb)
            if self.nonce is None:
                self.nonce = self.request("hello")["nonce"]
        self.seq += 1
        line = frames.request(self.seq, verb, payload, self.key if signed else None, self.nonce)
        log.debug("-> %s", line.decode("ascii", "replace").rstrip())
        try:
            self._port.write(line)
        except (serial.SerialException, OSError) as exc:
            raise BoardGone("the pump's port went away: %s" % exc) from None
        return self._await(self.seq, verb)

    def _await(self, seq, verb):
        deadline = time.monotonic() + self.timeout
        buf = b""
        while time.monotonic() < deadline:
            try:
                chunk = self._port.read(self._port.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                raise BoardGone("the pump's port went away: %s" % exc) from None
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    frame = frames.decode(line)
                except FrameError:
                    log.debug("   (not a frame: %r)", line[:80])
                    continue  # noise or a REPL line: not ours
                log.debug("<- %s", line.decode("ascii", "replace").rstrip())
                if frame.kind == "!":
                    self.events.append(frame.payload)
                elif frame.seq == seq or (frame.seq == 0 and frame.verb == "err"):
                    return self._result(frame)
        raise LinkTimeout("the pump did not answer '%s' within %.1f s" % (verb, self.timeout))

    @staticmethod
    def _result(frame):
        if frame.verb == "ok":
            return frame.payload
        if frame.verb == "err":
            p = frame.payload
            raise Refused(p.get("code", "E_?"), p.get("reason", "refused"), p.get("limit"))
        raise FrameError("unexpected reply verb %r" % frame.verb)

    # -- verbs ---------------------------------------------------------------------------------

    def hello(self) -> dict:
        return self.request("hello")

    def status(self) -> dict:
        return self.request("status")

    def refill(self, volume_ul: int, concentration_ug_per_ml: int, withdrawn_ul: int | None = None,
               reminder_days: int | None = None) -> dict:
        args = {"volume_ul": volume_ul, "concentration_ug_per_ml": concentration_ug_per_ml}
        if withdrawn_ul is not None:
            args["withdrawn_ul"] = withdrawn_ul
        if reminder_days is not None:
            args["reminder_days"] = reminder_days
        return self.request("refill", args)

    def program_continuous(self, daily_dose_ug: int) -> dict:
        return self.request("program", {"mode": "continuous", "daily_dose_ug": daily_dose_ug})

    def program_flex(self, steps: list[tuple[int, int]], week: dict[int, list[tuple[int, int]]] | None = None) -> dict:
        """steps: [(minute of the day, µg/day), ...], in order, every day; week: {weekday 0-6:
        steps} for the days that have their own (the pump's day 0 is weekday 0, a Monday)."""
        args = {"mode": "flex", "steps": [[m, d] for m, d in steps]}
        if week:
            args["week"] = dict((str(day), [[m, d] for m, d in ds]) for day, ds in week.items())
        return self.request("program", args)

    def program_minimum_rate(self, confirm: bool = False) -> dict:
        """Confirm: the minimum rate risks withdrawal, and the pump refuses it unconfirmed."""
        return self.request("program", {"mode": "minimum-rate", "confirm": confirm})

    def program_stop(self, confirm: bool = False) -> dict:
        """Confirm: stopping risks withdrawal, and the pump refuses it unconfirmed."""
        return self.request("program", {"mode": "stop", "confirm": confirm})

    def program_patient_bolus(self, dose_ug: int, lockout_minutes: int, max_per_day: int) -> dict:
        return self.request("program", {"mode": "patient-bolus", "dose_ug": dose_ug,
                                        "lockout_minutes": lockout_minutes, "max_per_day": max_per_day})

    def bolus(self, dose_ug: int, minutes: int) -> dict:
        return self.request("bolus", {"dose_ug": dose_ug, "minutes": minutes})

    def bolus_patient(self) -> dict:
        return self.request("bolus", {"patient": True})

    def bolus_prime(self, volume_ul: int, minutes: int) -> dict:
        return self.request("bolus", {"prime_ul": volume_ul, "minutes": minutes})

    def alarms(self) -> list[dict]:
        return self.request("alarms")["alarms"]

    def ack(self, code: str) -> list[dict]:
        return self.request("ack", {"code": code})["alarms"]

    def alarm_test(self) -> dict:
        return self.request("alarm-test")

    def log(self, since: int = 0) -> list[dict]:
        return self.request("log", {"since": since})["events"]

    def config(self, **thresholds: int) -> dict:
        return self.request("config", thresholds)

    def set_clock(self, clock_ms: int) -> dict:
        """Pump time from now on; the pump refuses one before the newest time it saved."""
        return self.request("set-clock", {"clock_ms": clock_ms})

    def maintenance(self) -> dict:
        return self.request("maintenance")
