"""pytest plugin of pumpsim (the `pumpsim` pytest11 entry point); docs/testing.md.

Fixtures: `bench` is a pump with its rig, `pump` the pump's authenticated client and `rig` the
rig, all of one board of the test's own. By default the board is a virtual board freshly booted
in a temporary folder with the firmware deployed by mpremote; --pumpsim-target chooses another
target; with --pumpsim-port, --pumpsim-key and --pumpsim-rig, a physical board on its bench; with
--pumpsim-place (or --lg-env), the bench of a labgrid place (hil/farmplugin.py, docs/farm.md).
Tests are written in pump time (`bench.wait_ms`, `bench.advance_days`), so the same test runs
against any of them.

A test declares what it needs of the rig with `@pytest.mark.pumpsim_needs("stepped-clock",
"power-cut", ...)` and the pump time it moves with `@pytest.mark.pumpsim_days(n)`. A target that
cannot do them skips the test with the reason; a test that asks the rig for more than it declared
fails, so that the declarations stay true.
"""

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from pumpsim.hil.rig import DAY_MS
from pumpsim.hil.testbench import NEEDS, Bench, DeclaredRig, unable  # noqa: F401 - the plugin's API
from pumpsim.targets.emu.flashfs import IMAGE as FLASH_IMAGE

pytest_plugins = ("pumpsim.hil.farmplugin",)

TARGETS = ("emu", "rp2040js", "bench")
# The board each target runs; a physical bench is a Pico unless --pumpsim-board says otherwise.
BOARD_OF_TARGET = {"emu": "emu", "rp2040js": "rpi_pico", "bench": "rpi_pico"}
PHYSICAL_BOARD = "rpi_pico"
# A Pico in the emulator runs Python at a fraction of silicon's speed on a busy machine.
RP2040JS_TIMEOUT_S = 60.0

# Each setting: its option's help. The same names work in the ini settings (pytest.ini,
# [tool.pytest.ini_options] of pyproject.toml), which the command line overrides.
SETTINGS = {
    "pumpsim_target": "what starts each test's board: emu (the MicroPython unix port, stepped time; the default), "
                      "rp2040js (official MicroPython on an emulated RP2040, real time) or bench (two emulated "
                      "Picos, the DUT and the rig Pico running boards/rig_pico, wired as on a desk)",
    "pumpsim_board": "the board under test, a folder of boards/ (default: emu for the emu target, rpi_pico for "
                     "rp2040js, bench and a physical bench)",
    "pumpsim_port": "serial port of a physical board (default: a board the target starts)",
    "pumpsim_key": "file holding that board's key, in hex",
    "pumpsim_rig": "URL of the physical rig beside that board (a serial port, socket://HOST:PORT)",
    "pumpsim_micropython": "micropython binary (the unix port) for the emu target",
}


def pytest_addoption(parser):
    group = parser.getgroup("pumpsim", "pumpsim hardware-in-the-loop")
    for name, text in SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        if name == "pumpsim_target":
            group.addoption(flag, choices=TARGETS, default=None, help=text)
        else:
            group.addoption(flag, default=None, help=text)
        parser.addini(name, "the default of " + flag, default=None)


