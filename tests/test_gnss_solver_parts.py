"""The solver's parts: LAMBDA, troposphere, coordinates, deformation output, CLI."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from daq.gnss.cli.solve import main as cli_main
from daq.gnss.solver import ambiguity as lam
from daq.gnss.solver.baseline import BaselineSolution
from daq.gnss.solver.deformation import DamAxes, ReferenceEpoch, deformation
from daq.gnss.solver.geodesy import (
    azimuth_elevation,
    dam_axes,
    ecef_delta_to_enu,
    ecef_to_geodetic,
    geodetic_to_ecef,
)
from daq.gnss.solver.troposphere import (
    niell_hydrostatic,
    saastamoinen_zenith,
    slant_hydrostatic_delay,
)

GNSS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
MAT = GNSS / "matrtklib_static_5min"


def _spd(n: int, seed: int, scale: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    return (a @ a.T) * scale / n + np.eye(n) * 1e-3


def test_lambda_recovers_true_integers_of_a_correlated_problem() -> None:
    """Float ambiguities drawn around known integers with a strongly correlated
    covariance: the best candidate is the truth and the ratio passes."""
    q = _spd(12, 3)
    rng = np.random.default_rng(7)
    truth = rng.integers(-50, 50, size=12).astype(float)
    a = truth + rng.multivariate_normal(np.zeros(12), q * 0.05)
    sol = lam.lambda_search(a, q)
    np.testing.assert_array_equal(sol.best, truth)
    assert sol.ratio > 3.0
    assert sol.sq_norms[0] <= sol.sq_norms[1]


def test_lambda_matches_brute_force_integer_least_squares() -> None:
    """On a 3-D problem the two best candidates and their squared norms equal an
    exhaustive search of the integer grid."""
    q = _spd(3, 11, 0.5)
    a = np.array([1.3, -0.6, 2.45])
    qi = np.linalg.inv(q)
    grid = sorted((float((a - np.array(z)) @ qi @ (a - np.array(z))), z)
                   for z in itertools.product(range(-6, 9), repeat=3))
    sol = lam.lambda_search(a, q)
    np.testing.assert_array_equal(sol.candidates[:, 0], grid[0][1])
    np.testing.assert_array_equal(sol.candidates[:, 1], grid[1][1])
    np.testing.assert_allclose(sol.sq_norms, [grid[0][0], grid[1][0]], rtol=1e-9)


def test_lambda_kernels_match_their_python_versions() -> None:
    """Compiled LᵀDL factorisation, reduction and search equal their .py_func."""
    q = _spd(8, 5)
    out = []
    for ld, red, search in ((lam._ld_factor, lam._reduce, lam._search),
                            (lam._ld_factor.py_func, lam._reduce.py_func,
                             lam._search.py_func)):
        lm, d, z = np.zeros((8, 8)), np.zeros(8), np.eye(8)
        assert ld(q, lm, d) == 0
        red(lm, d, z)
        zn, s = np.zeros((8, 2)), np.zeros(2)
        assert search(lm, d, z.T @ np.linspace(-3.3, 4.1, 8), zn, s) == 0
        out.append((lm, d, z, zn, s))
    for x, y in zip(out[0], out[1], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_lambda_rejects_bad_input_and_validation_names_the_reason() -> None:
    """A covariance that is not positive definite, or NaNs, raise AmbiguityError; the
    validation says "ratio too low" or "too few ambiguities"."""
    with pytest.raises(lam.AmbiguityError):
        lam.lambda_search(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(lam.AmbiguityError):
        lam.lambda_search(np.array([np.nan, 1.0]), np.eye(2))
    weak = lam.lambda_search(np.array([0.5, 0.5, 0.5, 0.5]), np.eye(4))
    assert lam.validate_fix(weak, 3.0, 4).reason == "ratio too low"
    few = lam.lambda_search(np.array([0.01, 0.02]), np.eye(2) * 1e-4)
    assert lam.validate_fix(few, 3.0, 4).reason == "too few ambiguities"


def test_troposphere_is_rtklib_saastamoinen_with_niell_mapping() -> None:
    """Zenith hydrostatic delay at sea level, 45°: 2.3070 m (0.0022768·1013.25); the
    mapping is 1 at the zenith, ≈ 1/sin(el) at mid elevations, 0 below the horizon."""
    assert saastamoinen_zenith(math.radians(45.0), 0.0) == pytest.approx(2.30701, abs=1e-4)
    assert saastamoinen_zenith(0.3, 1e5) == 0.0
    m = niell_hydrostatic(np.radians([90.0, 30.0, 15.0, -1.0]), math.radians(18.5), 10.0, 56.0)
    assert m[0] == pytest.approx(1.0, abs=1e-4)
    assert m[1] == pytest.approx(1.0 / math.sin(math.radians(30.0)), rel=0.005)
    assert 3.7 < m[2] < 3.9 and m[3] == 0.0
    d = slant_hydrostatic_delay(np.radians([15.0]), math.radians(18.5), 10.0, 56.0)
    assert d[0] == pytest.approx(m[2] * saastamoinen_zenith(math.radians(18.5), 10.0))


def test_geodesy_round_trip_enu_and_elevation() -> None:
    """ECEF ↔ geodetic round trip to 0.1 mm; a point 100 m north (along the meridian) and
    10 m up of the base is ENU (0, 100, 10) within 1 mm (ENU is a tangent plane: the
    curvature over 100 m is 0.8 mm); a satellite overhead is at 90° elevation."""
    lat, lon, h = math.radians(35.134707705), math.radians(136.977577939), 104.853
    xyz = geodetic_to_ecef(lat, lon, h)
    lat2, lon2, h2 = ecef_to_geodetic(xyz)
    assert abs(lat2 - lat) * 6.4e6 < 1e-4 and abs(lon2 - lon) * 6.4e6 < 1e-4
    assert h2 == pytest.approx(h, abs=1e-4)
    e2 = 6.69437999014e-3
    meridian = 6378137.0 * (1 - e2) / (1 - e2 * math.sin(lat) ** 2) ** 1.5   # m per rad
    north = geodetic_to_ecef(lat + 100.0 / (meridian + h), lon, h + 10.0)
    enu = ecef_delta_to_enu(north - xyz, xyz)
    np.testing.assert_allclose(enu, [0.0, 100.0, 10.0], atol=0.001)
    up = geodetic_to_ecef(lat, lon, h + 2.0e7)
    assert math.degrees(azimuth_elevation(up, xyz)[1]) == pytest.approx(90.0, abs=1e-6)


def test_dam_axes_follow_the_stated_conventions() -> None:
    """Axis along east (azimuth 90°) with downstream on the right → downstream is south:
    a point moved 3 mm south, 2 mm east and 1 mm down reads along 2, downstream 3,
    vertical −1; with downstream on the left the downstream sign flips."""
    enu = np.array([2.0, -3.0, -1.0])
    np.testing.assert_allclose(dam_axes(enu, 90.0, "right"), [2.0, 3.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(dam_axes(enu, 90.0, "left"), [2.0, -3.0, -1.0], atol=1e-12)
    rot = dam_axes(np.array([[1.0, 1.0, 0.0]]), 45.0)
    np.testing.assert_allclose(rot, [[math.sqrt(2.0), 0.0, 0.0]], atol=1e-12)
    with pytest.raises(ValueError):
        dam_axes(enu, 90.0, "upstream")


def _solution(fixed: bool, enu: tuple[float, float, float]) -> BaselineSolution:
    e = np.array(enu)
    cov = np.eye(3) * 1e-7
    return BaselineSolution(
        verdict="fixed" if fixed else "ratio too low", fixed=fixed, ratio=5.0 if fixed else 1.4,
        baseline_xyz=e, rover_xyz=e, base_xyz=np.zeros(3), enu=e, cov_xyz=cov, cov_enu=cov,
        float_enu=e + 0.02, n_epochs=100, n_ambiguities=10, n_fixed=10 if fixed else 0,
        satellites={"G": 8, "C": 6}, residual_rms_m=0.004, start=1.33e9, end=1.33e9 + 14400)


def test_deformation_reports_mm_only_for_fixed_sessions() -> None:
    """A fixed session 2 mm east, 3 mm south and 1 mm lower than the reference reads
    along 2, downstream 3, vertical −1 mm on an east-pointing axis; a session that is not
    fixed publishes no millimetres at all, only its verdict and the labelled float."""
    axes = DamAxes(90.0, "right")
    ref = ReferenceEpoch.from_solution(_solution(True, (10.0, 20.0, 1.0)), "2024-01 survey")
    now = deformation("GNSS-3", _solution(True, (10.002, 19.997, 0.999)), axes, ref).to_dict()
    assert now["verdict"] == "fixed" and now["displacement_mm"] == {
        "along": 2.0, "downstream": 3.0, "vertical": -1.0}
    assert now["sigma_enu_mm"] == [0.32, 0.32, 0.32]
    bad = deformation("GNSS-3", _solution(False, (10.3, 19.8, 1.2)), axes, ref).to_dict()
    assert bad["verdict"] == "ratio too low" and bad["fixed"] is False
    assert bad["displacement_mm"] is None and bad["enu_m"] is None
    assert bad["float_enu_m"] == [10.32, 19.82, 1.22]
    json.dumps(now), json.dumps(bad)
    with pytest.raises(ValueError):
        ReferenceEpoch.from_solution(_solution(False, (0.0, 0.0, 0.0)))


@pytest.mark.skipif(not MAT.exists(), reason="shared GNSS data not present")
def test_cli_solve_prints_json_and_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """``daq gnss solve --json`` prints one fixed solution; a missing file or a bad
    --base-xyz exits 2 with a message on stderr."""
    lat, lon, h = (float(v) for v in (MAT / "base_position.txt").read_text().split())
    x, y, z = geodetic_to_ecef(math.radians(lat), math.radians(lon), h)
    args = ["solve", "--rover", str(MAT / "rover.obs"), "--base", str(MAT / "base.obs"),
            "--nav", str(MAT / "base.nav"), f"--base-xyz={x:.4f},{y:.4f},{z:.4f}",
            "--systems", "GC", "--start", "2024-06-24 08:20:00",
            "--end", "2024-06-24 08:23:00", "--json"]
    assert cli_main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "fixed" and out["fixed"] is True
    np.testing.assert_allclose(out["enu_m"], [-0.2232, -0.9643, 0.0072], atol=0.005)
    assert cli_main(args[:-1]) == 0
    assert "E N U" in capsys.readouterr().out
    bad = list(args)
    bad[bad.index("--rover") + 1] = str(MAT / "missing.obs")
    assert cli_main(bad) == 2
    assert "missing.obs" in capsys.readouterr().err
    bad = list(args)
    bad[bad.index(f"--base-xyz={x:.4f},{y:.4f},{z:.4f}")] = "--base-xyz=1,2"
    assert cli_main(bad) == 2


def test_normal_equation_kernels_match_their_python_versions() -> None:
    """The DD normal-equation and residual kernels equal their .py_func on an epoch of
    five satellites of one system, two bands, with ambiguity columns."""
    from daq.gnss.solver import kernels as kern
    from daq.gnss.solver.baseline import warm_kernels

    warm_kernels()
    rng = np.random.default_rng(2)
    n = 10                                   # two epochs of five satellites
    start = np.array([0, 5, 10], dtype=np.int64)
    system = np.zeros(n, dtype=np.int64)
    valid = np.ones((n, 2), dtype=np.bool_)
    valid[7, 1] = False
    el = rng.uniform(0.3, 1.4, n)
    y_ph, y_cd = rng.normal(0, 0.01, (n, 2)), rng.normal(0, 1.0, (n, 2))
    unit = rng.normal(size=(n, 3))
    unit /= np.linalg.norm(unit, axis=1)[:, None]
    lam_ = np.tile([0.19, 0.244], (n, 1))
    col = np.tile(np.arange(3, 13).reshape(5, 2), (2, 1)).astype(np.int64)
    col[0] = -1                              # a datum arc
    res = []
    for f in (kern.accumulate_normals, kern.accumulate_normals.py_func):
        nm, rhs = np.zeros((13, 13)), np.zeros(13)
        vtpv = f(start, system, valid, el, y_ph, y_cd, unit, lam_, col, 0.003, 0.003, 100.0,
                 True, nm, rhs)
        res.append((nm, rhs, np.array([vtpv])))
    for a, b in zip(res[0], res[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(res[0][0], res[0][0].T, rtol=1e-12, atol=1e-6)
    out1, out2 = np.zeros((n, 2)), np.zeros((n, 2))
    kern.dd_residuals(start, system, valid, el, y_ph, out1)
    kern.dd_residuals.py_func(start, system, valid, el, y_ph, out2)
    np.testing.assert_array_equal(np.isnan(out1), np.isnan(out2))
    assert int(np.isfinite(out1).sum()) == 2 * 4 + 4 + 3   # DD rows: epochs × (n − 1)
