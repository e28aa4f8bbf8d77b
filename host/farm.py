"""A bench of a labgrid farm (docs/farm.md): a place on a labgrid coordinator whose resources are
the board's serial port (`dut`), the rig's serial port (`rig`) and the board's key (`key`, of
class PumpsimKey, its `hex` the key).

labgrid is driven through its own `labgrid-client`, which lives in a virtualenv of its own
(.venv-labgrid: labgrid pins versions pumpsim's own environment cannot share). A place is
taken as labgrid means it to be shared: a reservation (by name or by tags) waited for, the place
acquired with the reservation's token, and at the end released and the reservation cancelled.
Each labgrid-client runs in a session of its own, so that a Ctrl-C meant for the tests does not
kill it half-way, and an interrupted lock is undone before the interrupt goes on: a place is
never left acquired, nor a reservation left waiting.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pumpsim.errors import PumpsimError

DEFAULT_COORDINATOR = "127.0.0.1:20408"
KEY_CLASS = "PumpsimKey"
ROLES = ("dut", "rig", "key")  # the resources of a bench, by name
# A key=value of labgrid's tags: labgrid-client refuses other keys (remote/common.py's TAG_KEY).
_TAG = re.compile(r"^([a-z][a-z0-9_]+)=([A-Za-z0-9_.-]+)$")
_PLACE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
CALL_TIMEOUT_S = 30.0


class FarmError(PumpsimError):
    """A labgrid place could not be had, or does not describe a bench."""


class CoordinatorUnreachable(FarmError):
    """No labgrid coordinator answers at the address given."""


class PlaceTimeout(FarmError):
    """No place matching the request came free in time."""


def default_coordinator():
    return os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def find_client(path=None):
    """The labgrid-client to run: `path` when given, else the one in .venv-labgrid beside this
    checkout's .venv, else the one on PATH."""
    if path:
        found = shutil.which(path)
        if not found:
            raise FarmError("labgrid-client %s: no such program" % path)
        return found
    for venv in (Path(sys.prefix).parent / ".venv-labgrid", Path(__file__).resolve().parents[1] / ".venv-labgrid"):
        candidate = venv / "bin" / "labgrid-client"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("labgrid-client")
    if not found:
        raise FarmError("labgrid-client not found: `make .venv-labgrid/bin/.installed` installs it "
                        "(or give --pumpsim-labgrid-client)")
    return found


def filters_of(spec):
    """What a reservation asks for: a place's name (`bench-a`), or tags (`pumpsim=bench`, several
    separated by commas or spaces)."""
    words = [w for w in re.split(r"[,\s]+", spec.strip()) if w]
    if not words:
        raise FarmError("--pumpsim-place: give a place name or tags such as pumpsim=bench")
    if len(words) == 1 and "=" not in words[0]:
        if not _PLACE_NAME.match(words[0]):
            raise FarmError("--pumpsim-place %r: not a place name" % spec)
        return {"name": words[0]}
    filters = {}
    for word in words:
        match = _TAG.match(word)
        if not match:
            raise FarmError("--pumpsim-place %r: %r is not a tag (key=value, the key in lower case)"
                            % (spec, word))
        filters[match.group(1)] = match.group(2)
    return filters


def describe(filters):
    if set(filters) == {"name"}:
        return "place %s" % filters["name"]
    return "place tagged %s" % ", ".join("%s=%s" % kv for kv in sorted(filters.items()))


def parse_places(text):
    """`labgrid-client -v places` → {place: {tag: value}}."""
    places, name = {}, None
    for line in text.splitlines():
        match = re.match(r"^Place '(.+)':$", line)
        if match:
            name = match.group(1)
            places[name] = {}
            continue
        match = re.match(r"^\s+tags: (.*)$", line)
        if match and name is not None:
            places[name] = dict(pair.split("=", 1) for pair in match.group(1).split(", ") if "=" in pair)
    return places


def matching(places, filters):
    return sorted(name for name, tags in places.items()
                  if all((name if key == "name" else tags.get(key)) == value for key, value in filters.items()))


