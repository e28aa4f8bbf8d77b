"""What a test or a scenario may need of its rig, by the names a rig's `hello` lists as `can`
(docs/testing.md), and what each asks of the board itself. Imports nothing of pytest: the CLI's
scenarios (hil/scenario.py) check the same needs."""

# What a test may need of its rig.
NEEDS = {
    "stepped-clock": "pump time moves only when the test moves it (`advance`, `clock`)",
    "reset": "a hard reset of the board, power kept",
    "power-cut": "the board's power cut and restored",
    "power-cut-mid-write": "the power cut in the middle of a given write to the records (FRAM, or flash)",
    "motor-stall": "the motor's feedback driven: stalled, intermittent, the next N attempts failing",
    "battery": "the battery voltage the board's ADC reads",
    "tones": "the buzzer's tones recorded",
    "hang": "the firmware made to hang, so that its watchdog must act",
    "corrupt-flash": "the board's saved records or event log corrupted",
    "volatile-rtc": "the board's RTC made to restart at every power-up, as a Pico's does",
    "boot-count": "the board's boots counted by the rig (a rig Pico sees only the DUT's pins, not its boots)",
}
# What a need asks of the board itself, by the features of its board.json (any one of them):
# a board without them cannot do it whatever its rig, so the test skips before a board boots.
NEED_FEATURES = {
    "stepped-clock": ("virtual_clock",),  # silicon's clock runs on its own
    "battery": ("adc",),
    "tones": ("pwm",),
    "hang": ("wdt",),  # a hang is a test of the watchdog
    "volatile-rtc": ("rtc", "virtual_clock"),
}


def unable(needs, features):
    """The needs a board with these features cannot meet, sorted."""
    return sorted(need for need in needs if need in NEED_FEATURES
                  and not set(NEED_FEATURES[need]) & set(features))
