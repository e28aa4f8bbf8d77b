"""Helpers of the end-to-end tests: the `pumpsim` command run against the bench's virtual board."""

import subprocess
import sys


def run_cli(bench, *args, ok=True):
    """Run `pumpsim --dir BENCH …` as a user would; with ok, insist that it succeeds."""
    result = subprocess.run([sys.executable, "-m", "pumpsim.cli", "--dir", str(bench.dir), *args],
                            capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


class RawLine:
    """The pump's serial line with no client in between: what is written reaches the firmware as
    it is, and every reply is read back, one at a time, in order."""

    def __init__(self, bench, timeout_s=5.0):
        import serial

        self._port = serial.serial_for_url(bench.port, timeout=0.05)
        self._port.reset_input_buffer()
        self._buf = b""
        self.timeout_s = timeout_s

    def close(self):
        self._port.close()

    def write(self, data):
        self._port.write(data)

    def reply(self, timeout_s=None):
        """The next reply frame (events skipped), or None when none comes within timeout_s."""
        import time

        from pumpsim import frames

        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                frame = frames.decode(line)
                if frame.kind == "<":
                    return frame
            if time.monotonic() > deadline:
                return None
            self._buf += self._port.read(self._port.in_waiting or 1)
