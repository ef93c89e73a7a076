"""``daq convert`` run in-process through argparse, as the ``daq`` command wires it."""

from __future__ import annotations

import argparse
import json

import pytest

from daq.convert import cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="daq")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert run([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_vw_digits_prints_digits_and_period_with_units(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """``daq convert vw-digits 2828.427`` prints 8000 digits and 353.553 µs (D1)."""
    assert run(["convert", "vw-digits", "2828.427"]) == 0
    out = capsys.readouterr().out
    assert "f = 2828.427 Hz" in out
    assert "8000 digits" in out and "353.553 µs" in out
    res = run_json(["convert", "vw-digits", "2828.427"], capsys)["results"]
    assert res["digits"]["value"] == pytest.approx(8000.0, abs=0.5)
    assert res["period"] == {"value": pytest.approx(353.55, abs=0.005), "unit": "µs"}


def test_params_may_come_between_kind_and_value(capsys: pytest.CaptureFixture[str]) -> None:
    """``vw-linear --param G=-0.1795 --param R0=9082 6749`` gives 418.77 kPa (D3)."""
    doc = run_json(["convert", "vw-linear", "--param", "G=-0.1795", "--param", "R0=9082",
                    "6749"], capsys)
    assert doc["results"]["pressure"]["value"] == pytest.approx(418.77, abs=0.05)
    assert doc["params"] == {"g": -0.1795, "r0": 9082.0, "sign": "r1_minus_r0"}


def test_weir_usbr_in_feet_reports_flow_and_range(capsys: pytest.CaptureFixture[str]) -> None:
    """``weir-usbr-90 --unit ft 1.0`` gives 2.490 cfs, in range; 0.1 ft is out of range."""
    res = run_json(["convert", "weir-usbr-90", "--unit", "ft", "1.0"], capsys)["results"]
    assert res["flow"] == {"value": pytest.approx(2.49, rel=1e-3), "unit": "cfs"}
    assert res["in_range"]["value"] is True
    low = run_json(["convert", "weir-usbr-90", "--unit", "ft", "0.1"], capsys)["results"]
    assert low["in_range"]["value"] is False


@pytest.mark.parametrize(("argv", "expected", "key"), [
    (["thermistor", "-p", "A=1.12766979300187e-3", "-p", "B=2.34444184128213e-4", "-p",
      "C=8.47692130592308e-8", "-p", "D=1.17512193579615e-11", "-p", "offset=273.2", "32650"],
     -0.05, "temperature"),
    (["head", "-p", "g=9.80665", "-p", "rho=1000", "-p", "tip=40", "418.7735"], 82.703,
     "elevation"),
    (["weir-sl-90", "0.2"], 25.044, "flow_lps"),
    (["weir-ks", "-p", "g=9.81", "-p", "Ce=0.578", "-p", "kh=0.00085", "0.1"], 4.4103,
     "flow_lps"),
    (["weir-francis", "--unit", "ft", "-p", "L=2", "0.5"], 2.2369, "flow"),
    (["level-distance", "-p", "zero=95", "13.010"], 81.99, "level"),
    (["ma", "-p", "low=0", "-p", "high=10", "-p", "unit=m", "12"], 5.0, "value"),
    (["vw-temp", "-p", "K=0.1319", "-p", "T0=22", "15"], -0.923, "correction"),
    (["vw-lc2", "3000"], 9.000, "lc2"),
    (["vw-poly", "-p", "A=0", "-p", "B=1", "-p", "C=0", "9"], 9.000, "pressure"),
    (["level-encoder", "-p", "reference=81", "-p", "counts0=1000", "-p", "circumference=0.5",
      "-p", "ppr=100", "1198"], 81.99, "level"),
    (["level-pressure", "-p", "z=60", "-p", "g=9.80665", "-p", "rho=1000", "-p", "baro=101.3",
      f"{101.3 + 21.99 * 9.80665}"], 81.99, "level"),
], ids=["thermistor-D8", "head-D7", "sl-D10", "ks-D11", "francis-D12", "radar-D13", "ma",
        "temp-D5", "lc2-D6", "poly-D6", "encoder", "unvented-level"])
def test_each_kind_reproduces_its_worked_case(argv: list[str], expected: float, key: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI gives the DOMAIN.md answers through the same public functions."""
    res = run_json(["convert", *argv], capsys)["results"]
    assert res[key]["value"] == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize(("argv", "message"), [
    (["vw-lineer", "3"], "did you mean vw-linear"),
    (["vw-linear", "--param", "G=1", "5"], "missing parameter(s) R0"),
    (["vw-linear", "--param", "G=x", "--param", "R0=1", "5"], "must be a number"),
    (["vw-linear", "--param", "Q=1", "5"], "unknown parameter"),
    (["vw-digits", "0"], "greater than zero"),
    (["vw-digits", "nan"], "must be finite"),
    (["vw-digits"], "needs VALUE"),
    (["vw-digits", "--unit", "ft", "3"], "takes no --unit"),
    (["head", "-p", "g=9.8", "100"], "exactly one of rho"),
    (["vw-digits", "3", "--bogus"], "unrecognized arguments"),
], ids=["unknown-kind", "missing-param", "bad-param", "unknown-param", "zero-Hz", "nan",
        "no-value", "bad-unit", "no-density", "bad-option"])
def test_bad_requests_exit_2_with_a_clear_message(argv: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown kinds, missing or bad parameters and impossible values: message, exit 2."""
    assert run(["convert", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_list_names_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    """``daq convert list`` shows every kind with its input unit."""
    assert run(["convert", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.KINDS)
