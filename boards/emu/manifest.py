# What the virtual board runs: the firmware package and the generated board configuration.
metadata(description="pumpsim virtual board")
package("pump", base_path="../../firmware")
module("main.py", base_path="../../firmware")
