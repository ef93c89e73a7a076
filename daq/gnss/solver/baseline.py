"""Static GNSS baseline from a session of base + rover observations (double differences).

Method (see ``README.md``): DD code and carrier phase per system and band (GPS L1/L2,
BeiDou B1I/B2I, Galileo E1/E5b), RTKLIB's observation model (Saastamoinen hydrostatic
troposphere with the Niell mapping, elevation-dependent weights, 15° mask), a float
batch least-squares over the whole session (rover position + one single-difference
ambiguity per arc, one datum arc held per connected group), integer ambiguities by LAMBDA
with the ratio test, then the fixed baseline and its formal covariance.

A solution is ``fixed`` only when the ratio test passes (≥ ``ratio_threshold``, on all
ambiguities or, partial fixing, after leaving at most a quarter of the least precise ones
float), at least ``min_ambiguities`` are fixed and the fixed phase residuals stay small;
otherwise the verdict says why and the float result is reported as float, never as a
millimetre answer.

Units: metres, seconds (GPST seconds since 1980-01-06 for ``start``/``end``), radians
internally, degrees in options.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from daq.gnss.obs import NavData, ObsData

from .ambiguity import AmbiguityError, lambda_search, validate_fix
from .ephemeris import BroadcastOrbits
from .geodesy import ecef_delta_to_enu, enu_covariance
from .heap import release_free_memory
from .session_arrays import SYSTEM_INDEX, SessionArrays, assemble, split_arcs
from .session_model import SessionModel, datums, residual_jumps

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class SolverOptions:
    """Processing options (RTKLIB's equivalents in brackets)."""

    systems: str = "GC"                 # any of G, E, C [pos1-navsys]
    frequencies: int = 2                # 1: L1/B1I/E1 only, 2: plus L2/B2I/E5b [pos1-frequency]
    elevation_mask_deg: float = 15.0    # [pos1-elmask]
    ratio_threshold: float = 3.0        # [pos2-arthres]
    min_ambiguities: int = 4            # fewer ambiguities → not fixed
    phase_sigma_a_m: float = 0.003      # [stats-errphase]
    phase_sigma_b_m: float = 0.003      # [stats-errphaseel]
    code_factor: float = 100.0          # code/phase error ratio [stats-eratio1]
    max_gap_s: float | None = None      # outage starting a new arc; None: 5 epochs [aroutcnt]
    gf_jump_m: float = 0.05             # geometry-free slip threshold [pos2-slipthres]
    mp_jump_m: float = 5.0              # phase-minus-code slip threshold (single frequency)
    min_arc_epochs: int = 10            # shorter arcs are not used
    slip_residual_m: float = 0.06       # float residual step that splits an arc (slip)
    max_fixed_rms_m: float = 0.02       # fixed DD phase residual RMS above this: no fix

    def check(self) -> None:
        """Raise ValueError naming the first bad option."""
        if not self.systems or any(s not in SYSTEM_INDEX for s in self.systems):
            raise ValueError(f"systems must be letters from 'GEC', not {self.systems!r}")
        if self.frequencies not in (1, 2):
            raise ValueError("frequencies must be 1 or 2")
        if not 0.0 <= self.elevation_mask_deg < 60.0:
            raise ValueError("elevation_mask_deg must be in [0, 60)")
        if not self.ratio_threshold >= 1.0:
            raise ValueError("ratio_threshold must be ≥ 1")


@dataclass
class BaselineSolution:
    """A session's answer; ``verdict`` is "fixed", "no fix", "too few satellites" or
    "ratio too low". ENU is at the base (m); covariances in m².

    ``baseline_xyz``, ``rover_xyz``, ``enu`` and the covariances are NaN unless
    ``fixed``; the float solution is only in ``float_enu``. ``ratio`` is that of the
    accepted (possibly partial) integer set, else of the full set; ``n_fixed`` of the
    ``n_ambiguities`` were fixed."""

    verdict: str
    fixed: bool
    ratio: float
    baseline_xyz: NDArray[np.float64]
    rover_xyz: NDArray[np.float64]
    base_xyz: NDArray[np.float64]
    enu: NDArray[np.float64]
    cov_xyz: NDArray[np.float64]
    cov_enu: NDArray[np.float64]
    float_enu: NDArray[np.float64]
    n_epochs: int
    n_ambiguities: int
    n_fixed: int
    satellites: dict[str, int]
    residual_rms_m: float
    start: float
    end: float
    slips: int = 0
    detail: str = ""
    signals: dict[str, str] = field(default_factory=dict)

    @property
    def sigma_enu(self) -> NDArray[np.float64]:
        return np.sqrt(np.diag(self.cov_enu))

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.baseline_xyz))