def setting(config, name):
    """A setting from the command line, else from the ini settings, else None."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name)
    return value or None


def target_of(config):
    target = setting(config, "pumpsim_target") or "emu"
    if target not in TARGETS:
        raise pytest.UsageError("pumpsim_target %r: one of %s" % (target, ", ".join(TARGETS)))
    return target


def given_bench(config):
    """True when the run is given its bench (a physical one, or a labgrid place's) rather than
    starting boards of its own."""
    return bool(setting(config, "pumpsim_port") or config.getoption("pumpsim_place")
                or config.getoption("lg_env", None))


def board_of(config):
    """The board under test: the setting, checked against what the target can run; None for a
    given bench without the setting (its board then says what it is)."""
    from pumpsim import deploy

    board = setting(config, "pumpsim_board")
    if board is not None and board not in deploy.boards("pump"):
        raise pytest.UsageError("pumpsim_board %r: one of %s" % (board, ", ".join(deploy.boards("pump"))))
    if given_bench(config):
        return board
    default = BOARD_OF_TARGET[target_of(config)]
    if board not in (None, default):
        raise pytest.UsageError("--pumpsim-target %s runs the %s board, not %s" % (target_of(config), default, board))
    return default


def board_features(board):
    from pumpsim import deploy

    return deploy.board_config(board)[0].get("features", [])


def _farm_bench(config):
    from pumpsim.hil import farmplugin

    return farmplugin.bench_of(config)


def pytest_configure(config):
    config.addinivalue_line("markers", "pumpsim_needs(*names): what the test needs of its rig (%s)"
                            % ", ".join(NEEDS))
    config.addinivalue_line("markers", "pumpsim_days(n): the pump time the test moves, in days (may be "
                            "fractional); a real-time target skips a test whose days do not fit its timeout")
    target_of(config), board_of(config)  # a wrong setting is a usage error before any test


# -- what the run is: the header and the JUnit properties -------------------------------------


def git_commit():
    """The commit of the checkout the harness runs from ("-dirty" with changes), or "unknown"."""
    try:
        result = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                                cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def micropython_version(config):
    """The MicroPython version the target runs, or None when only the board can say."""
    from pumpsim.errors import PumpsimError

    target = target_of(config)
    if given_bench(config):
        return None
    try:
        if target == "emu":
            from pumpsim.targets.emu import unixport

            return unixport.interpreter_version(unixport.find_micropython(setting(config, "pumpsim_micropython")))
        from pumpsim.targets.rp2040js import supervisor as rp2040js

        return rp2040js.firmware_version(rp2040js.find_firmware())
    except PumpsimError:
        return None


def pytest_report_header(config):
    from pumpsim import __version__

    said = "as the board says (JUnit property %s)"
    if setting(config, "pumpsim_port"):
        where = "a physical bench at %s" % setting(config, "pumpsim_port")
    elif given_bench(config):
        where = "a labgrid place's bench"
    else:
        where = "target %s" % target_of(config)
    return ["pumpsim: %s, board %s, firmware %s, MicroPython %s, commit %s"
            % (where, board_of(config) or said % "pumpsim_board", __version__,
               micropython_version(config) or said % "micropython_version", git_commit())]


_COMMIT = pytest.StashKey()


def run_properties(config):
    """What every test's JUnit record carries about the run."""
    if _COMMIT not in config.stash:
        config.stash[_COMMIT] = git_commit()
    if setting(config, "pumpsim_port"):
        target = "physical"
    elif given_bench(config):
        target = "labgrid"
    else:
        target = target_of(config)
    return {"pumpsim_target": target, "git_commit": config.stash[_COMMIT]}


def declared_needs(node):
    names = set()
    for mark in node.iter_markers("pumpsim_needs"):
        unknown = set(mark.args) - set(NEEDS)
        if unknown:
            raise pytest.UsageError("%s: unknown pumpsim_needs %s (known: %s)"
                                    % (node.nodeid, ", ".join(sorted(unknown)), ", ".join(NEEDS)))
        names.update(mark.args)
    return names


def declared_days(node):
    """The test's pumpsim_days, the closest one (None when it has none)."""
    mark = node.get_closest_marker("pumpsim_days")
    if mark is None:
        return None
    if len(mark.args) != 1 or isinstance(mark.args[0], bool) or not isinstance(mark.args[0], (int, float, str)):
        raise pytest.UsageError("%s: pumpsim_days takes one number of days, not %r" % (node.nodeid, mark.args))
    try:
        days = Fraction(str(mark.args[0]))
    except ValueError:
        raise pytest.UsageError("%s: pumpsim_days(%r) is no number of days" % (node.nodeid, mark.args[0])) from None
    if days < 0:
        raise pytest.UsageError("%s: pumpsim_days(%s) is negative" % (node.nodeid, mark.args[0]))
    return days


def test_timeout_s(node, config):
    """pytest-timeout's limit for this test (its marker, else the ini setting), None when none."""
    mark = node.get_closest_marker("timeout")
    if mark is not None and mark.args:
        return float(mark.args[0])
    value = config.getini("timeout")
    return float(value) if value else None


def skip_unless_board_can(board, needs):
    """Skip what the board cannot do at all, whatever its rig (before it boots, when known)."""
    missing = unable(needs, board_features(board))
    if missing:
        pytest.skip("board %s cannot do what the test needs: %s (its board.json has no %s)"
                    % (board, ", ".join(missing), " or ".join(f for need in missing for f in _features(need))))


def skip_unless_time(node, config, days, realtime, where):
    """Skip a test of pumpsim_days whose days would take longer than its timeout in real time."""
    if days is None or not realtime:
        return
    timeout_s = test_timeout_s(node, config)
    if timeout_s is None or days * DAY_MS / 1000 > timeout_s:
        pytest.skip("the test moves %s pump days; %s runs in real time, where they take %s days of wall time "
                    "(its timeout is %s)" % (_days(days), where, _days(days),
                                             "none" if timeout_s is None else "%g s" % timeout_s))


def _features(need):
    from pumpsim.hil.testbench import NEED_FEATURES

    return NEED_FEATURES[need]


def _days(days):
    return ("%.9f" % float(days)).rstrip("0").rstrip(".")


# -- boards -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pumpsim_image(tmp_path_factory, request):
    """The board's flash after one real deploy with mpremote, made once per run (xdist's workers
    share it) and copied for every board."""
    target = target_of(request.config)
    if target in ("rp2040js", "bench"):
        from pumpsim.errors import PumpsimError
        from pumpsim.targets.rp2040js import supervisor as rp2040js

        try:
            rp2040js.find_firmware(), rp2040js.find_bootrom()
        except PumpsimError as exc:
            pytest.skip("--pumpsim-target %s: %s" % (target, exc))
        directory = _once_per_run(tmp_path_factory, "pumpsim-rp2040js-image", rp2040js.make_image)
        return directory / "flash.bin", bytes.fromhex((directory / "host.key").read_text().strip())
    from pumpsim.hil.drive import make_image

    def build(directory):
        _, key = make_image(directory, setting(request.config, "pumpsim_micropython"))
        (directory / "host.key").write_text(key.hex() + "\n")

    directory = _once_per_run(tmp_path_factory, "pumpsim-emu-image", build)
    return directory / FLASH_IMAGE, bytes.fromhex((directory / "host.key").read_text().strip())


@pytest.fixture(scope="session")
def pumpsim_rig_image(tmp_path_factory):
    """The rig Pico's flash: a blank emulated Pico given boards/rig_pico by mpremote, once per run."""
    from pumpsim.targets.rp2040js import bench

    return _once_per_run(tmp_path_factory, "pumpsim-rig-pico-image", bench.make_rig_image) / "flash.bin"


def _once_per_run(tmp_path_factory, name, build):
    """A folder build(folder) fills once per test run: xdist workers share it through a lock."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base
    directory = shared / name
    with open(shared / (name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "ready").exists():
            shutil.rmtree(directory, ignore_errors=True)
            build(directory)
            (directory / "ready").write_text("")
    return directory


def _start_board(request, directory):
    """Boot a board of the target's in directory from the run's image: (info, key)."""
    from pumpsim.targets.emu import supervisor

    target = target_of(request.config)
    flash, key = request.getfixturevalue("pumpsim_image")
    directory.mkdir()
    (directory / "host.key").write_text(key.hex() + "\n")
    if target == "rp2040js":
        from pumpsim.targets.rp2040js import supervisor as rp2040js

        shutil.copy(flash, directory / "flash.bin")
        return rp2040js.start(directory), key
    if target == "bench":
        from pumpsim.targets.rp2040js import bench as emulated_bench

        rig_flash = request.getfixturevalue("pumpsim_rig_image")
        (directory / emulated_bench.RIG_DIR).mkdir()
        shutil.copy(flash, directory / "flash.bin")
        shutil.copy(rig_flash, directory / emulated_bench.RIG_DIR / "flash.bin")
        return emulated_bench.start(directory), key
    shutil.copy(flash, directory / FLASH_IMAGE)
    return supervisor.start(directory, micropython=setting(request.config, "pumpsim_micropython")), key


def _given_bench(request, found, needs, days):
    """A bench the run was given (a farm's place, or a physical one): boards are not ours to start."""
    import fcntl

    from pumpsim.hil import farmplugin

    # One bench per run: xdist's workers take turns on it.
    with open(farmplugin.turn_file(request.getfixturevalue("tmp_path_factory")), "w") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        bench = Bench(found["port"], found["rig"], found["key"], declared=needs, nodeid=request.node.nodeid,
                      days=days)
        bench.place = found.get("place")
        try:
            bench.skip_unless_able(needs)
            skip_unless_time(request.node, request.config, days, bench.raw_rig.time()["clock"] != "stepped",
                             "this bench")
            yield bench
        finally:
            bench.close()


def _physical(config):
    port = setting(config, "pumpsim_port")
    if not port:
        return None
    key_file, rig_url = setting(config, "pumpsim_key"), setting(config, "pumpsim_rig")
    if not (key_file and rig_url):
        pytest.skip("a physical bench needs --pumpsim-key and --pumpsim-rig too")
    return {"port": port, "rig": rig_url, "key": bytes.fromhex(Path(key_file).read_text().strip())}


_BENCH = pytest.StashKey()


@pytest.fixture
def bench(request, tmp_path):
    """A pump and its rig, of a board of this test's own (docs/testing.md)."""
    from pumpsim.hil import evidence

    config = request.config
    needs, days, board = declared_needs(request.node), declared_days(request.node), board_of(config)
    if board is not None:
        skip_unless_board_can(board, needs)
    if not given_bench(config):
        skip_unless_time(request.node, config, days, "virtual_clock" not in board_features(board), "board %s" % board)
    found = _farm_bench(config) or _physical(config)
    if found:
        benches = _given_bench(request, found, needs, days)
    else:
        benches = _own_bench(request, tmp_path, needs, days)
    with evidence.Recording(request.node) as recording:
        for bench in benches:
            request.node.stash[_BENCH] = bench
            bench.evidence_dir = tmp_path / "evidence"
            recording.bench = bench
            yield bench
            recording.finish(config, run_properties(config))


def _own_bench(request, tmp_path, needs, days):
    from pumpsim.targets.emu import supervisor

    directory = tmp_path / "board"
    info, key = _start_board(request, directory)
    bench = Bench(info["port"], info["rig"], key, directory, declared=needs, nodeid=request.node.nodeid, days=days)
    if target_of(request.config) != "emu":
        bench.client_timeout_s = bench.raw_rig.timeout_s = RP2040JS_TIMEOUT_S
    try:
        bench.skip_unless_able(needs)
        if target_of(request.config) != "emu":
            bench.wait_for_pump()
        yield bench
    finally:
        bench.close()
        supervisor.stop(directory)


@pytest.fixture
def pump(bench):
    """The pump's client on its serial line, authenticated with the board's key."""
    return bench.client()


@pytest.fixture
def rig(bench):
    """The rig beside the pump: what it measures, and what the test declared it may do."""
    return bench.rig


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the board's evidence: its log, the pump's event log and
    what the rig was asked and answered (hil/evidence.py)."""
    outcome = yield
    report = outcome.get_result()
    bench = item.stash.get(_BENCH, None)
    if bench is not None and report.failed and call.when in ("call", "setup"):
        from pumpsim.hil import evidence

        evidence.attach(item, report, bench)
