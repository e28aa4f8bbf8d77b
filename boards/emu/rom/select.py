# select.poll whose timeouts run in pump time while the application runs: the board sleeps in
# the rig until its deadline or until the supervisor delivers serial input. At the REPL they run
# in real time, as on a board. Shadows the built-in (reachable as uselect).
import uselect as _uselect
from uselect import POLLERR, POLLHUP, POLLIN, POLLOUT  # noqa: F401

import time as _time


class _Poll:
    def __init__(self):
        self._poll = _uselect.poll()

    def register(self, obj, mask=POLLIN | POLLOUT):
        self._poll.register(obj, mask)

    def unregister(self, obj):
        self._poll.unregister(obj)

    def modify(self, obj, mask):
        self._poll.modify(obj, mask)

    def poll(self, timeout=-1):
        if not _time.app:
            return self._poll.poll(-1 if timeout is None else timeout)
        ready = self._poll.poll(0)
        if ready or timeout == 0:
            return ready
        until_ms = -1 if timeout is None or timeout < 0 else _time.now_ms() + timeout
        while True:
            now_ms = _time.sleep_until(until_ms)
            ready = self._poll.poll(0)
            if ready or (until_ms >= 0 and now_ms >= until_ms):
                return ready

    def ipoll(self, timeout=-1, flags=0):
        if not _time.app:
            return self._poll.ipoll(-1 if timeout is None else timeout, flags)
        return iter(self.poll(timeout))


def poll():
    return _Poll()