def serial_url(entry, role):
    """A pyserial URL for a labgrid serial resource ({"cls": ..., params...})."""
    cls = entry["cls"]
    if cls == "NetworkSerialPort":
        if not entry.get("port"):
            raise FarmError("resource %s: the exporter gave no port (is ser2net installed there?)" % role)
        host, port = entry["host"], int(entry["port"])
        if entry.get("protocol", "rfc2217") == "raw":
            return "socket://%s:%d" % (host, port)
        # ser2net's RFC 2217 server does not answer pyserial's modem-control requests.
        return "rfc2217://%s:%d?ign_set_control" % (host, port)
    if cls == "RawSerialPort":
        return entry["port"]
    raise FarmError("resource %s: a %s is not a serial port pumpsim can open (NetworkSerialPort or "
                    "RawSerialPort)" % (role, cls))


def resources_of(config):
    """A labgrid target's `resources` (a list of {cls: params} or a mapping cls → params, the
    params one mapping or a list of them) → [{"cls": cls, params...}]."""
    items = []
    for block in config if isinstance(config, list) else [config]:
        for cls, params in (block or {}).items():
            for one in params if isinstance(params, list) else [params]:
                items.append({"cls": cls, **(one or {})})
    return items


def bench_of(resources, where):
    """The bench a target's resources describe: {"port", "rig", "key"}."""
    by_name = {entry.get("name"): entry for entry in resources}
    keys = [entry for entry in resources if entry["cls"] == KEY_CLASS]
    missing = [role for role in ("dut", "rig") if role not in by_name] + ([] if keys else ["key"])
    if missing:
        raise FarmError("%s has no %s: a bench's resources are %s (serial ports named dut and rig, "
                        "and a %s)" % (where, ", ".join(missing), ", ".join(ROLES), KEY_CLASS))
    try:
        key = bytes.fromhex(str(keys[0].get("hex", "")))
    except ValueError:
        key = b""
    if not key:
        raise FarmError("%s: its %s holds no key in hex" % (where, KEY_CLASS))
    return {"port": serial_url(by_name["dut"], "dut"), "rig": serial_url(by_name["rig"], "rig"), "key": key}


def read_environment(path):
    """A labgrid environment file (--lg-env): ("place", name, coordinator) when its target is a
    RemotePlace, else ("bench", {port, rig, key}, None) from the resources it lists."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FarmError("--lg-env %s: %s" % (path, exc)) from None
    targets = data.get("targets") or {}
    if len(targets) != 1:
        raise FarmError("--lg-env %s: pumpsim needs exactly one target (it has %d)" % (path, len(targets)))
    (target_name, target), = targets.items()
    resources = resources_of((target or {}).get("resources") or [])
    places = [entry for entry in resources if entry["cls"] == "RemotePlace"]
    if places:
        coordinator = (data.get("options") or {}).get("coordinator_address")
        return "place", str(places[0]["name"]), coordinator
    return "bench", bench_of(resources, "--lg-env %s, target %s" % (path, target_name)), None


class Call:
    """One labgrid-client running, in a session of its own (a Ctrl-C at the terminal is not
    its), its output in files (so that what it said before it was stopped can still be read)."""

    def __init__(self, client, args):
        self.args = args
        env = {k: v for k, v in os.environ.items() if k not in ("LG_TOKEN", "LG_PLACE", "LG_ENV")}
        env["PYTHONUNBUFFERED"] = "1"
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.coordinator = client.coordinator
        self.proc = subprocess.Popen([client.executable, "-x", client.coordinator, *args], stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, env=env, start_new_session=True)

    def wait(self, timeout_s=CALL_TIMEOUT_S, shielded=True):
        """Until it ends: True when a KeyboardInterrupt came meanwhile (shielded: held back until
        it ended; else it is stopped and the interrupt goes on). Stopped at timeout_s
        (subprocess.TimeoutExpired)."""
        interrupted = False
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                return interrupted
            except KeyboardInterrupt:
                if not shielded:
                    self.stop()
                    raise
                interrupted = True
            except subprocess.TimeoutExpired:
                self.stop()
                raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def token(self, wait_s=0.0):
        """The reservation token `reserve --shell` says before it waits: waiting up to wait_s
        for it to be said (or for the program to end), shielded from Ctrl-C; None if unsaid."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                said = re.findall(r"LG_TOKEN=(\S+)", self.output()[0])
                if said or self.proc.poll() is not None or time.monotonic() >= deadline:
                    return said[0] if said else None
                time.sleep(0.02)
            except KeyboardInterrupt:
                continue

    def output(self):
        self._out.seek(0), self._err.seek(0)
        return self._out.read().decode(errors="replace"), self._err.read().decode(errors="replace")

    def result(self, check=True):
        """Its stdout; FarmError naming what it said when it failed (CoordinatorUnreachable when
        it found no coordinator)."""
        stdout, stderr = self.output()
        self._out.close(), self._err.close()
        if check and self.proc.returncode != 0:
            if "Could not connect to coordinator" in stderr or "coordinator is unavailable" in stderr:
                raise CoordinatorUnreachable("no labgrid coordinator answers at %s (give --pumpsim-coordinator "
                                             "or LG_COORDINATOR)" % self.coordinator)
            said = " / ".join(line.strip() for line in stderr.strip().splitlines()[-2:])
            raise FarmError("labgrid-client %s: %s" % (" ".join(self.args), said or "exit %d" % self.proc.returncode))
        return stdout


