# The os module of the virtual board: the unix port's, with the uname() a board has, naming the
# board and its MicroPython. Shadows the built-in (reachable as uos).
import sys as _sys
from collections import namedtuple as _namedtuple

from uos import *  # noqa: F401,F403
import uos as _uos

# Printed as a board prints its own: (sysname='rp2', nodename='rp2', release='1.28.0', ...).
_Uname = _namedtuple("", ("sysname", "nodename", "release", "version", "machine"))


def uname():
    v = _sys.implementation.version
    release = "%d.%d.%d" % v[:3] + ("-" + v[3] if len(v) > 3 and v[3] else "")
    build = _sys.version.split("MicroPython ", 1)[-1]
    return _Uname("emu", "emu", release, build, _uos.getenv("PUMPSIM_MACHINE") or "virtual board")
