# The rig Pico's main.py: the rig on its pins (boards/rig_pico/pins.csv), measuring a pump whose
# strokes are STROKE_NL each.
import boardcfg
from rig import app
from rig.hw import FULL_SCALE_MV, Hardware

app.run(Hardware(boardcfg.PINS, "mcp4725" in boardcfg.FEATURES), FULL_SCALE_MV, boardcfg.STROKE_NL)
