"""The emulated bench is wired from the same files as the real one: boards/rpi_pico/wiring.csv and
both boards' pins.csv (host/targets/rp2040js/bench.py); a row it does not understand is an error,
never a wire left out."""

import csv
import shutil

import pytest

from pumpsim.targets.rp2040js.bench import BOARD, RIG_BOARD, PICO_RAIL_MV, TargetError, bench_wiring


def pins(board_dir):
    with open(board_dir / "pins.csv", newline="") as f:
        return {row["role"]: int(row["pin"]) for row in csv.DictReader(f)}


def test_every_signal_of_wiring_csv_is_a_wire_between_the_right_pins():
    dut, rig = pins(BOARD), pins(RIG_BOARD)
    wires = {(w["kind"], w["from"], w["from_pin"]): w for w in bench_wiring()}
    # The DUT drives its step and buzzer lines into the rig's counter and microphone.
    step = wires[("wire", "dut", dut["MOTOR_STEP"])]
    assert (step["to"], step["to_pin"]) == ("rig", rig["pulse_counter"])
    buzzer = wires[("wire", "dut", dut["BUZZER"])]
    assert (buzzer["to"], buzzer["to_pin"]) == ("rig", rig["microphone"])
    # The rig drives the motor's feedback, the DUT's supply and its RUN pin.
    feedback = wires[("wire", "rig", rig["feedback_drive"])]
    assert (feedback["to"], feedback["to_pin"]) == ("dut", dut["MOTOR_FEEDBACK"])
    assert wires[("power", "rig", rig["power_switch"])]["to"] == "dut"
    assert wires[("run", "rig", rig["dut_run"])]["to"] == "dut"
    # The battery DAC: RC 10 kΩ · 10 µF (100 ms) and the 1:2 divider into ADC0 (GP26).
    dac = wires[("rc_adc", "rig", rig["battery_dac"])]
    assert (dac["to"], dac["channel"], dac["tau_ms"], dac["divider"]) == ("dut", dut["BATTERY_ADC"] - 26, 100.0, 2)
    assert dac["high_mv"] == PICO_RAIL_MV
    assert len(wires) == 6  # ground is the only row that is no wire


def copy_boards(tmp_path, edit):
    dut_dir, rig_dir = tmp_path / "rpi_pico", tmp_path / "rig_pico"
    shutil.copytree(BOARD, dut_dir)
    shutil.copytree(RIG_BOARD, rig_dir)
    path = dut_dir / "wiring.csv"
    path.write_text(edit(path.read_text()))
    return dut_dir, rig_dir


@pytest.mark.parametrize("edit, message", [
    (lambda t: t + "spare_out,LED,,a wire the bench does not know\n", "rig signal 'spare_out' is not in"),
    (lambda t: t.replace("RC 10 kΩ · 10 µF then 1:2 divider", "a filter"), "battery_dac's via 'a filter'"),
    (lambda t: t.replace("1:2 divider", "divider"), "expected 'RC R kΩ · C µF then 1:N divider'"),
])
def test_a_row_the_bench_does_not_understand_is_an_error(tmp_path, edit, message):
    dut_dir, rig_dir = copy_boards(tmp_path, edit)
    with pytest.raises(TargetError, match=message):
        bench_wiring(dut_dir, rig_dir)


def test_a_known_rig_pin_with_no_wire_kind_is_an_error(tmp_path):
    dut_dir, rig_dir = copy_boards(tmp_path, lambda t: t + "dac_sda,LED,,the I2C DAC's data line\n")
    with pytest.raises(TargetError, match="does not know rig signal 'dac_sda'"):
        bench_wiring(dut_dir, rig_dir)


def test_the_time_constant_follows_the_parts_in_the_via_column(tmp_path):
    dut_dir, rig_dir = copy_boards(tmp_path, lambda t: t.replace("RC 10 kΩ · 10 µF", "RC 4.7 kΩ · 22 µF"))
    dac = [w for w in bench_wiring(dut_dir, rig_dir) if w["kind"] == "rc_adc"][0]
    assert dac["tau_ms"] == pytest.approx(103.4)
