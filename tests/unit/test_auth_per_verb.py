"""Every verb that docs/protocol.md marks "auth: yes" is refused without a MAC, and the refusal
changes nothing: not the therapy, not the flash, and the application keeps running."""

import re
from pathlib import Path

import pytest

from .helpers import Bench

ROOT = Path(__file__).resolve().parents[2]
# A request each verb would carry out if it were signed.
PAYLOADS = {
    "refill": {"volume_ul": 40000, "concentration_ug_per_ml": 2000},
    "program": {"mode": "continuous", "daily_dose_ug": 900},
    "bolus": {"dose_ug": 50, "minutes": 10},
    "config": {"low_reservoir_ul": 5000, "tubing_ul": 100},
    "maintenance": {},
}


def verbs_needing_auth():
    text = (ROOT / "docs" / "protocol.md").read_text()
    return re.findall(r"^\| `([\w-]+)` \| yes \|", text, re.M)


def verbs_of_the_protocol():
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("## Requests", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `([\w-]+)` \| (?:yes|no) \|", table, re.M))


def test_the_protocol_names_every_verb_and_the_authenticated_ones_as_the_firmware_has_them(tmp_path):
    from pumpsim.client import AUTHENTICATED

    verbs = Bench(tmp_path / "data").app.verbs
    assert verbs_of_the_protocol() == set(verbs)
    assert set(verbs_needing_auth()) == {v for v, (_, auth) in verbs.items() if auth} == set(AUTHENTICATED)


@pytest.mark.parametrize("verb", verbs_needing_auth())
def test_an_unsigned_request_is_refused_and_changes_nothing(tmp_path, verb):
    bench = Bench(tmp_path / "data").infusing()
    therapy, flash = bench.therapy(), bench.flash()
    kind, reply = bench.request(verb, PAYLOADS.get(verb, {}), sign=False)
    assert kind == "err" and reply["code"] == "E_AUTH"
    assert bench.therapy() == therapy and bench.flash() == flash
    assert bench.app.running
