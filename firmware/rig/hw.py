# The rig's hardware on a Raspberry Pi Pico, by rig signal (boards/rig_pico/pins.csv):
# - MOTOR_STEP's rising edges counted by a PIO state machine (none missed to well past 10 kHz:
#   two instructions an edge at 125 MHz), read as the complement of its X register;
# - MOTOR_FEEDBACK driven by a second state machine at each rising edge, from the outcome the
#   rig decided beforehand (rig/core.py), so the pump reads it 20 µs later without waiting on
#   Python;
# - the buzzer's edges counted the same way, read every gate;
# - the battery DAC: PWM at 100 kHz into an RC filter (or an MCP4725 on I2C);
# - VSYS through a load switch (high: on), and the DUT's RUN pin (open drain: low resets).
# pyright: reportUndefinedVariable=false
# (PIO assembly: wait, jmp, pin, x, ... are names the @rp2.asm_pio decorator gives its function
# while it assembles it; they exist nowhere else, so no stub can declare them.)
import time

import machine
import rp2
from micropython import const

_PWM_HZ = const(100_000)
# The DAC's full scale: the Pico's 3.3 V rail (the PWM's high level, the MCP4725's supply).
FULL_SCALE_MV = const(3300)


@rp2.asm_pio()
def _count_edges():
    # X counts down once per rising edge: wait for the pin high, then for it low again.
    label("loop")
    wait(1, pin, 0)
    jmp(x_dec, "low")
    label("low")
    wait(0, pin, 0)
    jmp("loop")


# OUT shifts right: the outcome is bit 0 of the word put (shifting left, the default, would
# drive bit 31, always 0, and the pump would read every stroke as stalled).
@rp2.asm_pio(out_init=rp2.PIO.OUT_LOW, out_shiftdir=rp2.PIO.SHIFT_RIGHT, autopull=False)
def _drive_feedback():
    # At each rising edge the newest outcome (the FIFO's, else the last one kept in X).
    wait(1, pin, 0)
    pull(noblock)
    mov(x, osr)
    out(pins, 1)
    wait(0, pin, 0)


# The instructions exec'd from Python, encoded once: exec() of a string runs the PIO assembler
# in Python on every call (milliseconds on a Pico), and the counter is read every poll.
_MOV_ISR_X = rp2.asm_pio_encode("mov(isr, x)", 0)
_PUSH = rp2.asm_pio_encode("push()", 0)
_PULL_NOBLOCK = rp2.asm_pio_encode("pull(noblock)", 0)


def _read_count(sm):
    sm.exec(_MOV_ISR_X)
    sm.exec(_PUSH)
    return (-sm.get()) & 0xFFFFFFFF


class Hardware:
    def __init__(self, pins, mcp4725=False):
        step = machine.Pin(pins["pulse_counter"], machine.Pin.IN, machine.Pin.PULL_DOWN)
        self._steps = rp2.StateMachine(0, _count_edges, in_base=step)
        self._steps.exec("set(x, 0)")
        self._steps.active(1)
        feedback = machine.Pin(pins["feedback_drive"], machine.Pin.OUT, value=1)
        self._feedback = rp2.StateMachine(1, _drive_feedback, in_base=step, out_base=feedback)
        self._feedback.active(1)
        self._feedback_level = None
        buzzer = machine.Pin(pins["microphone"], machine.Pin.IN, machine.Pin.PULL_DOWN)
        self._buzzer = rp2.StateMachine(2, _count_edges, in_base=buzzer)
        self._buzzer.exec("set(x, 0)")
        self._buzzer.active(1)
        self._buzzer_last = 0
        self._power = machine.Pin(pins["power_switch"], machine.Pin.OUT, value=1)
        self._run = machine.Pin(pins["dut_run"], machine.Pin.OPEN_DRAIN, value=1)
        if mcp4725:
            self._i2c = machine.I2C(0, sda=machine.Pin(pins["dac_sda"]), scl=machine.Pin(pins["dac_scl"]))
            self.battery_u16 = self._mcp4725
        else:
            self._pwm = machine.PWM(machine.Pin(pins["battery_dac"]), freq=_PWM_HZ, duty_u16=0)
            self.battery_u16 = self._pwm.duty_u16

    def counter_raw(self):
        return _read_count(self._steps)

    def buzzer_edges(self):
        """Rising edges on the buzzer line since the last call."""
        raw = _read_count(self._buzzer)
        edges = (raw - self._buzzer_last) & 0xFFFFFFFF
        self._buzzer_last = raw
        return edges

    def feedback(self, level):
        # The FIFO holds at most the one outcome for the next edge: put on every poll, it would
        # fill in four polls without an edge and put() would block the rig for ever. A newer
        # outcome replaces a queued one (an exec'd pull drops it; X keeps the last one used).
        if level == self._feedback_level:
            return
        if self._feedback.tx_fifo():
            self._feedback.exec(_PULL_NOBLOCK)
        self._feedback.put(level)
        self._feedback_level = level

    def power(self, on):
        self._power.value(on)

    def run_pin(self, level):
        self._run.value(level)

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def _mcp4725(self, duty):
        code = duty >> 4  # 12 bits, fast mode write
        self._i2c.writeto(0x60, bytes((code >> 8, code & 0xFF)))
