"""The mutation gate's curated list (`make mutants`, pumpsim.hil.mutants): single-line breaks of the
firmware's safety-critical lines, each with the tests that must notice it.

A mutant replaces `original` (one line or part of one; it must occur exactly once in `file`, or the
mutant is stale) with `replacement`. `hazard` names the docs/safety.md hazard row whose mitigation
the mutant removes: such a mutant runs only tests that row names, and the row is proved only when
they kill it. Mutants that merely move a limit or a boundary have no hazard: their tests are the
ones that probe that limit. tests/test_mutants_list.py checks this file against the tree on every
`make test`.
"""


def mutant(id, file, original, replacement, what, tests, hazard=None):
    return {"id": id, "file": file, "original": original, "replacement": replacement, "what": what,
            "tests": list(tests), "hazard": hazard}


DRUGLIB = "firmware/pump/druglib.py"
CORE = "firmware/pump/core.py"
APP = "firmware/pump/app.py"
FSM = "firmware/pump/fsm.py"
BOLUSES = "firmware/pump/boluses.py"
ALARMS = "firmware/pump/alarms.py"
LINK = "firmware/pump/link.py"
STORE = "firmware/pump/store.py"
EVENTLOG = "firmware/pump/eventlog.py"
THERAPY = "firmware/pump/therapy.py"
HAL = "firmware/pump/hal.py"
CLOCK_TESTS = "tests/hil/test_clock.py::"

