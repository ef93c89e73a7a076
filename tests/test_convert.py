"""The worked cases D1–D13 of DOMAIN.md through the public ``daq.convert`` API, and bad inputs."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from daq import convert as cv

# (id, compute, expected, absolute tolerance)
Case = tuple[str, Callable[[], float], float, float]

D8 = dict(a=1.12766979300187e-3, b=2.34444184128213e-4, c=8.47692130592308e-8,
          d=1.17512193579615e-11, kelvin_offset=273.2)


def ks90_lps(h: float) -> float:
    """D11: Kindsvater–Shen 90°, Ce 0.578, kh 0.85 mm, g 9.81, flow in L/s."""
    return cv.v_notch_kindsvater_shen(h, 90.0, ce=0.578, kh=0.00085, gravity=9.81).flow * 1000


CASES: list[Case] = [
    ("D1-digits", lambda: cv.digits_from_frequency(2828.427), 8000.0, 0.5),
    ("D1-period-us", lambda: cv.period_us_from_frequency(2828.427), 353.55, 0.005),
    ("D2-digits", lambda: cv.digits_from_frequency(3000.0), 9000.0, 1e-9),
    ("D3-linear-kPa", lambda: cv.linear_pressure(6749, 9082, -0.1795), 418.77, 0.05),
    ("D4-linear-psi", lambda: cv.linear_pressure(7023, 2509, -0.0001954), -0.8820, 0.0005),
    ("D5-geokon-temperature",
     lambda: cv.temperature_correction(15, 22, 0.1319, "geokon"), -0.923, 0.005),
    ("D6-lc2-units",
     lambda: cv.polynomial_pressure(cv.lc2_from_frequency(3000.0), 0.0, 1.0, 0.0), 9.000, 1e-9),
    ("D7-head", lambda: cv.head_from_pressure(418.7735, 1000.0, 9.80665), 42.703, 0.001),
    ("D7-elevation",
     lambda: cv.piezometric_elevation(40.0, cv.head_from_pressure(418.7735, 1000.0, 9.80665)),
     82.703, 0.001),
    ("D8-10000-ohm", lambda: cv.steinhart_hart(10000.0, **D8), 24.95, 0.05),
    ("D8-32650-ohm", lambda: cv.steinhart_hart(32650.0, **D8), -0.05, 0.05),
    ("D9-usbr-1.00ft", lambda: cv.v_notch_usbr_90(1.00).flow, 2.490, 2.490e-3),
    ("D9-usbr-0.50ft", lambda: cv.v_notch_usbr_90(0.50).flow, 0.4463, 0.4463e-3),
    ("D9-usbr-0.20ft", lambda: cv.v_notch_usbr_90(0.20).flow, 0.04600, 0.04600e-3),
    ("D10-sl-0.05m", lambda: cv.v_notch_sl_90(0.05).flow * 1000, 0.7826, 0.00005),
    ("D10-sl-0.10m", lambda: cv.v_notch_sl_90(0.10).flow * 1000, 4.4272, 0.00005),
    ("D10-sl-0.20m", lambda: cv.v_notch_sl_90(0.20).flow * 1000, 25.044, 0.0005),
    ("D10-sl-0.30m", lambda: cv.v_notch_sl_90(0.30).flow * 1000, 69.013, 0.0005),
    ("D11-ks-0.05m", lambda: ks90_lps(0.05),
     0.7962, 0.7962 * 5e-4),
    ("D11-ks-0.10m", lambda: ks90_lps(0.10),
     4.4103, 4.4103 * 5e-4),
    ("D11-ks-0.20m", lambda: ks90_lps(0.20),
     24.686, 24.686 * 5e-4),
    ("D12-francis-us", lambda: cv.rectangular_francis(0.5, 2.0, unit="ft").flow, 2.2369, 5e-5),
    ("D12-francis-si", lambda: cv.rectangular_francis(0.1, 0.5, unit="m").flow * 1000,
     27.90, 0.005),
    ("D13-radar", lambda: cv.level_from_distance(95.000, 13.010), 81.990, 1e-9),
]


@pytest.mark.parametrize(("compute", "expected", "tol"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_worked_case_matches_domain_table(compute: Callable[[], float], expected: float,
                                          tol: float) -> None:
    """Each DOMAIN.md worked case is reproduced within its stated tolerance."""
    assert compute() == pytest.approx(expected, abs=tol)


def test_roctest_temperature_correction_has_the_opposite_sign_of_geokon() -> None:
    """Roctest subtracts CT·(T1 − T0) where Geokon adds K·(T1 − T0)."""
    assert cv.temperature_correction(15, 22, 0.1319, "roctest") == pytest.approx(0.9233)


def test_r0_minus_r1_convention_flips_the_sign_of_the_linear_reduction() -> None:
    """G·(R0 − R1) with a positive G gives the D3 pressure."""
    assert cv.linear_pressure(6749, 9082, 0.1795, "r0_minus_r1") == pytest.approx(418.7735)


def test_polynomial_with_field_zero_is_zero_at_r0_and_lc2_scaling_agrees() -> None:
    """C from the field zero zeroes the polynomial at R0; sheet scaled to LC-2 units gives
    the same pressure as the sheet applied to digits."""
    a, b, r0 = 1.2e-8, -0.18, 9082.0
    c = cv.polynomial_zero_offset(a, b, r0)
    assert cv.polynomial_pressure(r0, a, b, c) == pytest.approx(0.0, abs=1e-9)
    f = 2700.0
    in_digits = cv.polynomial_pressure(cv.digits_from_frequency(f), a, b, c)
    a2, b2, c2 = cv.scale_coefficients_to_lc2(a, b, c)
    in_lc2 = cv.polynomial_pressure(cv.lc2_from_frequency(f), a2, b2, c2)
    assert in_lc2 == pytest.approx(in_digits, rel=1e-12)


def test_period_and_frequency_inputs_give_the_same_digits() -> None:
    """R from a period in µs equals R from the matching frequency."""
    assert cv.digits_from_period_us(353.5534) == pytest.approx(8000.0, abs=0.01)
    assert cv.reading_from_input(9.0, "lc2", "digits") == pytest.approx(9000.0)
    assert cv.reading_from_input(3000.0, "frequency", "lc2") == pytest.approx(9.0)


def test_tanaka_density_matches_the_cipm_table_and_moves_level_36_mm_at_20_m() -> None:
    """ρ(4 °C) ≈ 999.972, ρ(20 °C) = 998.2067 kg/m³; 1000 vs ρ(20 °C) differs ~36 mm at
    20 m of water (DOMAIN.md)."""
    assert cv.water_density_tanaka(20.0) == pytest.approx(998.2067, abs=1e-4)
    assert cv.water_density_tanaka(4.0) == pytest.approx(999.9750, abs=1e-3)
    p = cv.pressure_from_head(20.0, 1000.0, 9.80665)
    h = cv.head_from_pressure(p, cv.water_density_tanaka(20.0), 9.80665)
    assert (h - 20.0) * 1000 == pytest.approx(35.9, abs=0.5)


def test_weir_heads_outside_the_formula_range_are_reported_not_hidden() -> None:
    """Below 0.2 ft the USBR V-notch still computes but says out of range; h ≤ 0 is no flow."""
    low = cv.v_notch_usbr_90(0.15)
    assert not low.in_range and low.flow > 0
    assert cv.v_notch_usbr_90(1.25).in_range and not cv.v_notch_usbr_90(1.3).in_range
    assert cv.v_notch_sl_90(-0.01) == (0.0, False, 0.05, 0.30)
    assert cv.v_notch_usbr_90(0.5 * 0.3048, unit="m").flow == pytest.approx(
        0.4463 * 0.3048**3, rel=1e-3)


def test_kindsvater_shen_coefficients_from_the_angle_match_the_90_degree_values() -> None:
    """The angle fit gives Ce 0.578 and kh ≈ 0.85–0.9 mm at 90°; 25–100° only."""
    ce, kh = cv.kindsvater_shen_coefficients(90.0)
    assert ce == pytest.approx(0.578, abs=0.001)
    assert 0.00080 < kh < 0.00095
    fitted = cv.v_notch_kindsvater_shen(0.10, 90.0, gravity=9.81).flow
    assert fitted == pytest.approx(4.4103e-3, rel=0.005)
    with pytest.raises(ValueError):
        cv.kindsvater_shen_coefficients(120.0)


def test_kindsvater_carter_and_cipolletti_follow_their_formulas() -> None:
    """Kindsvater–Carter with Ce 0.602, kb −0.9 mm, kh 1 mm; Cipolletti 1.86·L·h^1.5."""
    q = cv.rectangular_kindsvater_carter(0.1, 0.5, ce=0.602, kb=-0.0009, kh=0.001,
                                         gravity=9.81).flow
    expected = 0.602 * 2 / 3 * math.sqrt(2 * 9.81) * (0.5 - 0.0009) * 0.101**1.5
    assert q == pytest.approx(expected, rel=1e-12)
    assert cv.cipolletti(0.1, 0.5).flow == pytest.approx(1.86 * 0.5 * 0.1**1.5)
    assert cv.cipolletti(0.5, 1.0, unit="ft").flow == pytest.approx(3.367 * 0.5**1.5)
    assert not cv.cipolletti(0.3, 0.5).in_range  # h > L/3


def test_level_methods_give_the_site_level() -> None:
    """Vented, unvented, ultrasonic and encoder levels, and the staff-gauge offset."""
    p = cv.pressure_from_head(21.99, 998.2067, 9.80665)
    assert cv.level_from_pressure(p, 60.0, 998.2067, 9.80665) == pytest.approx(81.99)
    assert cv.level_unvented(p + 101.3, 101.3, 60.0, 998.2067, 9.80665) == pytest.approx(81.99)
    assert cv.speed_of_sound_air(20.0) == pytest.approx(343.59)
    assert cv.ultrasonic_distance(0.02, 20.0) == pytest.approx(3.4359)
    assert cv.level_from_encoder(1100, 1000, 81.0, 0.5, 100) == pytest.approx(81.5)
    assert cv.staff_gauge_offset(81.995, 81.990) == pytest.approx(0.005)


@pytest.mark.parametrize(("ma", "value", "status"), [
    (4.0, 0.0, "ok"), (12.0, 5.0, "ok"), (20.0, 10.0, "ok"), (20.5, 10.3125, "ok"),
    (20.6, 10.375, "over_range"), (3.7, -0.1875, "under_range"), (0.0, -2.5, "wire_break"),
    (3.59, -0.25625, "wire_break"),
])
def test_4_20ma_scaling_and_namur_ne43_status(ma: float, value: float, status: str) -> None:
    """4–20 mA maps linearly to 0–10; < 3.6 mA is a wire break, > 20.5 mA over range."""
    out = cv.scale_4_20ma(ma, 0.0, 10.0)
    assert out.value == pytest.approx(value)
    assert out.status == status


@pytest.mark.parametrize("call", [
    lambda: cv.digits_from_frequency(float("nan")),
    lambda: cv.digits_from_frequency(0.0),
    lambda: cv.digits_from_frequency(-10.0),
    lambda: cv.period_us_from_frequency(0.0),
    lambda: cv.digits_from_period_us(0.0),
    lambda: cv.steinhart_hart(-5.0, **D8),
    lambda: cv.steinhart_hart(0.0, **D8),
    lambda: cv.steinhart_hart(float("nan"), **D8),
    lambda: cv.linear_pressure(float("nan"), 9082, -0.1795),
    lambda: cv.linear_pressure(6749, 9082, -0.1795, "backwards"),
    lambda: cv.temperature_correction(15, 22, 0.1319, "vendor_x"),
    lambda: cv.head_from_pressure(100.0, 0.0, 9.81),
    lambda: cv.head_from_pressure(100.0, 1000.0, -9.81),
    lambda: cv.water_density_tanaka(55.0),
    lambda: cv.v_notch_usbr_90(float("nan")),
    lambda: cv.v_notch_usbr_90(1.0, unit="yard"),
    lambda: cv.rectangular_francis(0.1, 0.0),
    lambda: cv.level_from_distance(95.0, -1.0),
    lambda: cv.ultrasonic_distance(0.0, 20.0),
    lambda: cv.scale_4_20ma(float("inf"), 0.0, 10.0),
    lambda: cv.to_kpa(1.0, "atm-ish"),
], ids=["nan-Hz", "0-Hz", "negative-Hz", "period-of-0-Hz", "0-us-period",
        "negative-ohm", "0-ohm", "nan-ohm", "nan-R1", "unknown-sign", "unknown-temp-convention",
        "zero-density", "negative-g", "density-out-of-range", "nan-head", "unknown-unit",
        "zero-crest", "negative-distance", "zero-echo", "infinite-mA", "unknown-pressure-unit"])
def test_impossible_inputs_raise_value_error(call: Callable[[], float]) -> None:
    """Impossible inputs raise ValueError with a message, never return a number."""
    with pytest.raises(ValueError):
        call()