def solve_baseline(rover: ObsData, base: ObsData, navs: NavData | Iterable[NavData],
                   base_xyz: Iterable[float], options: SolverOptions | None = None,
                   start: float | None = None, end: float | None = None,
                   progress: Progress | None = None, *, consume: bool = False
                   ) -> BaselineSolution:
    """Solve the static baseline base → rover over the common epochs in [start, end].

    ``consume``: the epochs of ``rover`` and ``base`` are released (their lists emptied)
    as they are assembled, and their heap handed back to the kernel, for a caller that
    loaded them only for this solve: the solve's memory is then that of its arrays, not
    of those plus the observations.

    Raises ValueError on unusable input (bad base coordinate, no common epochs); a session
    that cannot be fixed is returned with ``fixed=False`` and its verdict.
    """
    opts = options or SolverOptions()
    opts.check()
    xb = np.asarray(list(base_xyz), dtype=np.float64)
    if xb.shape != (3,) or not np.all(np.isfinite(xb)) or \
            not 6.2e6 < float(np.linalg.norm(xb)) < 6.5e6:
        raise ValueError("base_xyz must be an ECEF position on the Earth's surface (m)")
    if not rover.epochs or not base.epochs:
        raise ValueError("rover or base has no epochs")
    report = progress or (lambda _f, _s: None)
    if consume:
        release_free_memory()    # what decoding the epochs left in the heap
    report(0.0, "reading")
    t0 = math.floor(rover.epochs[0].time.gps_seconds)
    orbits = BroadcastOrbits(navs, t0)
    interval = float(np.median(np.diff(rover.times()))) if len(rover.epochs) > 1 else 1.0
    max_gap = opts.max_gap_s if opts.max_gap_s is not None else 5.5 * interval
    arr = assemble(rover, base, orbits, xb, opts.systems, opts.frequencies, start, end,
                   math.radians(opts.elevation_mask_deg), max_gap, opts.gf_jump_m,
                   opts.mp_jump_m, consume=consume)
    if consume:
        release_free_memory()    # the consumed epochs' heap, before the solve's arrays
    report(0.3, "float")
    model = SessionModel(arr, math.radians(opts.elevation_mask_deg), opts.phase_sigma_a_m,
                         opts.phase_sigma_b_m, opts.code_factor)
    no_arc = np.full(arr.n_arcs, -1, dtype=np.int64)
    # code-only DD from the base position gives the rover to a metre or so
    xr, _, q = model.gauss_newton(xb, np.zeros(arr.n_arcs), no_arc, 3, use_phase=False,
                                  tol=1e-3)
    if q is None:
        return _unsolved(arr, xb, "too few satellites", "no double differences")
    for attempt in range(4):   # float solution; split arcs at slips its residuals reveal
        if consume:
            release_free_memory()
        float_fit = _float(model, arr, xr, opts)
        if isinstance(float_fit, str):
            return _unsolved(arr, xb, "too few satellites", float_fit)
        xr_f, amb, qmat, datum, arc_col, npar = float_fit
        rows, bands, jumps = residual_jumps(arr, model.phase_terms(xr_f, amb))
        big = jumps > opts.slip_residual_m
        if attempt == 3 or not big.any() or split_arcs(arr, rows[big], bands[big]) == 0:
            break
    xr = xr_f
    report(0.7, "ambiguities")
    if consume:
        release_free_memory()
    x_float = xr.copy()
    terms = model.phase_terms(xr, amb)
    rms, valid = model.residual_rms(terms), terms[2]
    del terms                  # not held through the fixed solution's iterations
    n_amb = npar - 3
    cov = qmat[:3, :3]
    verdict, ratio, detail, n_fixed = "no fix", float("nan"), "", 0
    med_sats = _median_dd_satellites(arr, valid)
    if n_amb < opts.min_ambiguities or med_sats < 4:
        verdict = "too few satellites"
        detail = f"{n_amb} ambiguities, median {med_sats} satellites per epoch"
    else:
        pcols = np.nonzero(arc_col >= 0)[0]
        a_rel = amb[pcols] - amb[datum[pcols]]
        q_aa = qmat[3:, 3:][np.ix_(arc_col[pcols] - 3, arc_col[pcols] - 3)]
        subset, best, ratio, verdict, detail = _resolve(a_rel, q_aa, opts)
        if subset is not None and best is not None:
            fixed_arcs = pcols[subset]
            amb_fix = amb.copy()
            amb_fix[fixed_arcs] = amb[datum[fixed_arcs]] + best
            free = arc_col.copy()
            free[fixed_arcs] = -1
            free[free >= 0] = 3 + np.arange(int(np.sum(free >= 0)))
            npar_fix = 3 + int(np.sum(free >= 0))
            xf, af, qf = model.gauss_newton(xr, amb_fix, free, npar_fix, tol=1e-6)
            fixed_terms = model.phase_terms(xf, af)
            rms_fix = model.residual_rms(fixed_terms)
            if qf is None:
                verdict, detail = "no fix", "fixed solution is singular"
            elif rms_fix > opts.max_fixed_rms_m:
                verdict, detail = "no fix", \
                    f"fixed residual RMS {rms_fix * 1000:.1f} mm too large"
            else:
                xr, amb, cov, n_fixed = xf, af, qf[:3, :3], int(subset.shape[0])
                rms, valid = rms_fix, fixed_terms[2]
            del fixed_terms
    report(1.0, "done")
    if n_fixed == 0:      # no millimetre answer without a fix: only float_enu says where
        xr, cov = np.full(3, np.nan), np.full((3, 3), np.nan)
    bl = xr - xb
    return BaselineSolution(
        verdict=verdict, fixed=n_fixed > 0, ratio=ratio, baseline_xyz=bl, rover_xyz=xr,
        base_xyz=xb, enu=ecef_delta_to_enu(bl, xb), cov_xyz=cov,
        cov_enu=enu_covariance(cov, xb), float_enu=ecef_delta_to_enu(x_float - xb, xb),
        n_epochs=_epochs_used(arr, valid), n_ambiguities=n_amb, n_fixed=n_fixed,
        satellites=_satellites(arr, valid), residual_rms_m=rms,
        start=arr.t0 + float(arr.epoch_times[0]), end=arr.t0 + float(arr.epoch_times[-1]),
        slips=arr.slips, detail=detail, signals=_signals(arr))


