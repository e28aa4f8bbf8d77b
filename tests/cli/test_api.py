"""The Python API (pumpsim.start, pumpsim.PumpClient, pumpsim.Rig, pumpsim.stop), as the package's
docstring shows it: a board started from Python, programmed, and measured by its rig."""

import pytest

import pumpsim
from pumpsim.errors import UsageError
from pumpsim.hil.verify import check_delivered, continuous_volume_nl

DAY_MS = 86_400_000


def test_the_documented_example_runs_a_day_of_therapy(tmp_path):
    board = pumpsim.start(tmp_path / "pump1")
    try:
        assert set(board) >= {"port", "rig", "key", "dir", "pid"}
        key = bytes.fromhex(open(board["key"]).read())
        with pumpsim.PumpClient.open(board["port"], key=key) as pump, pumpsim.Rig.open(board["rig"]) as rig:
            pump.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
            start = rig.measure()
            pump.program_continuous(daily_dose_ug=500)
            rig.advance(DAY_MS)
            end = rig.measure()
            assert pump.status()["fw"] == pumpsim.__version__
        check_delivered(end["delivered_nl"] - start["delivered_nl"],
                        continuous_volume_nl(500, 2000, end["clock_ms"] - start["clock_ms"]), end["stroke_nl"])
    finally:
        assert pumpsim.stop(tmp_path / "pump1") is True
    assert pumpsim.stop(tmp_path / "pump1") is False  # none runs there now


def test_an_unknown_target_or_a_wrong_option_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(UsageError, match="one of emu, rp2040js, bench"):
        pumpsim.start(tmp_path / "x", target="qemu")
    with pytest.raises(UsageError, match="real time"):
        pumpsim.start(tmp_path / "x", target="rp2040js", clock="stepped")
    assert not (tmp_path / "x").exists()


def test_the_api_is_what_the_package_says_it_is():
    assert sorted(pumpsim.__all__) == ["PumpClient", "Rig", "__version__", "start", "stop"]
    for name in pumpsim.__all__:
        assert getattr(pumpsim, name) is not None
    with pytest.raises(AttributeError):
        pumpsim.Pump  # noqa: B018 - not part of it
