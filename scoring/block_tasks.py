"""The task graph of one (channel, block of leads): pieces read, scored and summed.

:func:`score_block` builds one task per (init, lead, latitude band) that reads its members
itself (:func:`hens.scoring.ensemble_store.read_members`: straight from the shards, no dask
array graph over the stored chunks, whose number grows with the ensemble) and returns the
weighted sums of :func:`hens.scoring.partials.piece_sums`; per lead the sums are added in a
fixed tree (the same bits on any scheduler). Spectra need whole fields: a piece that is a whole
field computes them from its block; with latitude bands, tasks over groups of members
(:meth:`~hens.scoring.ensemble_store.EnsembleStore.member_groups`) read whole fields and sum
member spectra and fields, and one task per (init, lead) turns the sums into the spectra of
the members, of the ensemble mean and of the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr

from hens.forecast.sources import SourcePath
from hens.scoring.ensemble_store import EnsembleStore, read_members
from hens.scoring.partials import PieceOptions, combine, finish_scores, piece_sums
from hens.scoring.verification import Verification
from hens.scoring.weights import area_weights

#: the spectral transform of a store: nlat, nlon, lmax, mmax, SHT grid
SpectrumGrid = tuple[int, int, int, int, str]


@lru_cache(maxsize=4)
def _source(path: SourcePath) -> Any:
    """The truth source, opened once per process (dask workers reopen it by path)."""
    from hens.forecast.sources import open_source

    return open_source(list(path) if isinstance(path, tuple) else path)


@lru_cache(maxsize=16)
def _truth_field(path: SourcePath, channel: str, time: np.datetime64) -> np.ndarray:
    """One truth field ``(nlat, nlon)``, cached: the bands of one (init, lead) share it."""
    return _source(path)(np.array([time]), [channel]).values[0, 0]


@lru_cache(maxsize=4)
def _stats(path: str) -> xr.Dataset:
    from hens.forecast.stats import open_world_stats

    return open_world_stats(path)


@dataclass(frozen=True)
class Piece:
    """One (init, lead, latitude band) of a store and what verifies it."""

    store: str
    members: tuple[int, ...] | None  # positions of the scored members; None: all
    truth: SourcePath
    channel: str
    init_index: int
    lead_index: int
    valid: np.datetime64
    init: np.datetime64
    rows: tuple[int, int]
    stats: str | None
    window: int | None
    efi_map: bool
    spectra: SpectrumGrid | None


def _members(piece: Piece) -> np.ndarray | None:
    return None if piece.members is None else np.asarray(piece.members)


def score_piece(piece: Piece, weights: np.ndarray, options: PieceOptions) -> dict:
    """Weighted sums of one (init, lead, band) of all members (a dask task)."""
    lo, hi = piece.rows
    block = read_members(piece.store, piece.channel, piece.init_index, piece.lead_index, piece.rows,
                         _members(piece))
    x = block.reshape(block.shape[0], -1)  # (M, rows * nlon), members first as stored
    y_full = _truth_field(piece.truth, piece.channel, piece.valid)
    y = y_full[lo:hi].ravel()
    persistence = _truth_field(piece.truth, piece.channel, piece.init)[lo:hi].ravel()
    climate = None
    if piece.stats is not None:
        q = _stats(piece.stats)["climatology_quantiles"].isel(dayofyear=piece.window, lat=slice(lo, hi))
        q = q.sel(channel=piece.channel).transpose("lat", "lon", "quantile").values
        climate = q.astype(np.float64).reshape(-1, q.shape[-1])
    cells = np.repeat(weights[lo:hi], y_full.shape[1])
    sums = piece_sums(x, y, persistence, cells, options, climate=climate, efi_map=piece.efi_map)
    if piece.spectra is not None:
        member_sums = _member_spectra(block, piece.spectra)
        sums.update(_finish_spectra(member_sums, y_full, block.shape[0], piece.spectra))
    return sums


def _kernel(spec: SpectrumGrid):
    from functools import partial

    from hens.scoring.spectra import spectrum_kernel

    nlat, nlon, lmax, mmax, grid = spec
    return partial(spectrum_kernel, nlat=nlat, nlon=nlon, lmax=lmax, mmax=mmax, grid=grid, kind="total")


def _member_spectra(members: np.ndarray, spec: SpectrumGrid) -> dict[str, np.ndarray]:
    """Sum of the members' spectra and of their fields (float64) of whole fields ``(M, nlat, nlon)``."""
    kernel = _kernel(spec)
    step = max(1, (32 << 20) // (spec[0] * spec[1] * 8))  # float64 fields per transform
    total = sum(kernel(members[i:i + step]).sum(0) for i in range(0, len(members), step))
    return {"spec_members": total, "field": members.astype(np.float64).sum(0)}


def group_spectra(piece: Piece, group: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`_member_spectra` of one group of members' whole fields (a dask task)."""
    fields = read_members(piece.store, piece.channel, piece.init_index, piece.lead_index, piece.rows, group)
    return _member_spectra(fields, piece.spectra)


def _finish_spectra(sums: dict[str, np.ndarray], truth: np.ndarray, m: int, spec: SpectrumGrid) -> dict:
    """Mean member spectrum, spectrum of the mean and of the truth of one (init, lead)."""
    kernel = _kernel(spec)
    return {"spec_members": sums["spec_members"] / m, "spec_mean": kernel(sums["field"] / m),
            "spec_truth": kernel(truth), "spec_n": np.array(1.0)}


def field_spectra(parts: list[dict[str, np.ndarray]], piece: Piece, m: int) -> dict:
    """The spectra of one (init, lead) from its member groups' sums (a dask task)."""
    sums = combine(parts)
    return _finish_spectra(sums, _truth_field(piece.truth, piece.channel, piece.valid), m, piece.spectra)


def tree(parts: list, fan_in: int = 8) -> Any:
    """Sum delayed pieces in a fixed tree (the same additions in the same order anywhere)."""
    from dask import delayed

    while len(parts) > 1:
        parts = [delayed(combine)(parts[i : i + fan_in]) for i in range(0, len(parts), fan_in)]
    return parts[0]


def score_block(
    store: EnsembleStore,
    verification: Verification,
    channel: str,
    leads: slice,
    *,
    options: PieceOptions,
    spectra: bool,
    compute: Any,
) -> dict[str, np.ndarray]:
    """Every score of one (channel, lead block): one task per (init, lead, band), summed per lead."""
    from dask import delayed

    grid = store.grid
    band = store.band()
    bounds = [*range(0, grid.nlat, band), grid.nlat]
    whole = len(bounds) == 2
    weights = area_weights(store.dataset["lat"], store.dataset["lon"]).values
    lead_index = np.arange(store.lead_times.size)[leads]
    times = xr.Dataset(coords={"init_time": store.init_times, "lead_time": store.lead_times[leads]})
    windows = verification.windows(channel, times)
    stats = verification.climatology_path if windows is not None else None
    sht = None
    if spectra:
        from hens.scoring.spectra import default_lmax

        lmax = default_lmax(grid)
        sht = (grid.nlat, grid.nlon, lmax, min(lmax, grid.nlon // 2 + 1), grid.sht_grid)
    members = None if not store.dropped else tuple(int(m) for m in store.members)
    groups = store.member_groups() if sht is not None and not whole else []
    roots = []
    for j, lead in enumerate(store.lead_times[leads]):
        parts = []
        for i, init in enumerate(store.init_times):
            common = dict(store=str(store.path), members=members, truth=verification.truth_key, channel=channel,
                          init_index=i, lead_index=int(lead_index[j]), valid=init + lead, init=init, stats=stats,
                          window=None if windows is None else int(windows[i, j]))
            for b in range(len(bounds) - 1):
                piece = Piece(**common, rows=(bounds[b], bounds[b + 1]), efi_map=i == 0,
                              spectra=sht if whole else None)
                parts.append(delayed(score_piece)(piece, weights, options))
            if groups:
                field = Piece(**common, rows=(0, grid.nlat), efi_map=False, spectra=sht)
                sums = [delayed(group_spectra)(field, g) for g in groups]
                parts.append(delayed(field_spectra)(sums, field, store.size))
        roots.append(tree(parts))
    (sums,) = compute(roots)
    per_lead = [finish_scores(s, options) for s in sums]
    out = {name: np.stack([p[name] for p in per_lead]) for name in per_lead[0]}
    if "efi_map" in sums[0]:
        out["efi_map"] = np.stack([s["efi_map"].reshape(grid.nlat, grid.nlon) for s in sums])
    if "spec_n" in sums[0]:
        for name, key in (("spectrum_members", "spec_members"), ("spectrum_ensemble_mean", "spec_mean"),
                          ("spectrum_truth", "spec_truth")):
            out[name] = np.stack([s[key] / s["spec_n"] for s in sums])
    return out
