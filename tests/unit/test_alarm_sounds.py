"""Alarm sounds and the main loop's sleep: a board that never sleeps lets no pump time pass."""

from .helpers import Bench


def test_an_alarm_due_while_another_pattern_plays_does_not_keep_the_board_awake(tmp_path):
    bench = Bench(tmp_path / "data").infusing()
    app, clock = bench.app, bench.hw.clock
    app.sound(clock.now)  # nothing due yet
    app.pump.alarms.raise_("MEMORY_REPAIRED", clock.now)
    app.sound(clock.now)  # it plays now
    assert app.player.next_ms == clock.now + 500
    # A second alarm falls due while the first pattern still plays.
    app.pump.alarms.raise_("LOW_RESERVOIR", clock.now)
    assert app.pump.alarms.next_sound_ms() == clock.now
    # The loop sleeps until the buzzer is free; then the second pattern is due and plays.
    assert app.next_wake_ms() == clock.now + 500
    clock.now += 500
    app.sound(clock.now)
    assert app.next_wake_ms() == clock.now + 1000  # the rest after a pattern
    clock.now += 1000
    app.sound(clock.now)
    assert app.player.next_ms == clock.now + 500  # LOW_RESERVOIR's single tone
