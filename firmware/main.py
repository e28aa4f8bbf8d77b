# Runs at power-up on every board: the board's data, the hardware layer, then the pump.
import boardcfg
from pump import app, hal

app.run(hal.Hardware(boardcfg))
