"""What a place, a labgrid environment and the farm's options say, read without labgrid: bad
ones are refused with a message that names what is wrong. docs/farm.md's table of options is
the plugin's."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pumpsim import farm
from pumpsim.hil import farmplugin

DOC = Path(__file__).resolve().parents[2] / "docs" / "farm.md"
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


@pytest.mark.parametrize("spec, filters", [
    ("bench-a", {"name": "bench-a"}),
    ("pumpsim=bench", {"pumpsim": "bench"}),
    ("pumpsim=bench, site=lund", {"pumpsim": "bench", "site": "lund"}),
])
def test_a_place_is_a_name_or_tags(spec, filters):
    assert farm.filters_of(spec) == filters


@pytest.mark.parametrize("spec, said", [
    ("", "give a place name or tags"),
    ("Pumpsim=bench", "'Pumpsim=bench' is not a tag"),
    ("bench-a pumpsim=bench", "'bench-a' is not a tag"),
    ("bench/a", "not a place name"),
])
def test_a_place_that_cannot_be_is_refused(spec, said):
    with pytest.raises(farm.FarmError, match=re.escape(said)):
        farm.filters_of(spec)


def test_places_and_their_tags_are_read_from_labgrid_client():
    text = ("Place 'bench-a':\n  tags: pumpsim=bench, site=lund\n  matches:\n    lab1/bench-a/*\n"
            "  acquired: None\nPlace 'spare':\n  matches:\n")
    places = farm.parse_places(text)
    assert places == {"bench-a": {"pumpsim": "bench", "site": "lund"}, "spare": {}}
    assert farm.matching(places, {"pumpsim": "bench"}) == ["bench-a"]
    assert farm.matching(places, {"name": "spare"}) == ["spare"]
    assert farm.matching(places, {"name": "bench"}) == []  # a name is whole, not labgrid's substring


@pytest.mark.parametrize("entry, url", [
    ({"cls": "NetworkSerialPort", "host": "h", "port": 4000}, "rfc2217://h:4000?ign_set_control"),
    ({"cls": "NetworkSerialPort", "host": "h", "port": 4000, "protocol": "raw"}, "socket://h:4000"),
    ({"cls": "RawSerialPort", "port": "/dev/ttyACM0"}, "/dev/ttyACM0"),
])
def test_serial_resources_become_pyserial_urls(entry, url):
    assert farm.serial_url(entry, "dut") == url


@pytest.mark.parametrize("entry, said", [
    ({"cls": "NetworkSerialPort", "host": "h", "port": None}, "gave no port"),
    ({"cls": "USBSerialPort", "match": {}}, "a USBSerialPort is not a serial port pumpsim can open"),
])
def test_serial_resources_pumpsim_cannot_open_are_named(entry, said):
    with pytest.raises(farm.FarmError, match=said):
        farm.serial_url(entry, "dut")


ENV_OF_A_PLACE = """targets:
  bench-a:
    resources:
    - NetworkSerialPort:
        name: dut
        port: 40775
        host: 127.0.0.1
    - PumpsimKey:
        name: key
        hex: %s
    - NetworkSerialPort:
        name: rig
        protocol: raw
        port: 34957
        host: 127.0.0.1
""" % KEY


def test_an_environment_listing_a_bench_is_that_bench(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text(ENV_OF_A_PLACE)
    assert farm.read_environment(env) == ("bench", {"port": "rfc2217://127.0.0.1:40775?ign_set_control",
                                                    "rig": "socket://127.0.0.1:34957",
                                                    "key": bytes.fromhex(KEY)}, None)
    assert farm.bench_from_env(ENV_OF_A_PLACE, "bench-a")["key"] == bytes.fromhex(KEY)


def test_an_environment_with_a_remote_place_names_it_and_its_coordinator(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("targets:\n  main:\n    resources:\n      RemotePlace:\n        name: bench-1\n"
                   "options:\n  coordinator_address: lab:20408\n")
    assert farm.read_environment(env) == ("place", "bench-1", "lab:20408")


@pytest.mark.parametrize("text, said", [
    (ENV_OF_A_PLACE.replace("name: rig", "name: rig2"), "has no rig"),
    (ENV_OF_A_PLACE.replace(KEY, "zz"), "holds no key in hex"),
    (ENV_OF_A_PLACE.replace("PumpsimKey", "Key"), "has no key"),
    (ENV_OF_A_PLACE + "  bench-b:\n    resources: []\n", "exactly one target"),
    ("targets: [unclosed\n", "--lg-env"),
])
def test_an_environment_that_is_not_a_bench_is_refused(tmp_path, text, said):
    env = tmp_path / "env.yaml"
    env.write_text(text)
    with pytest.raises(farm.FarmError, match=re.escape(said)):
        farm.read_environment(env)


def test_a_missing_labgrid_client_is_named():
    with pytest.raises(farm.FarmError, match="labgrid-client no-such-labgrid-client: no such program"):
        farm.find_client("no-such-labgrid-client")


def _run(tmp_path, *args):
    (tmp_path / "test_nothing.py").write_text("def test_nothing(bench):\n    pass\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                           "no:hypothesispytest", "test_nothing.py", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, said", [
    (("--pumpsim-place", "bench-a", "--pumpsim-port", "/dev/ttyACM0"), "--pumpsim-port is a bench of its own"),
    (("--pumpsim-place", "bench-a", "--lg-env", "env.yaml"), "give one of them"),
    (("--lg-env", "missing.yaml"), "--lg-env missing.yaml"),
    (("--pumpsim-place", "bench-a", "--pumpsim-labgrid-client", "no-such-client"), "no such program"),
])
def test_the_plugin_refuses_what_cannot_be_a_bench_before_any_test(tmp_path, args, said):
    result = _run(tmp_path, *args)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert said in result.stderr


class Options:
    """Stands for pytest's parser: records the plugin's addoption calls."""

    def __init__(self):
        self.options = {}

    def getgroup(self, name, description=""):
        assert name == "pumpsim"
        return self

    def addoption(self, *names, **kwargs):
        self.options.update({name: kwargs for name in names})


def _farm_options(labgrid_plugin, monkeypatch):
    monkeypatch.setattr(farmplugin, "_labgrid_plugin_installed", lambda: labgrid_plugin)
    parser = Options()
    farmplugin.pytest_addoption(parser)
    return parser.options


def test_lg_env_is_left_to_labgrid_s_own_plugin_when_it_is_installed(monkeypatch):
    assert "--lg-env" in _farm_options(False, monkeypatch)
    assert "--lg-env" not in _farm_options(True, monkeypatch)


def test_the_doc_s_table_of_options_is_the_plugin_s(monkeypatch):
    options = _farm_options(False, monkeypatch)
    rows = re.findall(r"^\| `(--[a-z-]+)[^|]*\| (.+?) \|$", DOC.read_text(), re.M)
    assert [name for name, _ in rows] == list(options)
    defaults = dict(rows)
    assert "(%g s)" % options["--pumpsim-place-timeout"]["default"] in defaults["--pumpsim-place-timeout"]
    assert farm.DEFAULT_COORDINATOR in defaults["--pumpsim-coordinator"]
    assert "`%s`" % farm.KEY_CLASS in DOC.read_text()
