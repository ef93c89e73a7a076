"""The shared GNSS data model: time scales, leap seconds, satellite ids, wavelengths."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from daq.gnss.obs import (
    CLIGHT,
    GNSSTime,
    ObsEpoch,
    leap_seconds,
    parse_sat,
    wavelength,
)


def test_utc_to_gpst_adds_18_leap_seconds_since_2017() -> None:
    t = GNSSTime.from_utc(datetime(2022, 2, 25, 13, 0, 0))
    assert (t.week, t.sow) == (2198, 5 * 86400 + 13 * 3600 + 18)
    assert t.to_utc() == datetime(2022, 2, 25, 13, 0, 0)


def test_aware_utc_datetimes_are_accepted() -> None:
    assert GNSSTime.from_utc(datetime(2024, 6, 24, 8, 20, tzinfo=UTC)) == GNSSTime.from_utc(
        datetime(2024, 6, 24, 8, 20))


def test_leap_second_table_steps_at_the_announced_dates() -> None:
    assert leap_seconds(datetime(2016, 12, 31, 23, 59, 59)) == 17
    assert leap_seconds(datetime(2017, 1, 1)) == 18
    assert leap_seconds(datetime(1980, 1, 6)) == 0


def test_bdt_is_gpst_minus_14_s_with_weeks_from_2006() -> None:
    gps = GNSSTime(2198, 478818.0)
    bdt = gps.to_scale("BDT")
    assert (bdt.week, bdt.sow, bdt.scale) == (2198 - 1356, 478804.0, "BDT")
    assert bdt.to_scale("GPST") == gps
    assert GNSSTime(0, 10.0, "BDT").to_scale("GPST") == GNSSTime(1356, 24.0)


def test_week_rollover_is_normalised_when_adding_seconds() -> None:
    assert GNSSTime(2198, 604790.0).add(20.0) == GNSSTime(2199, 10.0)
    assert GNSSTime(842, 5.0, "BDT").to_scale("GPST").to_scale("BDT") == GNSSTime(842, 5.0,
                                                                                     "BDT")


def test_calendar_round_trip_keeps_sub_second_parts() -> None:
    t = GNSSTime.from_calendar(datetime(2021, 8, 9, 16, 10, 31, 197000))
    assert t.to_calendar() == datetime(2021, 8, 9, 16, 10, 31, 197000)
    assert math.isclose(t.gps_seconds, t.week * 604800 + t.sow)


def test_satellite_ids_are_normalised_to_rinex3() -> None:
    assert parse_sat(" 5") == "G05"
    assert parse_sat("R7") == "R07"
    assert parse_sat("C19") == "C19"
    with pytest.raises(ValueError):
        parse_sat("X01")


def test_wavelengths_per_system_and_glonass_channel() -> None:
    assert wavelength("G", "L1C") == pytest.approx(0.190293672798, rel=1e-10)
    assert wavelength("C", "L2I") == pytest.approx(CLIGHT / 1561.098e6)
    assert wavelength("E", "L7Q") == pytest.approx(CLIGHT / 1207.14e6)
    assert wavelength("R", "L1C", 1) == pytest.approx(CLIGHT / 1602.5625e6)
    assert wavelength("R", "L2C", -7) == pytest.approx(CLIGHT / (1246e6 - 7 * 0.4375e6))
    with pytest.raises(ValueError):
        wavelength("R", "L1C")


def test_epoch_lookup_and_select_keep_values_lli_and_ssi() -> None:
    ep = ObsEpoch.empty(GNSSTime(2198, 0.0), ("G01", "C19"), ("C1C", "L1C", "L2I"))
    ep.values[0, 1], ep.lli[0, 1], ep.ssi[0, 1] = 1.25e8, 1, 7
    ep.values[1, 2] = 2.0e8
    assert ep.get("G01", "L1C") == 1.25e8
    assert math.isnan(ep.get("G01", "L2I")) and math.isnan(ep.get("G09", "L1C"))
    narrow = ep.select(("L1C", "D1C"))
    assert narrow.codes == ("L1C", "D1C")
    assert narrow.values[0, 0] == 1.25e8 and narrow.lli[0, 0] == 1 and narrow.ssi[0, 0] == 7
    assert np.isnan(narrow.column("D1C")).all()
