# What the rig Pico runs: the rig program and the generated board configuration.
metadata(description="pumpsim rig on a second Raspberry Pi Pico (RP2040)")
package("rig", base_path="../../firmware")
