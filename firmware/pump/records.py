# Which medium holds the pump's records, and moving them onto an FRAM.
#
# On a board with an FRAM that answers, the records are on the FRAM. Records found on the flash
# as well can only be newer: they are moved onto the FRAM, then removed from the flash (a board
# that ran without its FRAM, or a pump before its FRAM was fitted). Without an answering FRAM
# the records stay on the flash. A flag on the flash says the FRAM held them: when it is gone,
# the records went with it, and the pump must not start from nothing as if it were new.
import os

from pump import nvram
from pump.eventlog import EventLog
from pump.store import RegionSlot, Store

FRAM = "fram"
FLASH = "flash"
_FLAG = "fram.on"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _flag(data_dir, on):
    path = "%s/%s" % (data_dir, _FLAG)
    if on and not _exists(path):
        with open(path, "w") as f:
            f.write("the records are on the FRAM\n")
    elif not on:
        _remove(path)


class Records:
    """The state store, the clock's store and the event log, on one medium."""

    def __init__(self, fram, data_dir):
        try:
            os.mkdir(data_dir)
        except OSError:
            pass  # it exists
        self.medium = FLASH
        self.formatted = False
        self.moved = []
        # The FRAM that held the records is not there: they are lost, not absent.
        self.lost = fram is None and _exists("%s/%s" % (data_dir, _FLAG))
        if fram is None:
            _flag(data_dir, False)
            self.state = Store(data_dir, "state")
            self.clock = Store(data_dir, "clock")
            self.log = EventLog(data_dir)
            return
        self.medium = FRAM
        regions, self.formatted = nvram.regions(fram)
        self.state = Store(slots=(RegionSlot(regions[b"stta"]), RegionSlot(regions[b"sttb"])))
        self.clock = Store(slots=(RegionSlot(regions[b"clka"]), RegionSlot(regions[b"clkb"])))
        self.log = EventLog(region=regions[b"evts"])
        self.moved = self._move_from_flash(data_dir)
        _flag(data_dir, True)

    def _move_from_flash(self, data_dir):
        """Records left on the flash are newer than the FRAM's: move them over. Each kind is
        removed from the flash right after it is copied; a power cut in between copies it again."""
        moved = []
        log_path = data_dir + "/events.log"
        if _exists(log_path):
            for event in EventLog(data_dir).read():
                fields = dict((k, v) for k, v in event.items() if k not in ("event", "seq", "t_s", "t_ms"))
                self.log.append(event["t_ms"], event["event"], fields)
            _remove(log_path)
            moved.append("log")
        for name, store in (("clock", self.clock), ("state", self.state)):
            paths = ["%s/%s.%s" % (data_dir, name, s) for s in "ab"]
            if not any(_exists(p) for p in paths):
                continue
            old = Store(data_dir, name)
            payload = old.load()
            if payload is not None:
                store.load()
                store.seq = max(store.seq, old.seq)
                store.save(payload)
            for path in paths:
                _remove(path)
            moved.append(name)
        return moved
