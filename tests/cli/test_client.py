"""The client against a scripted pump on a pty: events, stale replies, errors, a vanished port."""

import json
import os
import pty
import threading
import tty
import zlib

import pytest

from pumpsim.client import PumpClient
from pumpsim.errors import BoardGone, LinkTimeout, PumpsimError, Refused


def frame(kind, seq, verb, payload):
    body = ("%s%d %s %s" % (kind, seq, verb, json.dumps(payload))).encode()
    return body + b"*%08x\n" % zlib.crc32(body)


class FakePump:
    """Answers each request line with what `script(seq, verb, line)` returns."""

    def __init__(self, script):
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.script = script
        self.lines = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        buf = b""
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.append(line)
                seq, verb = line[1:].split(b" ")[:2]
                os.write(self.master, self.script(int(seq), verb.decode(), line))

    def close(self):
        # The slave's last close makes the master's read fail, which ends the thread: only then
        # is the master closed, so that its number, given to the next test's pty, is never read
        # by this thread.
        os.close(self._slave)
        self._thread.join(timeout=5)
        os.close(self.master)


@pytest.fixture
def fake():
    made = []

    def make(script):
        made.append(FakePump(script))
        return made[-1]

    yield make
    for f in made:
        f.close()


def test_events_and_stale_replies_are_skipped(fake):
    pump = fake(lambda seq, verb, line: (
        b"noise\r\n" + frame("!", 1, "alarm", {"code": "LOW_RESERVOIR"})
        + frame("<", seq + 100, "ok", {"stale": True}) + frame("<", seq, "ok", {"state": "infusing"})))
    with PumpClient.open(pump.path, timeout=2) as client:
        assert client.status() == {"state": "infusing"}
        assert client.events == [{"code": "LOW_RESERVOIR"}]


def test_an_error_reply_is_refused_with_its_code(fake):
    pump = fake(lambda seq, verb, line: frame("<", seq, "err", {"code": "E_LIMIT", "reason": "too much",
                                                                "limit": "max_daily_dose_ug"}))
    with PumpClient.open(pump.path, timeout=2) as client:
        with pytest.raises(Refused) as refused:
            client.status()
    assert (refused.value.code, refused.value.limit) == ("E_LIMIT", "max_daily_dose_ug")


def test_a_seq_0_error_answers_the_request_in_flight(fake):
    pump = fake(lambda seq, verb, line: frame("<", 0, "err", {"code": "E_CRC", "reason": "CRC mismatch"}))
    with PumpClient.open(pump.path, timeout=2) as client:
        with pytest.raises(Refused, match="E_CRC"):
            client.status()


def test_authenticated_verbs_say_hello_and_sign(fake):
    def script(seq, verb, line):
        if verb == "hello":
            return frame("<", seq, "ok", {"nonce": "00" * 16})
        return frame("<", seq, "ok", {"signed": b" #" in line})

    pump = fake(script)
    with PumpClient.open(pump.path, key=bytes(32), timeout=2) as client:
        assert client.program_continuous(500) == {"signed": True}
    assert [l.split(b" ")[1] for l in pump.lines] == [b"hello", b"program"]


def test_no_key_means_nothing_is_sent(fake):
    pump = fake(lambda seq, verb, line: frame("<", seq, "ok", {}))
    with PumpClient.open(pump.path, timeout=2) as client:
        with pytest.raises(PumpsimError, match="key"):
            client.refill(20000, 2000)
    assert pump.lines == []


def test_silence_is_a_timeout(fake):
    pump = fake(lambda seq, verb, line: b"")
    with PumpClient.open(pump.path, timeout=0.3) as client:
        with pytest.raises(LinkTimeout, match="did not answer"):
            client.status()


def test_a_port_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(BoardGone, match="cannot open"):
        PumpClient.open(str(tmp_path / "ttyACM9"))


def test_verbose_logs_each_request_and_reply_on_stderr(fake, capsys, caplog):
    import logging

    from pumpsim import cli

    pump = fake(lambda seq, verb, line: b"noise\r\n" + frame("<", seq, "ok", {"state": "infusing"}))
    assert cli.main(["-v", "--port", pump.path, "status", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"state": "infusing"}  # stdout stays the reply alone
    logged = [r.getMessage() for r in caplog.records if r.name == "pumpsim.client"]
    assert logged[0] == "-> %s" % pump.lines[0].decode()
    assert logged[-1].startswith("<- <1 ok ") and any("not a frame" in m for m in logged)
    caplog.clear()
    logging.getLogger("pumpsim.client").setLevel(logging.NOTSET)
    assert cli.main(["--port", pump.path, "status", "--json"]) == 0
    assert not [r for r in caplog.records if r.name == "pumpsim.client" and r.levelno == logging.DEBUG]


def test_pyserials_spy_url_traces_the_bytes_of_a_command(fake, capsys, tmp_path):
    from pumpsim import cli

    pump = fake(lambda seq, verb, line: frame("<", seq, "ok", {"state": "infusing"}))
    trace = tmp_path / "trace.txt"
    assert cli.main(["--port", "spy://%s?file=%s" % (pump.path, trace), "status", "--json"]) == 0
    text = trace.read_text()
    assert "status" in text and "infusing" in text  # both ways, as pyserial's hex dump shows them