class LabgridClient:
    """labgrid-client against one coordinator."""

    def __init__(self, executable, coordinator):
        self.executable = executable
        self.coordinator = coordinator

    def call(self, *args, check=True):
        """Run `labgrid-client -x COORDINATOR args…` to its end, whatever Ctrl-C says meanwhile
        (the interrupt goes on once it has ended): its stdout."""
        call = Call(self, args)
        interrupted = call.wait()
        out = call.result(check)
        if interrupted:
            raise KeyboardInterrupt
        return out

    def calls(self, *commands, in_turn=False):
        """Several labgrid-client commands, side by side (or in_turn), each to its end whatever
        Ctrl-C says meanwhile, and whether or not the others failed."""
        interrupted = False
        running = []
        for args in commands:
            running.append(Call(self, args))
            if in_turn:
                interrupted |= running[-1].wait()
        for call in running:
            interrupted |= call.wait()
            call.result(check=False)
        if interrupted:
            raise KeyboardInterrupt

    def places(self):
        return parse_places(self.call("-v", "places"))


class Lease:
    """A place acquired for this run, and the bench its resources describe."""

    def __init__(self, client, place, token, bench):
        self.client, self.place, self.token, self.bench = client, place, token, bench

    def release(self):
        """Release the place and cancel its reservation (together: either order frees the place);
        neither Ctrl-C nor an error here leaves the place acquired."""
        # "+TOKEN" names the place only as long as the reservation stands.
        self.client.calls(("-p", self.place, "release"), ("cancel-reservation", self.token),
                          in_turn=self.place.startswith("+"))


def lock(client, spec, timeout_s):
    """Reserve a place matching spec (see filters_of), wait up to timeout_s for it, acquire it:
    a Lease. Nothing is left reserved or acquired when this fails or is interrupted."""
    filters = filters_of(spec)
    places = client.places()
    if not matching(places, filters):
        raise FarmError("no %s on the coordinator at %s (its places: %s)"
                        % (describe(filters), client.coordinator, ", ".join(sorted(places)) or "none"))
    reserve = Call(client, ("reserve", "--wait", "--shell", *("%s=%s" % kv for kv in sorted(filters.items()))))
    place = None
    try:
        try:
            # Not shielded: an interrupt while waiting for a place ends the wait at once.
            reserve.wait(timeout_s, shielded=False)
        except subprocess.TimeoutExpired:
            raise PlaceTimeout("no %s came free within %g s (labgrid-client who: who holds them)"
                               % (describe(filters), timeout_s)) from None
        token = reserve.token()
        reserve.result()
        out = client.call("-p", "+" + token, "acquire")
        place = re.search(r"acquired place (\S+)", out).group(1)
        bench = bench_from_env(client.call("-p", place, "env"), place)
    except BaseException:
        token = reserve.token(wait_s=CALL_TIMEOUT_S)
        reserve.stop()
        if token:
            # Interrupted in the middle of acquire, the place may be ours with its name unheard:
            # the token names it as long as the reservation stands.
            Lease(client, place or "+" + token, token, None).release()
        raise
    return Lease(client, place, token, bench)


def bench_from_env(text, place):
    import yaml

    targets = (yaml.safe_load(text) or {}).get("targets") or {}
    if place not in targets:
        raise FarmError("place %s: labgrid-client env gave no target for it" % place)
    return bench_of(resources_of(targets[place].get("resources") or []), "place %s" % place)