# Tests, by what they prove.
CONTINUOUS = "tests/hil/test_continuous.py::"
FAULTS = "tests/hil/test_faults.py::"
ENGINE = "tests/hil/test_therapy_engine.py::"
REFILL_LOG = "tests/hil/test_refill_and_log.py::"
BAD_INPUT = "tests/hil/test_bad_input.py::"
EMPTY_AT_78 = CONTINUOUS + "test_empty_reservoir_stops_the_pump_at_day_78"
LOW_AT_72 = CONTINUOUS + "test_low_reservoir_alarm_is_due_at_day_72"
REFILL_CLEARS = REFILL_LOG + "test_refill_clears_reservoir_alarms_and_sets_a_reminder"
STALL = FAULTS + "test_motor_stall_stops_counting_and_sounds_two_tones[idle]"
INTERMITTENT = FAULTS + "test_an_intermittent_stall_is_retried_and_delivers_exactly"
ERI = FAULTS + "test_battery_eri_warns_and_therapy_goes_on[idle]"
EOS = FAULTS + "test_battery_eos_stops_infusion[idle]"
LOW_BATTERY_RESET = FAULTS + "test_a_low_battery_reset_comes_back_at_minimum_rate[idle]"
REPAIRED_AT_BOOT = FAULTS + "test_a_copy_corrupted_before_boot_is_repaired_at_boot[idle]"
REPAIRED_STOPPED = FAULTS + "test_a_bad_copy_is_found_and_repaired_while_stopped[idle]"
MEMORY_ERROR = FAULTS + "test_no_good_copy_is_a_critical_memory_error[idle]"
WATCHDOG = FAULTS + "test_a_hung_main_loop_is_reset_by_the_watchdog[idle]"
MAINTENANCE = "tests/hil/test_maintenance.py::"
ALARM_TEST = FAULTS + "test_the_alarm_test_plays_both_patterns"
POWER_CUTS = "tests/hil/test_power_cuts.py::test_200_power_cuts_lose_nothing"
RESUMES = CONTINUOUS + "test_therapy_resumes_after_a_power_cut"
DOSE_GUARD = ENGINE + "test_the_dose_guard_names_the_limit_and_changes_nothing"
BOLUS_24H = ENGINE + "test_bolus_doses_add_up_to_the_24_hour_limit"
PATIENT = ENGINE + "test_patient_boluses_respect_lockout_and_daily_maximum"
STOP = ENGINE + "test_stop_warns_and_stops"
MINIMUM = ENGINE + "test_minimum_rate_keeps_the_catheter_open"
BRIDGE = REFILL_LOG + "test_a_concentration_change_pushes_the_old_drug_through_first"
BOUNDS = "tests/hil/test_boundaries.py::"
FLAGGED = REFILL_LOG + "test_the_cli_reports_and_the_log_keeps_a_flagged_discrepancy"
DISCREPANCY_BOTH_WAYS = BOUNDS + "test_a_refill_discrepancy_is_flagged_only_beyond_14_5_percent_either_way"
CONFIGURED_DISCREPANCY = BOUNDS + "test_a_configured_discrepancy_limit_is_the_one_applied"
BOLUS_CAP_EXACT = BOUNDS + "test_boluses_add_up_to_exactly_100_ug_in_24_hours_and_not_one_more"
BOLUS_WINDOW = BOUNDS + "test_the_24_hour_window_counts_a_bolus_of_23h59_ago_and_not_one_of_24h01_ago"
LOCKOUT_EDGE = BOUNDS + "test_a_patient_bolus_is_refused_one_second_before_the_lockout_ends_and_given_at_its_end"
THIRD_ATTEMPT = BOUNDS + "test_a_stroke_that_turns_on_its_third_attempt_is_delivered_once"
THREE_FAILURES = BOUNDS + "test_a_stroke_that_fails_three_attempts_is_a_motor_stall_at_that_stroke"
NO_KEY = BAD_INPUT + "test_therapy_change_without_the_key_is_refused"
WRONG_KEY = BAD_INPUT + "test_a_wrong_key_is_refused"
GARBAGE = BAD_INPUT + "test_garbage_and_control_bytes_never_stop_the_pump"
FIVE_FAILURES = "tests/firmware/test_app.py::test_five_failed_authentications_lock_programming"
SIGNED_ONCE = "tests/firmware/test_link.py::test_a_signed_request_passes_once"
REQUESTS = "tests/unit/test_requests.py::"
REFUSED = REQUESTS + "test_a_refused_request_names_the_problem_and_changes_nothing"
LIMITS_ALLOWED = REQUESTS + "test_the_limits_themselves_are_allowed"
MAINTENANCE_NO_KEY = REQUESTS + "test_maintenance_without_the_key_keeps_the_pump_running"
FRAMING = "tests/unit/test_link_framing.py::"
UNAUTHENTICATED = FRAMING + "test_an_unauthenticated_change_is_refused_and_counted"
STORE_RECORDS = "tests/unit/test_store_records.py::"
FRAM_RECORDS = "tests/unit/test_fram_records.py::"
FSM_SPEC = "tests/unit/test_fsm_table.py::test_the_firmware_knows_the_same_states_and_triggers"
FSM_GUARD = "tests/unit/test_fsm_table.py::test_a_failing_guard_refuses_and_changes_nothing"
FSM_PAIRS = "tests/unit/test_fsm_table.py::test_every_pair_goes_where_the_table_says_or_is_refused"
FSM_PULSING = "tests/unit/test_fsm_table.py::test_the_motor_moves_only_through_a_pulsing_row"
FSM_ALLOWED = "tests/unit/test_fsm_guards.py::test_a_guarded_row_is_allowed_only_when_its_guard_says_yes"
NO_PULSE = "tests/hil/test_hazards.py::test_the_rig_counts_no_pulse_in_the_states_that_forbid_one"
HAZARDS = "tests/hil/test_hazards.py::"
CORE_TESTS = "tests/firmware/test_core.py::"
CROSSING = CORE_TESTS + "test_low_reservoir_at_stroke_36000_and_empty_at_39000"
RESERVOIR_ALARMS = "tests/unit/test_reservoir_alarms.py::"
SCHEDULE = "tests/unit/test_therapy_schedule.py::"
THERAPY_TESTS = "tests/firmware/test_therapy.py::"
REPEATS = ["tests/unit/test_alarm_repeats.py::test_a_critical_alarm_sounds_again_every_10_minutes",
           "tests/unit/test_alarm_repeats.py::test_a_medium_alarm_sounds_again_every_60_minutes"]
CONFIG_LIMIT = "tests/unit/test_config_discrepancy.py::test_a_10_percent_limit_flags_what_the_default_would_not"
AUTH_PER_VERB = "tests/unit/test_auth_per_verb.py::test_an_unsigned_request_is_refused_and_changes_nothing"
STALL_RETRIES = "tests/unit/test_stall_retries.py::test_a_stalled_motor_is_tried_every_10_minutes_until_it_turns"
OUTAGE_CREDIT = "tests/unit/test_outage_credit.py::test_three_strokes_owed_at_a_reset_are_not_made_at_once"
EVENT_SLOTS = "tests/unit/test_event_slots.py::test_a_corrupted_slot_is_skipped_and_counted"

