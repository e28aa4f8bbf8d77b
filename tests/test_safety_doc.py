"""docs/safety.md is a contract: every hazard row names tests, and every named test exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def hazard_rows():
    text = (ROOT / "docs" / "safety.md").read_text()
    section = text.split("## Hazards", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| hazard")
            and not line.startswith("| ---")]


def test_every_hazard_names_an_existing_test():
    rows = hazard_rows()
    assert len(rows) >= 15
    for row in rows:
        refs = re.findall(r"(tests/[\w/]+\.py)::(\w+)", row)
        assert refs, "no test named in: " + row[:60]
        for path, name in refs:
            source = (ROOT / path).read_text()
            assert re.search(r"^def %s\(" % name, source, re.M), "%s::%s does not exist" % (path, name)


def alarm_rows():
    text = (ROOT / "docs" / "safety.md").read_text()
    section = text.split("## Alarms", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `")]
    return {row[0].strip("`"): row[1:5] for row in rows}


def test_the_alarm_table_of_the_doc_is_the_firmware_s():
    import sys

    sys.path.insert(0, str(ROOT / "firmware"))
    from pump import alarms

    doc = alarm_rows()
    missing, extra = set(alarms.PRIORITY) - set(doc), set(doc) - set(alarms.PRIORITY)
    assert not missing, "alarms the table leaves out: %s" % sorted(missing)
    assert not extra, "rows of no alarm of the firmware: %s" % sorted(extra)
    a = alarms.Alarms()
    for code, (priority, pattern, repeats, stops) in doc.items():
        assert priority == alarms.PRIORITY[code], code
        assert pattern == alarms.pattern_of(code), code
        assert repeats == "%d min" % (a.repeat_ms(code) // 60000), code
        assert stops == ("yes" if code in alarms.CRITICAL else "no"), code
