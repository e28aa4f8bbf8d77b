# What a Raspberry Pi Pico runs: the firmware package and the generated board configuration.
metadata(description="pumpsim on Raspberry Pi Pico (RP2040)")
package("pump", base_path="../../firmware")
module("main.py", base_path="../../firmware")