MUTANTS = [
    # -- the dose guard and the drug library -------------------------------------------------
    mutant("daily-limit-2399", DRUGLIB, "MAX_DAILY_DOSE_UG = 2000", "MAX_DAILY_DOSE_UG = 2399",
           "daily dose limit 2000 -> 2399 ug", [DOSE_GUARD, REFUSED]),
    mutant("daily-limit-gone", DRUGLIB, "MAX_DAILY_DOSE_UG = 2000", "MAX_DAILY_DOSE_UG = 10 ** 9",
           "no daily dose limit", [DOSE_GUARD], hazard="overdose: programming error"),
    mutant("flex-step-unchecked", CORE, "if dose_ug > lib.MAX_DAILY_DOSE_UG:", "if False:",
           "flex steps skip the daily dose limit", [DOSE_GUARD]),
    mutant("bolus-cap-101", DRUGLIB, "MAX_BOLUS_UG_PER_24H = 100", "MAX_BOLUS_UG_PER_24H = 101",
           "bolus cap 100 -> 101 ug per 24 h", [BOLUS_CAP_EXACT, BOLUS_24H, DOSE_GUARD]),
    mutant("bolus-cap-gone", DRUGLIB, "MAX_BOLUS_UG_PER_24H = 100", "MAX_BOLUS_UG_PER_24H = 10 ** 9",
           "no bolus cap", [BOLUS_24H], hazard="overdose: programming error"),
    mutant("bolus-24h-sum-ignored", BOLUSES, "if given_ug + dose_ug > lib.MAX_BOLUS_UG_PER_24H:",
           "if dose_ug > lib.MAX_BOLUS_UG_PER_24H:", "earlier boluses not counted toward the cap",
           [BOLUS_24H]),
    mutant("bolus-cap-inclusive", BOLUSES, "if given_ug + dose_ug > lib.MAX_BOLUS_UG_PER_24H:",
           "if given_ug + dose_ug >= lib.MAX_BOLUS_UG_PER_24H:", "a bolus total exactly at the cap refused",
           [BOLUS_CAP_EXACT, BOLUS_24H, LIMITS_ALLOWED]),
    mutant("bolus-window-12h", BOLUSES, "if b[0] > now_ms - DAY_MS]", "if b[0] > now_ms - DAY_MS // 2]",
           "24 h bolus window cut to 12 h", [BOLUS_WINDOW, BOLUS_24H, PATIENT]),
    mutant("concentration-750", DRUGLIB, "CONCENTRATIONS_UG_PER_ML = (50, 500, 1000, 2000)",
           "CONCENTRATIONS_UG_PER_ML = (50, 500, 750, 1000, 2000)", "750 ug/mL accepted",
           [DOSE_GUARD, REFUSED]),
    mutant("minimum-rate-x10", DRUGLIB, "MINIMUM_RATE_NL_PER_DAY = 6000", "MINIMUM_RATE_NL_PER_DAY = 60000",
           "minimum rate 6 -> 60 uL/day", [MINIMUM]),
    mutant("rate-dose-high", THERAPY, "return daily_dose_ug * NL_PER_ML // concentration_ug_per_ml",
           "return daily_dose_ug * 1010000 // concentration_ug_per_ml", "dose rate 1 % high",
           [THERAPY_TESTS + "test_500_ug_a_day_at_2000_is_a_stroke_every_172_8_s"]),

    # -- patient boluses ---------------------------------------------------------------------
    mutant("lockout-gone", BOLUSES, "elif mine and now_ms - mine[-1][0] < lockout_ms:", "elif False:",
           "no patient-bolus lockout", [PATIENT], hazard="overdose: patient boluses"),
    mutant("lockout-one-short", BOLUSES, "elif mine and now_ms - mine[-1][0] < lockout_ms:",
           "elif mine and now_ms - mine[-1][0] < lockout_ms - 1000:", "lockout ends 1 s early",
           [LOCKOUT_EDGE, PATIENT]),
    mutant("max-per-day-plus-one", BOLUSES, "if len(mine) >= max_per_day:", "if len(mine) > max_per_day:",
           "one patient bolus more a day", [PATIENT]),
    mutant("max-per-day-gone", BOLUSES, "if len(mine) >= max_per_day:", "if False:",
           "no patient-bolus daily maximum", [PATIENT], hazard="overdose: patient boluses"),
    mutant("prime-unbounded", BOLUSES, "if volume_ul > dead_ul:", "if False:",
           "priming beyond tubing and catheter", [HAZARDS + "test_priming_up_to_the_dead_volume_and_not_one_microlitre_more"],
           hazard="overdose: priming"),
    mutant("prime-dead-volume-refused", BOLUSES, "if volume_ul > dead_ul:", "if volume_ul >= dead_ul:",
           "priming exactly the dead volume refused",
           [HAZARDS + "test_priming_up_to_the_dead_volume_and_not_one_microlitre_more"]),
    mutant("bolus-in-alarm", BOLUSES, "if pump.state == fsm.ALARM:", "if False:",
           "a bolus asked in the alarm state is not refused up front",
           [RESERVOIR_ALARMS + "test_the_alarm_state_never_pumps"]),

    # -- reservoir alarms --------------------------------------------------------------------
    mutant("empty-never", CORE, "a.set(al.EMPTY_RESERVOIR, self.reservoir_nl <= self.empty_threshold_nl, now_ms)",
           "a.set(al.EMPTY_RESERVOIR, self.reservoir_nl < 0, now_ms)", "EMPTY_RESERVOIR only below 0 mL",
           [EMPTY_AT_78], hazard="withdrawal: reservoir runs dry"),
    mutant("empty-one-stroke-late", CORE, "self.reservoir_nl <= self.empty_threshold_nl",
           "self.reservoir_nl < self.empty_threshold_nl", "EMPTY_RESERVOIR one stroke after the crossing",
           [CROSSING]),
    mutant("low-never", CORE, "a.set(al.LOW_RESERVOIR, self.reservoir_nl <= self.low_threshold_nl, now_ms)",
           "a.set(al.LOW_RESERVOIR, self.reservoir_nl < 0, now_ms)", "LOW_RESERVOIR only below 0 mL",
           [LOW_AT_72, REFILL_CLEARS], hazard="withdrawal: refill missed"),
    mutant("low-one-stroke-late", CORE, "self.reservoir_nl <= self.low_threshold_nl",
           "self.reservoir_nl < self.low_threshold_nl", "LOW_RESERVOIR one stroke after the crossing",
           [CROSSING]),
    mutant("low-default-1ml", DRUGLIB, "LOW_RESERVOIR_UL = 2000", "LOW_RESERVOIR_UL = 1000",
           "low reservoir default 2 -> 1 mL", [LOW_AT_72]),
    mutant("empty-default-0", DRUGLIB, "EMPTY_RESERVOIR_UL = 500", "EMPTY_RESERVOIR_UL = 0",
           "empty reservoir default 0.5 -> 0 mL", [EMPTY_AT_78]),

    # -- the motor ---------------------------------------------------------------------------
    mutant("motor-attempts-2", CORE, "MOTOR_ATTEMPTS = 3", "MOTOR_ATTEMPTS = 2", "motor attempts 3 -> 2",
           [THIRD_ATTEMPT, THREE_FAILURES, INTERMITTENT, STALL]),
    mutant("motor-no-retry", CORE, "for _ in range(MOTOR_ATTEMPTS):", "for _ in range(1):",
           "a missed step is never retried", [INTERMITTENT],
           hazard="under-delivery: motor slips"),
    mutant("motor-feedback-ignored", HAL, "return self._feedback.value() == 1", "return True",
           "the motor's feedback is not read", [STALL], hazard="withdrawal: motor stalled"),
    mutant("stall-retry-20min", CORE, "STALL_RETRY_MS = 600000", "STALL_RETRY_MS = 1200000",
           "a stalled motor is tried every 20 min", [STALL_RETRIES, STALL]),

    # -- the battery -------------------------------------------------------------------------
    mutant("eri-never", CORE, "a.set(al.BATTERY_ERI, self.battery_mv <= self.eri_mv, now_ms)",
           "a.set(al.BATTERY_ERI, self.battery_mv < 0, now_ms)", "BATTERY_ERI never raised",
           [ERI], hazard="withdrawal: battery ends"),
    mutant("eos-never", CORE, "a.set(al.BATTERY_EOS, self.battery_mv <= self.eos_mv, now_ms)",
           "a.set(al.BATTERY_EOS, self.battery_mv < 0, now_ms)", "BATTERY_EOS never raised",
           [EOS], hazard="uncontrolled delivery at end of battery"),
    mutant("low-battery-reset-never", CORE, "self.battery_mv <= self.reset_mv", "self.battery_mv < 0",
           "no safe state after a low-battery reset", [LOW_BATTERY_RESET],
           hazard="erratic delivery after a brown-out"),
    mutant("battery-check-2h", CORE, "BATTERY_CHECK_MS = 3600000", "BATTERY_CHECK_MS = 7200000",
           "the battery is read every 2 h", [ERI]),
    mutant("battery-reads-high", HAL, "return self._adc.read_u16() * self._scale // 65535",
           "return self._adc.read_u16() * self._scale // 60000", "the ADC reads 9 % high", [EOS]),

    # -- records and the event log -----------------------------------------------------------
    mutant("store-crc-unchecked", STORE,
           "if struct.unpack_from(\"<I\", data, end)[0] != binascii.crc32(memoryview(data)[:end]) & 0xFFFFFFFF:",
           "if False:", "a record's CRC is not checked", [REPAIRED_AT_BOOT, REPAIRED_STOPPED],
           hazard="wrong reservoir estimate"),
    mutant("store-magic-unchecked", STORE, "if magic != _MAGIC:",
           "if False:", "a record's magic is not checked",
           [STORE_RECORDS + "test_a_flipped_bit_anywhere_falls_back_to_the_previous_record"]),
    mutant("store-oldest-wins", STORE, "(best is None or record[0] > best[0])",
           "(best is None or record[0] < best[0])", "the older record is loaded",
           [STORE_RECORDS + "test_the_newest_record_wins_after_a_restart"]),
    mutant("store-one-slot", STORE, "slot = self._slots[i]", "slot = self._slots[0]",
           "one slot instead of A/B", [POWER_CUTS, RESUMES], hazard="lost or doubled accounting"),
    mutant("store-no-repair-flag", STORE, "self.repaired = True", "pass",
           "a bad copy is not reported", [STORE_RECORDS + "test_both_slots_bad_is_reported", REPAIRED_AT_BOOT]),
    mutant("scrub-blind", CORE, "bad = self.store.check()", "bad = 0", "the hourly scrub finds nothing",
           [REPAIRED_STOPPED]),
    mutant("memory-never-lost", CORE, "memory_lost = payload is None and self.store.repaired",
           "memory_lost = False", "no good copy is not an alarm", [MEMORY_ERROR],
           hazard="overdose from an unknown programme"),
    mutant("eventlog-crc-unchecked", EVENTLOG, "if length > _ROOM or struct.unpack_from",
           "if length > _ROOM and struct.unpack_from", "an event slot's CRC is not checked",
           [EVENT_SLOTS]),
    mutant("eventlog-one-slot", EVENTLOG, "self._region.write(((self.seq - 1) % self._slots) * SLOT_BYTES,",
           "self._region.write(0,",
           "every event overwrites the last", [REFILL_LOG + "test_the_log_records_programming_refills_boluses_alarms_and_resets"]),

    # -- the serial line and authentication -------------------------------------------------
    mutant("unsigned-skips-auth", APP, "if needs_auth:", "if needs_auth and request.mac is not None:",
           "unsigned requests skip authentication", [NO_KEY, WRONG_KEY, FIVE_FAILURES, SIGNED_ONCE],
           hazard="unauthorised programming"),
    mutant("mac-unchecked", LINK, "if not same(expected.encode(), request.mac.lower().encode()):", "if False:",
           "a wrong MAC passes", [WRONG_KEY], hazard="unauthorised programming"),
    mutant("replay-same-seq", LINK, "if request.seq <= self.last_seq:", "if request.seq < self.last_seq:",
           "a request replayed with its own seq passes", [SIGNED_ONCE], hazard="unauthorised programming"),
    mutant("lockout-after-6", APP, "AUTH_FAILURES_TO_LOCK = 5", "AUTH_FAILURES_TO_LOCK = 6",
           "programming locked after 6 failures", [FIVE_FAILURES]),
    mutant("lockout-1min", APP, "AUTH_LOCK_MS = 10 * 60000", "AUTH_LOCK_MS = 1 * 60000",
           "programming locked for 1 min", [FIVE_FAILURES]),
    mutant("refill-unsigned", APP, "\"refill\": (self.refill, True)", "\"refill\": (self.refill, False)",
           "refill needs no key", [AUTH_PER_VERB, NO_KEY]),
    mutant("config-unsigned", APP, "\"config\": (self.config, True)", "\"config\": (self.config, False)",
           "config needs no key", [AUTH_PER_VERB, UNAUTHENTICATED]),
    mutant("maintenance-unsigned", APP, "\"maintenance\": (self.maintenance, True)",
           "\"maintenance\": (self.maintenance, False)", "maintenance needs no key", [MAINTENANCE_NO_KEY, AUTH_PER_VERB]),
    mutant("hmac-inner-pad", LINK, "inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))",
           "inner = hashlib.sha256(bytes(b ^ 0x5C for b in key))", "HMAC with the wrong inner pad",
           [FRAMING + "test_hmac_matches_pythons_hmac_module"]),
    mutant("same-last-byte-only", LINK, "diff |= x ^ y", "diff = x ^ y", "MAC compare looks at the last byte",
           [FRAMING + "test_same_compares_everything_whatever_the_first_difference"]),
    mutant("frame-crc-unchecked", LINK, "if crc.decode().lower() != crc_hex(body):", "if False:",
           "a frame's CRC is not checked", [GARBAGE], hazard="withdrawal: line noise stops the pump"),
    mutant("ctrl-c-interrupts", HAL, "micropython.kbd_intr(-1)", "micropython.kbd_intr(3)",
           "Ctrl-C on the line interrupts the firmware", [GARBAGE]),
    mutant("frame-limit-4096", LINK, "_LIMIT = const(2048)", "_LIMIT = const(4096)",
           "frames up to 4096 bytes", [FRAMING + "test_the_longest_frame_passes_and_one_byte_more_does_not"]),

    # -- the state table ---------------------------------------------------------------------
    # tests/unit/test_fsm_table.py holds the table to a specification of its own: a test that
    # reads its expectations from fsm.TRANSITIONS could never notice an edited row.
    mutant("fsm-refill-in-alarm-infuses", FSM, "(REFILL, ALARM, STOPPED, None, False)",
           "(REFILL, ALARM, INFUSING, None, False)", "state-table row: refill in alarm -> infusing", [FSM_SPEC]),
    mutant("fsm-resume-unguarded", FSM, "(RESUME, STOPPED, INFUSING, _can_infuse, False)",
           "(RESUME, STOPPED, INFUSING, None, False)", "state-table row: resume without its guard", [FSM_GUARD]),
    mutant("fsm-allowed-ignores-guard", FSM, "return row is not None and (row[3] is None or row[3](self._ctx))",
           "return row is not None", "`allowed` ignores the guard", [FSM_ALLOWED, FSM_PAIRS]),
    mutant("fsm-stall-retry-unguarded", FSM, "(STALL_RETRY, ALARM, ALARM, _only_stalled, PULSE)",
           "(STALL_RETRY, ALARM, ALARM, None, PULSE)", "state-table row: a stall retry pulses in any alarm",
           [FSM_PULSING, NO_PULSE], hazard="uncontrolled delivery"),
    # The pump checks the same condition before a retry: both layers must hold on their own.
    mutant("stall-retry-despite-eos", CORE, "and not self.alarms.critical(but=al.MOTOR_STALL)", "and True",
           "a stalled motor is retried while another critical alarm stands", [NO_PULSE],
           hazard="uncontrolled delivery"),
    mutant("fsm-any-row-pulses", FSM, "if row is None or not row[4]:", "if row is None:",
           "a row that does not pulse reaches the motor", [FSM_PULSING]),

    # -- therapy and accounting --------------------------------------------------------------
    mutant("stroke-half-credit", THERAPY, "self.credit -= stroke_nl * DAY_MS",
           "self.credit -= stroke_nl * DAY_MS // 2", "a stroke pays half its volume",
           [SCHEDULE + "test_500_ug_a_day_at_2000_ug_per_ml_is_500_strokes_a_day_exactly"]),
    mutant("long-span-one-period-short", THERAPY, "total += periods * self._steps_credit(",
           "total += (periods - 1) * self._steps_credit(", "a span of whole days owes one day too little",
           ["tests/firmware/test_accrue.py::test_accrue_equals_the_segment_by_segment_integral"]),
    mutant("stroke-rounded-down", THERAPY, "span = ceil_div(need, rate)", "span = need // rate",
           "stroke times rounded down", [SCHEDULE + "test_uneven_intervals_are_rounded_up_per_stroke_never_accumulated"]),
    mutant("outage-caught-up", THERAPY, "self.credit = min(self.credit, self.stroke_nl * DAY_MS - 1)",
           "self.credit = self.credit", "missed strokes caught up after a reset",
           [OUTAGE_CREDIT, THERAPY_TESTS + "test_after_an_outage_missed_strokes_are_not_caught_up"]),
    mutant("stopped-time-owed", CORE, "self.therapy.skip(now_ms)", "self.therapy.accrue(now_ms)",
           "time stopped is owed and delivered on resuming",
           [RESERVOIR_ALARMS + "test_leaving_the_alarm_state_delivers_nothing_at_once"]),
    mutant("bridge-never-flows", THERAPY, "return self.bridge_concentration_ug_per_ml",
           "return self.concentration_ug_per_ml", "the bridge runs at the new concentration", [BRIDGE],
           hazard="wrong dose after a concentration change"),
    mutant("bridge-twice-as-fast", THERAPY, "max(0, self.bridge_remaining_nl - stroke_nl)",
           "max(0, self.bridge_remaining_nl - 2 * stroke_nl)", "the bridge ends at half its volume", [BRIDGE]),

    # -- refill discrepancy and settings ------------------------------------------------------
    mutant("discrepancy-19.5", DRUGLIB, "DISCREPANCY_LIMIT_PERMILLE = 145", "DISCREPANCY_LIMIT_PERMILLE = 195",
           "discrepancy limit 14.5 -> 19.5 %", [DISCREPANCY_BOTH_WAYS, FLAGGED]),
    mutant("discrepancy-one-way", CORE, "abs(milli_pct) > self.discrepancy_limit_permille",
           "milli_pct > self.discrepancy_limit_permille", "abs() dropped from the discrepancy",
           [DISCREPANCY_BOTH_WAYS]),
    mutant("lost-stroke-not-presumed", CORE,
           "presumed = getattr(self.store, \"lost_newer\", False) and self._presume_stroke()",
           "presumed = False", "a whole newest record gone bad: its stroke made again",
           [REPAIRED_AT_BOOT]),
    mutant("change-in-one-copy", STORE, "self._write(payload, more, _TWIN)", "pass",
           "a change written to one copy only", [HAZARDS + "test_a_change_survives_its_newest_copy_going_bad"]),
    mutant("torn-write-taken-as-whole", STORE, "self._whole_seq = self._seq_if_whole(slot, data, end, seq)",
           "self._whole_seq = seq", "a torn write presumed to have been followed by its stroke", [POWER_CUTS]),
    mutant("closing-seq-unchecked", STORE,
           "if not slot.sized and struct.unpack_from(\">I\", data, end + 4)[0] != seq:", "if False:",
           "a record torn in place before its closing seq is taken as whole, counting a stroke never made",
           [POWER_CUTS, FRAM_RECORDS + "test_a_write_torn_at_every_byte_keeps_the_previous_record"]),
    mutant("kept-settings-trusted-after-scrub", STORE, "self._kept[i] = None  # what it keeps in place is not trusted",
           "pass",
           "settings that went bad in a slot are never rewritten by the strokes that follow",
           [FRAM_RECORDS + "test_settings_that_went_bad_in_a_slot_are_written_whole_after_a_scrub"]),
    mutant("discrepancy-never-flagged", CORE,
           "result[\"flagged\"] = abs(milli_pct) > self.discrepancy_limit_permille * 100",
           "result[\"flagged\"] = False", "no refill is flagged", [DISCREPANCY_BOTH_WAYS, FLAGGED],
           hazard="over- or under-infusion unnoticed"),
    mutant("config-discrepancy-ignored", CORE, "values.get(\"discrepancy_limit_permille\",",
           "{}.get(\"discrepancy_limit_permille\",", "config's discrepancy limit ignored",
           [CONFIG_LIMIT, CONFIGURED_DISCREPANCY]),
    mutant("config-ranges-unchecked", CORE, "if not low <= value <= high:", "if False:",
           "config accepts any value", [HAZARDS + "test_every_setting_is_refused_one_step_outside_its_range"],
           hazard="wrong settings"),
    mutant("config-discrepancy-40", DRUGLIB, "\"discrepancy_limit_permille\": (50, 250)",
           "\"discrepancy_limit_permille\": (50, 400)", "a 40 % discrepancy limit accepted",
           [HAZARDS + "test_the_cli_refuses_a_5_ml_catheter_and_a_40_percent_discrepancy_limit"]),
    mutant("reminder-ignores-projection", CORE,
           "self.reminder_ms = min(self.reminder_ms, low_ms - self.reminder_lead_days * DAY_MS)",
           "self.reminder_ms = self.reminder_ms", "the refill reminder ignores the projected low reservoir",
           [HAZARDS + "test_the_reminder_is_a_week_before_the_projected_low_reservoir"]),
    mutant("memory-error-kept", CORE, "self.alarms.clear(al.MEMORY_ERROR, now_ms)", "pass",
           "a refill does not end MEMORY_ERROR", [MEMORY_ERROR]),

    # -- alarms ------------------------------------------------------------------------------
    mutant("critical-repeat-20min", ALARMS, "CRITICAL_REPEAT_MS = 10 * 60000", "CRITICAL_REPEAT_MS = 20 * 60000",
           "critical alarms repeat every 20 min", [STALL]),
    mutant("medium-never-repeats", ALARMS, "self.non_critical_repeat_ms = NON_CRITICAL_REPEAT_MS",
           "self.non_critical_repeat_ms = 10 ** 12", "a medium alarm never sounds again", [ERI],
           hazard="an alarm unheard"),
    mutant("unacked-never-repeats", ALARMS, "                self.next_sound[code] = now_ms + self.repeat_ms(code)",
           "                self.next_sound[code] = now_ms + 10 ** 12",
           "an unacknowledged alarm sounds once only", REPEATS + [ERI]),
    mutant("alarm-test-one-pattern", APP, "self.test_queue = [alarms.TWO_TONE, alarms.SINGLE]",
           "self.test_queue = [alarms.TWO_TONE]", "the alarm test plays one pattern", [ALARM_TEST]),

    # -- watchdog and stop -------------------------------------------------------------------
    mutant("no-watchdog", HAL, "self._wdt = machine.WDT(timeout=timeout_ms) if timeout_ms else None",
           "self._wdt = None", "no watchdog", [WATCHDOG], hazard="withdrawal: firmware hangs"),
    mutant("maintenance-unbounded", HAL, "if Clock.rtc_ms() < end_rtc_ms:", "if True:",
           "maintenance keeps the pump from its therapy for as long as nobody resets it",
           [MAINTENANCE + "test_maintenance_ends_by_itself_at_its_time_limit"],
           hazard="withdrawal: maintenance left open"),
    mutant("maintenance-unfed-after-soft-reset", HAL, "    watchdog.keep_fed(until_ms)", "    pass",
           "a soft reset in maintenance leaves the watchdog unfed: the board resets under mpremote",
           [MAINTENANCE + "test_soft_resets_in_maintenance_keep_the_watchdog_fed"]),
    mutant("no-key-takes-the-line", APP, "if hw.key is None:", "if False:",
           "a pump with no key runs its loop: nothing can provision it",
           ["tests/emu/test_firmware_on_blank_flash.py::test_deploy_then_provision_from_blank_flash"]),
    mutant("reset-reason-unwritten", HAL, "    note_reset(cause, clock)", "    pass",
           "an intended reset is logged as the chip's cause (rp2: a watchdog reset, like a hang)",
           [HAZARDS + "test_an_unexpected_error_is_logged_and_resets_and_therapy_resumes[verb]"]),
    mutant("crash-to-repl", APP, "hw.fault(exc)  # logs firmware_fault and resets: does not return", "pass",
           "an unexpected error drops the pump into the REPL",
           [HAZARDS + "test_an_unexpected_error_is_logged_and_resets_and_therapy_resumes[verb]"],
           hazard="withdrawal: a crash stops therapy silently"),
    mutant("stop-unconfirmed", APP, "if args.get(\"confirm\") is not True:", "if False:",
           "stop and minimum rate need no confirmation",
           [HAZARDS + "test_stopping_or_dropping_to_the_minimum_rate_needs_confirmation"],
           hazard="withdrawal: therapy stopped unknowingly"),
    mutant("stopped-silent", CORE, "a.set(al.THERAPY_STOPPED, self.therapy.mode == STOP, now_ms)",
           "a.set(al.THERAPY_STOPPED, False, now_ms)", "a stopped pump raises no alarm",
           [HAZARDS + "test_a_stopped_pump_is_never_silent"], hazard="withdrawal: therapy stopped unknowingly"),
    mutant("low-battery-reset-quiet", CORE, "self.alarms.raise_(al.LOW_BATTERY_RESET, now_ms)", "pass",
           "a low-battery reset sounds no alarm",
           [HAZARDS + "test_a_low_battery_reset_sounds_high_priority_until_reprogrammed"]),
    mutant("stop-warning-silent", CORE,
           "(\"therapy stopped: abrupt discontinuation of intrathecal baclofen can cause high fever, \"",
           "(\"therapy stopped; \"", "`program stop` without the withdrawal warning", [STOP],
           hazard="withdrawal: therapy stopped unknowingly"),
    mutant("rtc-always-believed", HAL, "if saved_ms is None or rtc_ms >= saved_ms:", "if True:",
           "pump time is the RTC's whatever it reads, as with raw time.time_ns()",
           [CLOCK_TESTS + "test_50_power_cuts_with_a_volatile_rtc_never_turn_pump_time_back",
            CLOCK_TESTS + "test_power_cuts_at_any_moment_lose_at_most_one_stroke_interval_each"],
           hazard="withdrawal: therapy waits for a clock that went back"),
    mutant("status-time-unsaved", HAL, "self._store.save(struct.pack(_CLOCK_RECORD, now_ms, self.offset_ms), stroke=True)",
           "pass", "the time a status shows is not saved: a reset takes pump time back before it",
           [CLOCK_TESTS + "test_50_power_cuts_with_a_volatile_rtc_never_turn_pump_time_back"]),
    mutant("set-clock-backwards", CORE, "if newest_ms is not None and new_ms < newest_ms:", "if False:",
           "set-clock takes pump time back before the newest saved time",
           [CLOCK_TESTS + "test_set_clock_is_refused_one_ms_before_the_newest_saved_time_and_accepted_at_it"]),
    mutant("clock-restored-quiet", CORE, "self.alarms.raise_(al.CLOCK_RESTORED, now_ms)", "pass",
           "a restored clock raises no alarm",
           [CLOCK_TESTS + "test_50_power_cuts_with_a_volatile_rtc_never_turn_pump_time_back",
            "tests/unit/test_clock.py::test_a_schedule_saved_later_than_the_clock_raises_clock_restored_and_therapy_goes_on"]),
    mutant("schedule-ahead-waits", CORE, "t.t_ms = now_ms", "pass",
           "a schedule later than the clock makes therapy wait for it",
           ["tests/unit/test_clock.py::test_a_schedule_saved_later_than_the_clock_raises_clock_restored_and_therapy_goes_on"]),
]
