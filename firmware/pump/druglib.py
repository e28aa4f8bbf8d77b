# The drug library and the dose guard: the pump's last line of defence, whatever the host sends.
# Values and their sources (the files in the project's seed documents) in one place.
DRUG = "baclofen (intrathecal)"

# µg/mL. Lioresal Intrathecal 50, 500 and 2000 µg/mL (001_2ca3bb212e8effd8.txt); Gablofen also
# comes as 1000 µg/mL.
CONCENTRATIONS_UG_PER_ML = (50, 500, 1000, 2000)

# Maintenance ranges reach 2003 µg/day for spinal spasticity (001_2ca3bb212e8effd8.txt); over
# 1000 µg/day has limited clinical experience (004_91c75fc861e609d6.txt). The hard limit is the
# top of the labelled range.
MAX_DAILY_DOSE_UG = 2000

# Screening test doses are 25-100 µg and must not exceed 100 µg a day (004_91c75fc861e609d6.txt;
# ladder 50/75/100 µg in 001_2ca3bb212e8effd8.txt): no bolus dosing beyond that in 24 h.
MAX_BOLUS_UG_PER_24H = 100

# The mechanism's limit: 1 mL/h (the reference pump's bolus rate).
MAX_RATE_NL_PER_DAY = 24000000

# Keeps the catheter open while therapy is otherwise stopped: 6 µL/day, the reference pump's
# minimum rate.
MINIMUM_RATE_NL_PER_DAY = 6000

# Reservoir of the reference pump: 40 mL (refills every 4-12 weeks, 003_8789024638f30376.txt).
RESERVOIR_CAPACITY_UL = 40000

# A refill whose withdrawn volume is this far from the calculated one suggests a malfunction
# (the reference pump's manufacturer: over-infusion beyond 14.5 %). Tenths of a percent.
DISCREPANCY_LIMIT_PERMILLE = 145

# Elective refill reminder, days after a refill (refill every 4-12 weeks, 003_8789024638f30376.txt).
REFILL_REMINDER_DAYS = 84
# ... or this many days before the programme is projected to run the reservoir low, if sooner:
# a week to schedule a refill visit (the label: "careful attention to ... refill scheduling").
REMINDER_LEAD_DAYS = 7

# Flex schedules: up to 13 steps a day.
MAX_FLEX_STEPS = 13

# A patient bolus is delivered over this many minutes.
PATIENT_BOLUS_MINUTES = 10

# Defaults of the alarm thresholds, µL.
LOW_RESERVOIR_UL = 2000
EMPTY_RESERVOIR_UL = 500

# Pump tubing between reservoir and catheter port, µL (programmable; the catheter is per patient
# and has no default: it must be measured and set before a concentration change or a priming).
TUBING_UL = 150

# What `config` accepts, (low, high) inclusive: a setting outside is a typing error, never a
# choice. Reservoir thresholds in µL: the reference pump's low-reservoir alarm is programmable
# around 2 mL and its empty alarm around 0.5 mL within a 40 mL reservoir; discrepancy in permille
# around the manufacturer's 14.5 %; dead volumes of implanted catheters are tens to hundreds of
# µL (a full-length catheter about 0.2-0.3 mL), pump tubing about 0.15 mL.
CONFIG_RANGES = {
    "empty_reservoir_ul": (500, 2000),
    "low_reservoir_ul": (1000, 10000),
    "discrepancy_limit_permille": (50, 250),
    "catheter_ul": (0, 500),
    "tubing_ul": (0, 200),
    "reminder_lead_days": (0, 28),
}
