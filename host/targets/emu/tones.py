"""The rig's microphone: what the virtual board's buzzer played."""


class Tones:
    """What the buzzer played, as a microphone beside the pump hears it: sounds made of tone
    segments less than 100 ms apart, each a single tone or two alternating ones."""

    GAP_MS = 100

    def __init__(self):
        self.sounds = []
        self._on = None  # (start_ms, freq) of the segment sounding now

    def pwm(self, now_ms, freq, duty):
        if self._on is not None:
            start_ms, on_freq = self._on
            self._segment(start_ms, now_ms, on_freq)
            self._on = None
        if duty > 0 and freq > 0:
            self._on = (now_ms, freq)

    def _segment(self, start_ms, end_ms, freq):
        last = self.sounds[-1] if self.sounds else None
        if last is not None and start_ms - last["end_ms"] <= self.GAP_MS:
            last["end_ms"] = end_ms
            if freq not in last["freqs"]:
                last["freqs"].append(freq)
        else:
            self.sounds.append({"t_ms": start_ms, "end_ms": end_ms, "freqs": [freq]})

    def listing(self):
        return [{"t_s": s["t_ms"] // 1000, "t_ms": s["t_ms"], "duration_ms": s["end_ms"] - s["t_ms"],
                 "pattern": "two-tone" if len(s["freqs"]) > 1 else "single", "freqs": s["freqs"]}
                for s in self.sounds]
