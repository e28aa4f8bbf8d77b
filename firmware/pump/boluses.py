# Boluses on top of the running profile: clinician, priming and patient-activated, within the dose
# guard's limit per 24 h and the patient's lockout and daily maximum.
from pump import druglib as lib
from pump import fsm
from pump.errors import LimitError, StateError
from pump.therapy import CONTINUOUS, DAY_MS, FLEX, MINIMUM, MINUTE_MS, Bolus


class Boluses:
    def __init__(self, pump):
        self.pump = pump
        self.patient = None  # [dose_ug, lockout_ms, max_per_day]
        self.history = []  # [start_ms, dose_ug, kind] of the last 24 h

    def program_patient(self, dose_ug, lockout_min, max_per_day):
        if dose_ug > lib.MAX_BOLUS_UG_PER_24H:
            raise LimitError("max_bolus_ug_per_24h", "a %d µg patient bolus is above the %d µg per 24 h"
                             % (dose_ug, lib.MAX_BOLUS_UG_PER_24H))
        pump = self.pump
        self.patient = [dose_ug, lockout_min * MINUTE_MS, max_per_day]
        pump.plan_reminder()  # the patient's daily maximum brings the refill forward
        pump.check_alarms(pump.clock.now_ms())
        pump.changed()
        pump.save()
        pump.note("patient_bolus_programmed", {"dose_ug": dose_ug, "lockout_min": lockout_min,
                                               "max_per_day": max_per_day})

    def clinician(self, dose_ug, minutes):
        duration_ms = minutes * MINUTE_MS
        return self._start("clinician", self._dose_volume_nl(dose_ug, duration_ms), duration_ms, dose_ug)

    def prime(self, volume_ul, minutes):
        """Priming fills dead volume only: never more than tubing and catheter hold, whose drug
        would otherwise reach the patient unaccounted (4 mL of 2000 µg/mL is 8 mg)."""
        pump = self.pump
        if pump.catheter_ul is None:
            raise LimitError("catheter_ul", "priming needs the catheter volume: it is unset "
                             "(config --catheter-ul)")
        dead_ul = pump.tubing_ul + pump.catheter_ul
        if volume_ul > dead_ul:
            raise LimitError("prime_volume_ul", "a %d µL priming bolus is more than the %d µL of tubing "
                             "and catheter" % (volume_ul, dead_ul))
        return self._start("prime", volume_ul * 1000, minutes * MINUTE_MS, 0)

    def patient_ug(self, bolus):
        """The most of a bolus's volume that could reach the patient as drug, µg."""
        t = self.pump.therapy
        conc = max(t.concentration_ug_per_ml, t.bridge_concentration_ug_per_ml if t.bridge_remaining_nl else 0)
        return bolus.volume_nl * conc // 1000000

    def patient_request(self):
        if self.patient is None:
            raise StateError("patient boluses are not programmed")
        dose_ug, lockout_ms, max_per_day = self.patient
        now_ms = self.pump.clock.now_ms()
        mine = [b for b in self._recent(now_ms) if b[2] == "patient"]
        reason = None
        if len(mine) >= max_per_day:
            reason = ("patient_max_per_day", "%d patient boluses in 24 h already: the maximum" % len(mine))
        elif mine and now_ms - mine[-1][0] < lockout_ms:
            wait_min = -(-(lockout_ms - (now_ms - mine[-1][0])) // MINUTE_MS)
            reason = ("patient_lockout", "locked out for another %d min" % wait_min)
        if reason:
            self.pump.note("bolus_refused", {"kind": "patient", "reason": reason[0]})
            raise LimitError(reason[0], reason[1])
        duration_ms = lib.PATIENT_BOLUS_MINUTES * MINUTE_MS
        return self._start("patient", self._dose_volume_nl(dose_ug, duration_ms), duration_ms, dose_ug)

    def _recent(self, now_ms):
        self.history = [b for b in self.history if b[0] > now_ms - DAY_MS]
        return self.history

    def _dose_volume_nl(self, dose_ug, duration_ms):
        """The volume that gives the patient dose_ug over duration_ms at the drug actually flowing.
        During a bridge the old drug in the line comes first, shared between the bolus and the
        rest of the flow by their rates; the new drug follows. The largest volume whose drug does
        not exceed the dose."""
        t = self.pump.therapy
        c1 = t.concentration_ug_per_ml
        if c1 <= 0:
            raise StateError("no drug in the pump: refill first")
        target = dose_ug * 1000000  # µg × 10^6 = nL × µg/mL
        bridge_nl = t.bridge_remaining_nl
        if bridge_nl <= 0:
            return target // c1
        c0 = t.bridge_concentration_ug_per_ml
        now_ms = self.pump.clock.now_ms()
        other_nl = (t._profile_credit(now_ms, now_ms + duration_ms, c0, 0) // DAY_MS
                    + t.remaining_bolus_nl(now_ms))

        def drug(volume_nl):
            if other_nl + volume_nl <= bridge_nl:
                return volume_nl * c0
            old_nl = volume_nl * bridge_nl // (other_nl + volume_nl)
            return old_nl * c0 + (volume_nl - old_nl) * c1

        low, high = 0, target // min(c0, c1) + 1
        while high - low > 1:
            mid = (low + high) // 2
            if drug(mid) <= target:
                low = mid
            else:
                high = mid
        return low

    def _start(self, kind, volume_nl, duration_ms, dose_ug):
        pump = self.pump
        if pump.state == fsm.ALARM:
            raise StateError("no bolus while a critical alarm stops the pump")
        now_ms = pump.clock.now_ms()
        if dose_ug:
            given_ug = sum(b[1] for b in self._recent(now_ms))
            if given_ug + dose_ug > lib.MAX_BOLUS_UG_PER_24H:
                raise LimitError("max_bolus_ug_per_24h", "%d µg more would make %d µg of boluses in 24 h, "
                                 "above the limit of %d" % (dose_ug, given_ug + dose_ug,
                                                            lib.MAX_BOLUS_UG_PER_24H))
        bolus = Bolus(kind, now_ms, duration_ms, volume_nl, dose_ug)
        t = pump.therapy
        pump.check_rate(pump.profile_max_rate(t.steps) if t.mode in (CONTINUOUS, FLEX) else
                        t.minimum_rate_nl_per_day if t.mode == MINIMUM else 0,
                        bolus.rate_nl_per_day + sum(b.rate_nl_per_day for b in t.boluses))
        pump.advance(now_ms)
        pump.machine.fire(fsm.BOLUS)
        t.boluses.append(bolus)
        self.history.append([now_ms, dose_ug, kind])
        pump.settle()
        pump.changed()
        pump.save()
        pump.note("bolus_start", {"kind": kind, "dose_ug": dose_ug, "volume_nl": volume_nl,
                                  "minutes": duration_ms // MINUTE_MS})
        return bolus
