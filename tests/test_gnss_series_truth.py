"""The deformation series against known truth, on real F9P observations.

A displacement is injected into the rover of ``ppk_f9p_4h`` (``tests/gnss_truth.py``: the
line-of-sight change of a known offset added to every pseudorange and carrier phase,
re-encoded as RINEX), one 1-h window per session. The 4-h file holds four windows; the
series reuses them in turn (session k uses window k mod 4, with its own offset), 24
hourly sessions in all: a creep of 0.5 mm per session downstream and −0.25 mm per session
vertical, plus a 5 mm downstream step from session 12 on. Each session is solved with the
project's solver, displacements taken against the point's reference epoch (the 4-h
solution of the unshifted data, as a survey would give), then fed to the filter.

Targets (issue 13): the filtered series within 1.0 mm horizontally and 2.0 mm vertically
of the truth (from the third session on; the step session itself is judged by the step
flag, which must come within two sessions), and no wrong integer fix accepted.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from daq.gnss.solver.geodesy import dam_axes
from daq.gnss.solver.series import SeriesFilter, SeriesOptions, SessionPoint

from . import gnss_truth as gt

pytestmark = pytest.mark.skipif(not gt.F9P.exists(), reason="shared GNSS data not present")

AZIMUTH = 30.0                 # dam axis azimuth (degrees), downstream on the right
N_SESSIONS, STEP_AT = 24, 12
CREEP_MM = (0.0, 0.5, -0.25)   # along, downstream, vertical per session
STEP_MM = (0.0, 5.0, 0.0)
WRONG_FIX_MM = 5.0             # a wrong integer moves a 1-h answer by centimetres


def truth_mm(k: int) -> np.ndarray:
    step = np.array(STEP_MM) if k >= STEP_AT else np.zeros(3)
    return np.array(CREEP_MM) * k + step


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every session solved once for the whole module: (truth, raw, σ, solution)."""
    t0 = time.monotonic()
    d = gt.load()
    ref = gt.solve(d, d.rover)            # the reference epoch: 4 h, unshifted
    assert ref.fixed
    tmp = tmp_path_factory.mktemp("truth")
    rot = dam_axes(np.eye(3), AZIMUTH, "right").T
    rows = []
    for k in range(N_SESSIONS):
        offset = gt.dam_to_enu(truth_mm(k), AZIMUTH) / 1000.0
        start, end = gt.window(k % 4)
        sol = gt.solve(d, gt.shifted(d, ref.rover_xyz, offset, start, end, tmp))
        raw = dam_axes((sol.enu - ref.enu) * 1000.0, AZIMUTH, "right") if sol.fixed else None
        sig = np.sqrt(np.diag(rot @ sol.cov_enu @ rot.T)) * 1000.0 if sol.fixed else None
        rows.append((truth_mm(k), raw, sig, sol))
    return {"rows": rows, "seconds": time.monotonic() - t0}


def _feed(rows: list, options: SeriesOptions | None = None) -> list:
    f = SeriesFilter(options)
    out = []
    for k, (_, raw, sig, sol) in enumerate(rows):
        out.append(f.add(SessionPoint(
            f"P01/k{k:02d}", k / 24.0, bool(sol.fixed), sol.verdict,
            None if raw is None else tuple(float(v) for v in raw),
            None if sig is None else tuple(float(v) for v in sig),
            None if not math.isfinite(sol.ratio) else float(sol.ratio),
            sol.residual_rms_m * 1000.0)))
    return out


def test_every_session_fixed_right_never_a_wrong_integer(sessions) -> None:
    """Each injected 1-h session is fixed, and within a few mm of its truth on every axis:
    the injection is real and no wrong integer set was accepted."""
    for k, (truth, raw, _, sol) in enumerate(sessions["rows"]):
        assert sol.fixed and sol.ratio >= 3.0, (k, sol.verdict, sol.ratio)
        assert np.all(np.abs(raw - truth) < WRONG_FIX_MM), (k, raw - truth)


def test_filtered_series_tracks_truth_and_flags_the_step(sessions) -> None:
    rows = sessions["rows"]
    ups = _feed(rows)
    lines = ["  k  status       truth(al,ds,up)        raw-truth             "
             "filtered-truth        σ filtered           v mm/day"]
    h_err, v_err = [], []
    for k, ((truth, raw, _, _), u) in enumerate(zip(rows, ups, strict=True)):
        e = np.array(u.displacement_mm) - truth
        lines.append(f"{k:3d}  {u.status:<11s} {np.round(truth, 2)}  {np.round(raw - truth, 2)}"
                     f"  {np.round(e, 2)}  {np.round(u.sigma_mm, 2)}  "
                     f"{np.round(u.velocity_mm_day, 1)}")
        if k >= 2 and k != STEP_AT:
            h_err.append(math.hypot(e[0], e[1]))
            v_err.append(abs(e[2]))
    raw_err = np.array([r[1] - r[0] for r in rows])
    print("\n".join(lines))
    print(f"raw 1-h spread (max-min) along/downstream/vertical mm: "
          f"{np.round(raw_err.max(axis=0) - raw_err.min(axis=0), 2)}; filtered: max horizontal "
          f"{max(h_err):.2f} mm, max vertical {max(v_err):.2f} mm; "
          f"solving {sessions['seconds']:.1f} s")
    assert max(h_err) <= 1.0 and max(v_err) <= 2.0
    steps = [k for k, u in enumerate(ups) if "step" in u.events]
    assert steps and STEP_AT <= steps[0] <= STEP_AT + 1, steps     # within two sessions
    assert steps == [steps[0]]                                    # and only that one
    assert ups[steps[0]].step_mm is not None
    assert ups[steps[0]].step_mm[1] == pytest.approx(STEP_MM[1], abs=1.5)
    # the filtered line took the step in full: no smoothing it away
    after = ups[STEP_AT + 1].displacement_mm
    assert after is not None and after[1] - ups[STEP_AT - 1].displacement_mm[1] > 4.5
    v = ups[-1].velocity_mm_day
    assert v is not None and v[1] == pytest.approx(CREEP_MM[1] * 24, abs=2.0)
    assert v[2] == pytest.approx(CREEP_MM[2] * 24, abs=2.0)
    assert not any("jump" in u.events or "outlier" in u.events for u in ups)


def test_a_wrong_fix_is_held_and_dropped_not_followed(sessions) -> None:
    """A session 5 cm off (what a wrong integer set looks like) is held as a jump and,
    when the next session is back on the line, dropped as an outlier."""
    rows = list(sessions["rows"])
    truth, raw, sig, sol = rows[6]
    rows[6] = (truth, raw + np.array([0.0, 50.0, 0.0]), sig, sol)
    ups = _feed(rows)
    assert ups[6].status == "jump" and "jump" in ups[6].events
    assert "outlier" in ups[7].events
    for k in range(7, N_SESSIONS):      # the line never followed it
        e = np.array(ups[k].displacement_mm) - truth_mm(k)
        assert math.hypot(e[0], e[1]) <= (1.5 if k == 7 else 1.0) or k == STEP_AT, (k, e)
