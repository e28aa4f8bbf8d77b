"""The plugin's side of a labgrid farm (docs/farm.md): with --pumpsim-place (or --lg-env) the run
takes its bench from a labgrid place. The place is locked once per run, before any test, by the
process that runs the session (xdist's controller, whose workers are handed the bench and take
turns on it), and released when the run ends, however it ends."""

from importlib import metadata

import pytest

OPTIONS_HELP = {
    "--pumpsim-place": "a labgrid place to take the bench from: its name, or tags such as pumpsim=bench",
    "--pumpsim-place-timeout": "seconds to wait for that place to come free (default 600)",
    "--pumpsim-coordinator": "the labgrid coordinator, HOST:PORT (default: LG_COORDINATOR, else 127.0.0.1:20408)",
    "--pumpsim-labgrid-client": "the labgrid-client program (default: .venv-labgrid's, else the one on PATH)",
    "--lg-env": "a labgrid environment file: a RemotePlace, or a bench's resources (dut, rig, key)",
}
_STASH = pytest.StashKey()
_SIGTERM = pytest.StashKey()  # the SIGTERM handler the run had before it held a place
_WORKER_INPUT = "pumpsim_farm"


def _labgrid_plugin_installed():
    """labgrid's own pytest plugin, when it is in this environment, owns --lg-env."""
    return any(ep.value.startswith("labgrid.") for ep in metadata.entry_points(group="pytest11"))


def pytest_addoption(parser):
    group = parser.getgroup("pumpsim")
    group.addoption("--pumpsim-place", help=OPTIONS_HELP["--pumpsim-place"])
    group.addoption("--pumpsim-place-timeout", type=float, default=600.0, help=OPTIONS_HELP["--pumpsim-place-timeout"])
    group.addoption("--pumpsim-coordinator", help=OPTIONS_HELP["--pumpsim-coordinator"])
    group.addoption("--pumpsim-labgrid-client", help=OPTIONS_HELP["--pumpsim-labgrid-client"])
    if not _labgrid_plugin_installed():
        group.addoption("--lg-env", dest="lg_env", help=OPTIONS_HELP["--lg-env"])


def _wanted(config):
    """(place spec or None, bench or None, coordinator or None) from the options."""
    from pumpsim import farm

    spec, env_file = config.getoption("pumpsim_place"), config.getoption("lg_env", None)
    if spec and env_file:
        raise pytest.UsageError("--pumpsim-place and --lg-env: give one of them")
    from pumpsim.hil.plugin import setting

    if (spec or env_file) and setting(config, "pumpsim_port"):
        raise pytest.UsageError("--pumpsim-port is a bench of its own: not with --pumpsim-place or --lg-env")
    if not env_file:
        return spec, None, None
    try:
        kind, what, coordinator = farm.read_environment(env_file)
    except farm.FarmError as exc:
        raise pytest.UsageError(str(exc)) from None
    return (what, None, coordinator) if kind == "place" else (None, what, None)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    config = session.config
    if hasattr(config, "workerinput"):
        shared = config.workerinput.get(_WORKER_INPUT)
        if shared:
            config.stash[_STASH] = (None, {**shared, "key": bytes.fromhex(shared["key"])})
        return
    spec, bench, env_coordinator = _wanted(config)
    if bench is not None:
        config.stash[_STASH] = (None, {**bench, "place": None})
    if spec is None:
        return
    from pumpsim import farm

    _term_as_interrupt(config)
    try:
        client = farm.LabgridClient(farm.find_client(config.getoption("pumpsim_labgrid_client")),
                                    config.getoption("pumpsim_coordinator") or env_coordinator
                                    or farm.default_coordinator())
        lease = farm.lock(client, spec, config.getoption("pumpsim_place_timeout"))
    except BaseException as exc:
        _restore_term(config)
        if isinstance(exc, farm.FarmError):
            raise pytest.UsageError(str(exc)) from None
        raise
    config.stash[_STASH] = (lease, {**lease.bench, "place": lease.place})
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("pumpsim: bench from labgrid place %s" % lease.place)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    held = node.config.stash.get(_STASH, None)
    if held:
        node.workerinput[_WORKER_INPUT] = {**held[1], "key": held[1]["key"].hex()}


def _term_as_interrupt(config):
    """From the lock on, SIGTERM (what a CI job's timeout sends) ends the run as Ctrl-C does,
    cancelling the reservation or releasing the place, where by default it would end the process
    there and then, the place still held."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    config.stash[_SIGTERM] = signal.signal(signal.SIGTERM, interrupt)


def _restore_term(config):
    import signal

    if _SIGTERM in config.stash:
        signal.signal(signal.SIGTERM, config.stash[_SIGTERM])
        del config.stash[_SIGTERM]


def _release(config):
    lease, _ = config.stash.get(_STASH, (None, None))
    if lease is not None:
        config.stash[_STASH] = (None, None)
        try:
            lease.release()
        finally:
            _restore_term(config)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    _release(session.config)


def pytest_unconfigure(config):
    _release(config)


def bench_of(config):
    """The farm's bench for this run ({port, rig, key, place}), or None."""
    held = config.stash.get(_STASH, None)
    return held[1] if held else None


def turn_file(tmp_path_factory):
    """A lock file shared by every xdist worker of the run: tests on one bench take turns."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base
    return shared / "pumpsim-bench.lock"
