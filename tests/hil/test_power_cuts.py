"""Power cuts at 200 random moments, half of them in the middle of a write to the records: the
firmware's count never falls behind the rig's nor runs ahead by more than one stroke, the therapy
resumes every time, and the event log stays whole. On the FRAM, and on a board without one, whose
records are littlefs files on its flash, torn at its page boundaries."""

import random
import shutil

import pytest

from pumpsim.hil.plugin import Bench
from pumpsim.hil.verify import check_delivered, daily_profile_volume_nl
from pumpsim.targets.emu import supervisor
from pumpsim.targets.emu.flashfs import IMAGE

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

STEPS = [(0, 600), (8 * 60, 450), (20 * 60, 600)]
CUTS = 200


@pytest.fixture(params=["fram", "flash"])
def records_on(request, tmp_path):
    """The bench, its records on the FRAM; or a board built without the FRAM."""
    if request.param == "fram":
        yield request.param, request.getfixturevalue("bench")
        return
    image, key = request.getfixturevalue("pumpsim_image")
    directory = tmp_path / "bare"
    directory.mkdir()
    shutil.copy(image, directory / IMAGE)
    (directory / "host.key").write_text(key.hex() + "\n")
    info = supervisor.start(directory, fram=False)
    bench = Bench(info["port"], info["rig"], key, directory)
    try:
        yield request.param, bench
    finally:
        bench.close()
        supervisor.stop(directory)


@pytest.mark.pumpsim_needs("power-cut", "power-cut-mid-write")
def test_200_power_cuts_lose_nothing(records_on):
    where, bench = records_on
    rng = random.Random(20261124)
    client = bench.client()
    client.refill(volume_ul=40_000, concentration_ug_per_ml=2000)
    client.program_flex(STEPS)
    start_ms = bench.rig.time()["clock_ms"]
    during_writes = 0
    for cut in range(CUTS):
        before = bench.rig.measure()
        if rng.random() < 0.5:
            # during the 1st to 4th flash write from now: a stroke's record, an alarm, a log entry
            bench.rig.power_cycle(at_write=rng.randint(1, 4))
            while bench.rig.measure()["power_cuts"] == before["power_cuts"]:
                bench.advance_ms(rng.randint(100_000, 400_000))
            during_writes += 1
        else:
            bench.advance_ms(rng.randint(1, 400_000))
            bench.rig.power_cycle()
        after = bench.rig.measure()
        assert after["power_cuts"] == before["power_cuts"] + 1
        status = client.status()
        rig_nl, stroke_nl = after["delivered_nl"], after["stroke_nl"]
        assert 0 <= status["delivered_nl"] - rig_nl <= stroke_nl, (cut, status["delivered_nl"], rig_nl)
        assert abs(status["reservoir_nl"] - (40_000_000 - rig_nl)) <= stroke_nl, cut
        assert status["state"] == "infusing" and status["mode"] == "flex", cut
    final = bench.rig.measure()
    assert final["power_cuts"] == CUTS and during_writes >= CUTS // 3
    # The therapy went on: what the rig counted never exceeds the programme's integral (missed
    # volume while the power was off is not caught up), and most of it was delivered.
    programmed_nl = daily_profile_volume_nl(STEPS, 2000, start_ms, final["clock_ms"])
    assert final["delivered_nl"] <= programmed_nl + final["stroke_nl"]
    assert final["delivered_nl"] >= programmed_nl * 8 / 10
    bench.advance_days(1)
    one_day = bench.rig.measure()
    check_delivered(one_day["delivered_nl"] - final["delivered_nl"],
                    daily_profile_volume_nl(STEPS, 2000, final["clock_ms"], one_day["clock_ms"]),
                    2 * one_day["stroke_nl"], "the day after the cuts")
    events = client.log()
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "holes in the event log"
    assert len(events) == 128
    boots = [e for e in events if e["event"] == "boot"]
    assert boots and all(e["cause"] == "power-on" for e in boots)
    assert client.status()["boots"] == final["boots"]
    assert client.status()["nvram"] == where
