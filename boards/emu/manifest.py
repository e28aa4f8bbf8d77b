# What the virtual board runs: the firmware package and the generated board configuration.
metadata(description="pumpsim virtual board", version="0.1.0")
package("pump", base_path="../../firmware")
module("main.py", base_path="../../firmware")
