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
        pump.changed()
        pump.save()
        pump.note("patient_bolus_programmed", {"dose_ug": dose_ug, "lockout_min": lockout_min,
                                               "max_per_day": max_per_day})

    def clinician(self, dose_ug, minutes):
        return self._start("clinician", self._dose_volume_nl(dose_ug), minutes * MINUTE_MS, dose_ug)

    def prime(self, volume_ul, minutes):
        return self._start("prime", volume_ul * 1000, minutes * MINUTE_MS, 0)

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
        return self._start("patient", self._dose_volume_nl(dose_ug),
                           lib.PATIENT_BOLUS_MINUTES * MINUTE_MS, dose_ug)

    def _recent(self, now_ms):
        self.history = [b for b in self.history if b[0] > now_ms - DAY_MS]
        return self.history

    def _dose_volume_nl(self, dose_ug):
        conc = self.pump.therapy.flowing_concentration()
        if conc <= 0:
            raise StateError("no drug in the pump: refill first")
        return dose_ug * 1000000 // conc

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
        pump.machine.fire("bolus")
        t.boluses.append(bolus)
        self.history.append([now_ms, dose_ug, kind])
        pump.settle()
        pump.changed()
        pump.save()
        pump.note("bolus_start", {"kind": kind, "dose_ug": dose_ug, "volume_nl": volume_nl,
                                  "minutes": duration_ms // MINUTE_MS})
        return bolus
