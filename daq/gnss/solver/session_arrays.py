"""Assemble a base/rover session into flat arrays for the double-difference solver.

One row per (common epoch, satellite) with a usable ephemeris and a pseudorange at both
receivers; one column per frequency band (band 0 = L1/E1/B1I, band 1 = L2/E5b/B2I).
Everything that does not depend on the rover position is computed here once: satellite
states at each receiver's transmission time, the base's modelled range (geometric range
with Sagnac term − c·dtˢ + troposphere), its elevation, and the carrier-phase arcs.

Arcs (one float ambiguity each): a new arc starts at a receiver's loss-of-lock flag
(LLI bit 0), after a gap longer than ``max_gap_s``, at a jump of the between-receiver
geometry-free phase (dual frequency, ``gf_jump_m``) or of phase-minus-code
(``mp_jump_m``, single frequency). Phase flagged with a half-cycle ambiguity (LLI bit 1)
is not used, and the first unflagged phase after it starts a new arc.

Signal choice per system and band follows RTKLIB's priority of tracking modes (for
instance GPS L2: P, Y, W, C, M, N, D, S, L, X) among the codes both headers list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from daq.gnss.obs import CLIGHT, ObsData, ObsEpoch, wavelength

from .ephemeris import BroadcastOrbits, geometric_range
from .geodesy import ecef_to_geodetic
from .heap import release_free_memory
from .troposphere import day_of_year, slant_hydrostatic_delay

SYSTEM_INDEX = {"G": 0, "E": 1, "C": 2}
# band digits per system (band 0, band 1) and attribute priorities per band
BANDS = {"G": ("1", "2"), "E": ("1", "7"), "C": ("2", "7")}
PRIORITY = {("G", "1"): "CPYWMNSL", ("G", "2"): "PYWCMNDSLX", ("E", "1"): "CABXZ",
            ("E", "7"): "IQX", ("C", "2"): "IQX", ("C", "7"): "IQX"}
TIME_MATCH_S = 0.005


@dataclass
class SessionArrays:
    """Flat, time-ordered observation rows of a session (see module docstring)."""

    t0: float                       # GPST seconds since 1980-01-06 of the reference
    epoch_times: NDArray[np.float64]   # (n_ep,) seconds rel. to t0
    epoch_start: NDArray[np.int64]     # (n_ep + 1,) first row of each epoch
    sats: list[str]                    # satellite ids, indexed by ``sat``
    sat: NDArray[np.int64]             # (n,)
    system: NDArray[np.int64]          # (n,) 0 GPS, 1 Galileo, 2 BeiDou
    sat_pos: NDArray[np.float64]       # (n, 3) at the rover's transmission time (m)
    sat_clk: NDArray[np.float64]       # (n,) satellite clock at the rover's tx time (s)
    base_model: NDArray[np.float64]    # (n,) ρ_b − c·dtˢ_b + trop_b (m)
    base_el: NDArray[np.float64]       # (n,) elevation at the base (rad)
    lam: NDArray[np.float64]           # (n, 2) wavelengths (m), NaN when no signal
    sd_phase: NDArray[np.float64]      # (n, 2) λ·(L_r − L_b) (m), NaN if unusable
    sd_code: NDArray[np.float64]       # (n, 2) P_r − P_b (m)
    arc: NDArray[np.int64]             # (n, 2) arc number, −1 where no usable phase
    n_arcs: int
    arc_sat: NDArray[np.int64]         # (n_arcs,) satellite of each arc
    arc_band: NDArray[np.int64]        # (n_arcs,) band of each arc
    doy: NDArray[np.float64]           # (n,) day of year of each row (troposphere, GPST)
    codes: dict[tuple[str, int], tuple[str, str]]   # (system, band) → (code, phase) used
    slips: int                         # arcs started by a detected slip (not at rise)


def pick_codes(rover: ObsData, base: ObsData, systems: str, n_bands: int
               ) -> dict[tuple[str, int], tuple[str, str]]:
    """(system, band) → (pseudorange code, phase code) both receivers declare."""
    out: dict[tuple[str, int], tuple[str, str]] = {}
    for s in systems:
        have = set(rover.header.obs_types.get(s, ())) & set(base.header.obs_types.get(s, ()))
        for b, digit in enumerate(BANDS[s][:n_bands]):
            for attr in PRIORITY[(s, digit)]:
                c, ph = f"C{digit}{attr}", f"L{digit}{attr}"
                if c in have and ph in have:
                    out[(s, b)] = (c, ph)
                    break
    return out


def _epoch_columns(ep: ObsEpoch, sats: list[str], codes: dict[tuple[str, int], tuple[str, str]]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.uint8]]:
    """Code (m), phase (cycles) and phase LLI per satellite and band (NaN / 0 if absent)."""
    n = len(sats)
    code = np.full((n, 2), np.nan)
    phase = np.full((n, 2), np.nan)
    lli = np.zeros((n, 2), np.uint8)
    row = {s: i for i, s in enumerate(ep.sats)}
    col = {c: j for j, c in enumerate(ep.codes)}
    for k, s in enumerate(sats):
        i = row[s]
        for b in range(2):
            pair = codes.get((s[0], b))
            if pair is None or pair[0] not in col or pair[1] not in col:
                continue
            code[k, b] = ep.values[i, col[pair[0]]]
            phase[k, b] = ep.values[i, col[pair[1]]]
            lli[k, b] = ep.lli[i, col[pair[1]]]
    return code, phase, lli


def assemble(rover: ObsData, base: ObsData, orbits: BroadcastOrbits,
             base_xyz: NDArray[np.float64], systems: str, n_bands: int,
             t_start: float | None, t_end: float | None, min_base_el: float,
             max_gap_s: float, gf_jump_m: float, mp_jump_m: float, *,
             consume: bool = False) -> SessionArrays:
    """Build :class:`SessionArrays` (times ``t_start``/``t_end`` in GPST seconds).

    ``min_base_el`` is accepted for symmetry with the rover mask, which the solver
    applies (both receivers must see a satellite above the mask).

    ``consume``: empty ``rover.epochs`` and ``base.epochs`` while reading them, each
    epoch released once its rows are taken, so that the observations and the arrays
    built from them are not both held at once (the session solver's case). Rover epoch
    times must then be strictly increasing, as the session store writes them."""
    t0 = orbits.t0
    codes = pick_codes(rover, base, systems, n_bands)
    base_by_t = {round(e.time.gps_seconds, 2): e for e in base.epochs if e.flag <= 1}
    if consume:
        base.epochs.clear()
    take = base_by_t.pop if consume else base_by_t.get
    sat_index: dict[str, int] = {}
    names: list[str] = []
    parts: dict[str, list[NDArray[Any]]] = {k: [] for k in (
        "tr", "tb", "cr", "cb", "pr", "pb", "lli")}
    ep_of: list[NDArray[np.int64]] = []
    ep_times: list[float] = []
    for ep in (_drain(rover.epochs) if consume else rover.epochs):
        t = ep.time.gps_seconds
        if ep.flag > 1 or (t_start is not None and t < t_start - 1e-3) or \
                (t_end is not None and t > t_end + 1e-3):
            continue
        bep = take(round(t, 2), None)
        if bep is None or abs(bep.time.gps_seconds - t) > TIME_MATCH_S:
            continue
        common = [s for s in ep.sats if s[0] in systems and (s[0], 0) in codes
                  and s in bep.sats]
        if not common:
            continue
        cr, phr, lr = _epoch_columns(ep, common, codes)
        cb, phb, lb = _epoch_columns(bep, common, codes)
        ok = np.isfinite(cr[:, 0]) & np.isfinite(cb[:, 0])
        if not ok.any():
            continue
        names += [s for s, k in zip(common, ok, strict=True) if k]
        k = int(ok.sum())
        parts["tr"].append(np.full(k, t - t0))
        parts["tb"].append(np.full(k, bep.time.gps_seconds - t0))
        parts["cr"].append(cr[ok])
        parts["cb"].append(cb[ok])
        parts["pr"].append(phr[ok])
        parts["pb"].append(phb[ok])
        parts["lli"].append(lr[ok] | lb[ok])
        ep_of.append(np.full(k, len(ep_times), dtype=np.int64))
        ep_times.append(t - t0)
    if not ep_times:
        raise ValueError("no common epochs with usable satellites in the chosen window")
    if consume:
        release_free_memory()    # the consumed epochs' heap, before the copies below
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    epoch = np.concatenate(ep_of)
    del parts, ep_of             # the per-epoch pieces: a copy of ``cat``
    if consume:
        release_free_memory()
    pos_r, clk_r, ok_r = orbits.transmission_states(names, cat["tr"], cat["cr"][:, 0])
    pos_b, clk_b, ok_b = orbits.transmission_states(names, cat["tb"], cat["cb"][:, 0])
    good = ok_r & ok_b
    if not good.any():
        raise ValueError("no satellite with a usable ephemeris in the chosen window")
    names = [s for s, g in zip(names, good, strict=True) if g]
    epoch = epoch[good]
    kept = np.unique(epoch)
    times = np.array(ep_times)[kept]
    epoch = np.searchsorted(kept, epoch)
    starts = np.concatenate(([0], np.cumsum(np.bincount(epoch, minlength=kept.shape[0]))))
    for s in names:
        sat_index.setdefault(s, len(sat_index))
    sat = np.array([sat_index[s] for s in names], dtype=np.int64)
    lam = np.full((len(names), 2), np.nan)
    for s in sat_index:
        rows = sat == sat_index[s]
        for b in range(2):
            pair = codes.get((s[0], b))
            if pair is not None:
                lam[rows, b] = wavelength(s[0], pair[1])
    pos_b, clk_b = pos_b[good], clk_b[good]
    pos_r, clk_r = pos_r[good], clk_r[good]
    sd_code = cat["cr"][good] - cat["cb"][good]
    d_phase = cat["pr"][good] - cat["pb"][good]      # cycles, scaled by λ below
    lli = cat["lli"][good]
    del cat                      # before the base geometry's arrays
    rng_b, unit_b = geometric_range(pos_b, np.broadcast_to(base_xyz, pos_b.shape))
    el_b = _elevations(unit_b, base_xyz)
    lat_b, _, h_b = ecef_to_geodetic(base_xyz)
    doy = day_of_year(t0 + float(times[0])) + (times[epoch] - times[0]) / 86400.0
    base_model = rng_b - CLIGHT * clk_b + slant_hydrostatic_delay(el_b, lat_b, h_b, doy)
    sd_phase = lam * d_phase
    del d_phase
    arc, arc_sat, arc_band, slips = _make_arcs(times[epoch], sat, sd_phase, sd_code, lli,
                                               max_gap_s, gf_jump_m, mp_jump_m)
    sats_list = [""] * len(sat_index)
    for s, i in sat_index.items():
        sats_list[i] = s
    return SessionArrays(
        t0=t0, epoch_times=times, epoch_start=starts.astype(np.int64), sats=sats_list,
        sat=sat, system=np.array([SYSTEM_INDEX[s[0]] for s in names], dtype=np.int64),
        sat_pos=pos_r, sat_clk=clk_r, base_model=base_model, base_el=el_b,
        lam=lam, sd_phase=np.where(arc >= 0, sd_phase, np.nan), sd_code=sd_code, arc=arc,
        n_arcs=len(arc_sat), arc_sat=np.array(arc_sat, np.int64),
        arc_band=np.array(arc_band, np.int64), doy=doy, codes=codes, slips=slips)


def _drain(epochs: list[ObsEpoch]) -> Iterator[ObsEpoch]:
    """Each epoch in order, removed from the list as it is handed out."""
    epochs.reverse()
    while epochs:
        yield epochs.pop()


def _elevations(unit: NDArray[np.float64], rcv_xyz: NDArray[np.float64]) -> NDArray[np.float64]:
    lat, lon, _ = ecef_to_geodetic(rcv_xyz)
    up = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return np.arcsin(np.clip(unit @ up, -1.0, 1.0))


def _make_arcs(t: NDArray[np.float64], sat: NDArray[np.int64], sd_phase: NDArray[np.float64],
               sd_code: NDArray[np.float64], lli: NDArray[np.uint8], max_gap_s: float,
               gf_jump_m: float, mp_jump_m: float
               ) -> tuple[NDArray[np.int64], list[int], list[int], int]:
    """Arc number per row and band (see module docstring for the slip rules); rows are in
    time order, ``t`` is each row's epoch time (s)."""
    n = sat.shape[0]
    arc = np.full((n, 2), -1, dtype=np.int64)
    arc_sat: list[int] = []
    arc_band: list[int] = []
    slips = 0
    gf = sd_phase[:, 0] - sd_phase[:, 1]          # NaN unless both bands
    for b in range(2):
        rows = np.nonzero(np.isfinite(sd_phase[:, b]) & np.isfinite(sd_code[:, b]))[0]
        if rows.shape[0] == 0:
            continue
        rows = rows[np.lexsort((rows, sat[rows]))]   # by satellite, then time
        first = np.ones(rows.shape[0], dtype=np.bool_)
        first[1:] = sat[rows][1:] != sat[rows][:-1]
        half = (lli[rows, b] & 2) != 0
        prev_half = np.zeros_like(half)
        prev_half[1:] = half[:-1]
        mp = sd_phase[rows, b] - sd_code[rows, b]
        g = gf[rows]
        with np.errstate(invalid="ignore"):
            jump = np.zeros(rows.shape[0], dtype=np.bool_)
            jump[1:] = (np.abs(np.diff(g)) > gf_jump_m) | (np.abs(np.diff(mp)) > mp_jump_m)
        gap = np.zeros(rows.shape[0], dtype=np.bool_)
        gap[1:] = np.diff(t[rows]) > max_gap_s
        flagged = (lli[rows, b] & 1) != 0
        routine = first | prev_half | flagged | gap
        new = (routine | jump) & ~half
        slips += int(np.sum(jump & ~routine & ~half))
        ids = np.cumsum(new) - 1 + len(arc_sat)
        use = ~half
        arc[rows[use], b] = ids[use]
        starts = rows[new]
        arc_sat += sat[starts].tolist()
        arc_band += [b] * int(starts.shape[0])
    return arc, arc_sat, arc_band, slips


def split_arcs(arr: SessionArrays, rows: NDArray[np.int64], bands: NDArray[np.int64]) -> int:
    """Start a new arc at each (row, band) given (a slip found after the fact); the rows
    of the same arc from there on move to the new arc. Returns arcs added."""
    added = 0
    for r, b in sorted(zip(rows.tolist(), bands.tolist(), strict=True)):
        old = int(arr.arc[r, b])
        if old < 0:
            continue
        later = np.nonzero(arr.arc[r:, b] == old)[0] + r
        arr.arc[later, b] = arr.n_arcs
        arr.arc_sat = np.append(arr.arc_sat, arr.arc_sat[old])
        arr.arc_band = np.append(arr.arc_band, b)
        arr.n_arcs += 1
        arr.slips += 1
        added += 1
    return added