def _float(model: SessionModel, arr: SessionArrays, xr: NDArray[np.float64],
           opts: SolverOptions) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                         NDArray[np.float64], NDArray[np.int64],
                                         NDArray[np.int64], int] | str:
    """Float batch solution from the code-only position ``xr``: (position, ambiguities,
    covariance, datum per arc, column per arc, parameter count), or why it failed."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cyc = (arr.sd_phase - arr.sd_code) / arr.lam
    has = arr.arc >= 0
    sums = np.bincount(arr.arc[has], weights=cyc[has], minlength=arr.n_arcs)
    amb = np.round(sums / np.maximum(np.bincount(arr.arc[has], minlength=arr.n_arcs), 1))
    model.arc_ok = np.ones(arr.n_arcs, dtype=np.bool_)
    vph = model.phase_terms(xr, amb)[2]
    model.arc_ok = np.bincount(arr.arc[vph], minlength=arr.n_arcs) >= opts.min_arc_epochs
    datum, arc_col = datums(arr, model.phase_terms(xr, amb)[2], model.arc_ok)
    model.arc_ok &= datum >= 0
    npar = 3 + int(np.sum(arc_col >= 0))
    if npar == 3:
        return "no usable carrier-phase arcs"
    xr, amb, qmat = model.gauss_newton(xr, amb, arc_col, npar)
    if qmat is None:
        return "float solution is singular"
    return xr, amb, qmat, datum, arc_col, npar


def _resolve(a_rel: NDArray[np.float64], q_aa: NDArray[np.float64], opts: SolverOptions
             ) -> tuple[NDArray[np.int64] | None, NDArray[np.float64] | None, float, str, str]:
    """LAMBDA with partial fixing: try all ambiguities, then drop the least precise ones
    (largest variance) one at a time, at most a quarter of them and never below
    ``min_ambiguities``, until the ratio test passes. Returns (indices fixed, integers,
    ratio of the accepted or full set, verdict, detail)."""
    n = a_rel.shape[0]
    order = np.argsort(-np.diag(q_aa), kind="stable")
    max_drop = min(n // 4, n - opts.min_ambiguities)
    first_ratio = float("nan")
    for drop in range(max(0, max_drop) + 1):
        keep = np.sort(order[drop:])
        try:
            sol = lambda_search(a_rel[keep], q_aa[np.ix_(keep, keep)])
        except AmbiguityError as err:
            return None, None, first_ratio, "no fix", str(err)
        check = validate_fix(sol, opts.ratio_threshold, opts.min_ambiguities)
        if drop == 0:
            first_ratio = check.ratio
        if check.accepted:
            detail = "" if drop == 0 else f"{drop} of {n} ambiguities left float"
            return keep, sol.best, check.ratio, "fixed", detail
    return None, None, first_ratio, "ratio too low", ""


def _unsolved(arr: SessionArrays, xb: NDArray[np.float64], verdict: str, detail: str
              ) -> BaselineSolution:
    """A session with no usable solution: NaN coordinates, the verdict and why."""
    nan3 = np.full(3, np.nan)
    return BaselineSolution(
        verdict=verdict, fixed=False, ratio=float("nan"), baseline_xyz=nan3, rover_xyz=nan3,
        base_xyz=xb, enu=nan3, cov_xyz=np.full((3, 3), np.nan),
        cov_enu=np.full((3, 3), np.nan), float_enu=nan3, n_epochs=0, n_ambiguities=0,
        n_fixed=0, satellites={}, residual_rms_m=float("nan"),
        start=arr.t0 + float(arr.epoch_times[0]), end=arr.t0 + float(arr.epoch_times[-1]),
        slips=arr.slips, detail=detail, signals=_signals(arr))


def _signals(arr: SessionArrays) -> dict[str, str]:
    """"G1" → "L1C" …: the phase code used per system and band."""
    return {f"{s}{b + 1}": c[1] for (s, b), c in arr.codes.items()}


def _epochs_used(arr: SessionArrays, valid: NDArray[np.bool_]) -> int:
    """Epochs with at least one DD phase (two satellites of one system and band)."""
    n = 0
    for e in range(len(arr.epoch_times)):
        lo, hi = arr.epoch_start[e], arr.epoch_start[e + 1]
        rows = np.nonzero(valid[lo:hi].any(axis=1))[0] + lo
        if rows.shape[0] and np.max(np.bincount(arr.system[rows])) >= 2:
            n += 1
    return n


def _satellites(arr: SessionArrays, valid: NDArray[np.bool_]) -> dict[str, int]:
    used = np.unique(arr.sat[valid.any(axis=1)])
    out: dict[str, int] = {}
    for i in used:
        s = arr.sats[int(i)][0]
        out[s] = out.get(s, 0) + 1
    return out


def _median_dd_satellites(arr: SessionArrays, valid: NDArray[np.bool_]) -> int:
    """Median over epochs of (satellites with valid phase − systems in use) + 1."""
    per_epoch = []
    for e in range(len(arr.epoch_times)):
        lo, hi = arr.epoch_start[e], arr.epoch_start[e + 1]
        rows = np.nonzero(valid[lo:hi].any(axis=1))[0] + lo
        nsys = np.unique(arr.system[rows]).shape[0]
        per_epoch.append(rows.shape[0] - nsys + 1 if rows.shape[0] else 0)
    return int(np.median(per_epoch)) if per_epoch else 0


def warm_kernels() -> None:
    """Compile (or load from ``NUMBA_CACHE_DIR``) every Numba kernel of the solver on tiny
    inputs, so that the first session solved at run time pays no compilation."""
    from . import ephemeris as eph
    from . import kernels as kern

    rows = np.zeros((1, 24))
    rows[0, 7] = 5153.6                      # sqrt(A) of a GPS orbit
    pos, clk = np.zeros((1, 3)), np.zeros(1)
    eph._kepler_states(rows, np.zeros(1), pos, clk)
    eph._polynomial_clock(rows, np.zeros(1), clk)
    lambda_search(np.array([0.1, 0.2]), np.eye(2))
    n = 3
    start = np.array([0, n], dtype=np.int64)
    system = np.zeros(n, dtype=np.int64)
    valid = np.ones((n, 2), dtype=np.bool_)
    el = np.full(n, 0.8)
    y = np.zeros((n, 2))
    col = np.full((n, 2), -1, dtype=np.int64)
    kern.accumulate_normals(start, system, valid, el, y, y, np.eye(3), np.full((n, 2), 0.19),
                            col, 0.003, 0.003, 100.0, True, np.zeros((3, 3)), np.zeros(3))
    kern.dd_residuals(start, system, valid, el, y, np.zeros((n, 2)))
