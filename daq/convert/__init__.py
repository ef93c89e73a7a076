"""Engineering conversions for dam-safety instruments: pure functions, numbers in and out.

Every function documents its units and convention and raises ``ValueError`` on an
impossible input (NaN, 0 Hz, a negative resistance ...). Formulas, sources and the config
keys that select them: ``docs/conversions.md``.
"""

from .level import (
    CurrentScaled,
    level_from_distance,
    level_from_encoder,
    level_from_pressure,
    level_from_pressure_factor,
    level_unvented,
    scale_4_20ma,
    speed_of_sound_air,
    staff_gauge_offset,
    ultrasonic_distance,
)
from .thermistor import steinhart_hart
from .vw import (
    barometric_correction,
    digits_from_frequency,
    digits_from_lc2,
    digits_from_period_us,
    frequency_from_period_us,
    lc2_from_digits,
    lc2_from_frequency,
    linear_pressure,
    period_us_from_frequency,
    polynomial_pressure,
    polynomial_zero_offset,
    reading_from_input,
    scale_coefficients_to_lc2,
    temperature_correction,
)
from .water import (
    PRESSURE_UNITS_KPA,
    STANDARD_GRAVITY,
    head_from_pressure,
    piezometric_elevation,
    pressure_from_head,
    to_kpa,
    water_density_tanaka,
)
from .weirs import (
    WeirFlow,
    cipolletti,
    kindsvater_shen_coefficients,
    rectangular_francis,
    rectangular_kindsvater_carter,
    v_notch_kindsvater_shen,
    v_notch_sl_90,
    v_notch_usbr_90,
)

__all__ = [
    "PRESSURE_UNITS_KPA",
    "STANDARD_GRAVITY",
    "CurrentScaled",
    "WeirFlow",
    "barometric_correction",
    "cipolletti",
    "digits_from_frequency",
    "digits_from_lc2",
    "digits_from_period_us",
    "frequency_from_period_us",
    "head_from_pressure",
    "kindsvater_shen_coefficients",
    "lc2_from_digits",
    "lc2_from_frequency",
    "level_from_distance",
    "level_from_encoder",
    "level_from_pressure",
    "level_from_pressure_factor",
    "level_unvented",
    "linear_pressure",
    "period_us_from_frequency",
    "piezometric_elevation",
    "polynomial_pressure",
    "polynomial_zero_offset",
    "pressure_from_head",
    "reading_from_input",
    "rectangular_francis",
    "rectangular_kindsvater_carter",
    "scale_4_20ma",
    "scale_coefficients_to_lc2",
    "speed_of_sound_air",
    "staff_gauge_offset",
    "steinhart_hart",
    "temperature_correction",
    "to_kpa",
    "ultrasonic_distance",
    "v_notch_kindsvater_shen",
    "v_notch_sl_90",
    "v_notch_usbr_90",
    "water_density_tanaka",
]
