"""The task graph of one (channel, block of leads): pieces read, scored and summed.

:func:`score_block` builds one task per (init, lead, latitude band) that reads its members
itself (:func:`hens.scoring.evaluate.store.read_members`: straight from the shards, no dask
array graph over the stored chunks, whose number grows with the ensemble) and returns the
weighted sums of :func:`hens.scoring.evaluate.partials.piece_sums`. The pieces of one (init, lead) are
added first (a fixed tree: the same bits on any scheduler), then the spectra of that field are
finished (:func:`finish_field`), then the fields of one lead are added over initial times.

Spectra: the ensemble mean's from the mean map the bands return; the mean member spectrum
over the sample of :meth:`~hens.scoring.evaluate.store.EnsembleStore.spectrum_sample` (all
members of ensembles up to 64), from the block itself when a piece is a whole field, else from tasks
reading the sample's whole fields in groups
(:meth:`~hens.scoring.evaluate.store.EnsembleStore.member_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
import xarray as xr

from hens.forecast.sources import SourcePath
from hens.scoring.evaluate.partials import PieceOptions, combine, finish_scores, piece_sums
from hens.scoring.evaluate.store import EnsembleStore, read_members
from hens.scoring.evaluate.truth import Verification
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
    members: tuple[int, ...] | None  # store indices of the scored members; None: all
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
    sample: tuple[int, ...] | None = None  # positions (scored members) of the spectrum sample


def score_piece(piece: Piece, weights: np.ndarray, options: PieceOptions) -> dict:
    """Weighted sums of one (init, lead, band) of all members (a dask task)."""
    lo, hi = piece.rows
    members = None if piece.members is None else np.asarray(piece.members)
    block = read_members(piece.store, piece.channel, piece.init_index, piece.lead_index, piece.rows, members)
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
    sums = piece_sums(x, y, persistence, cells, options, climate=climate, efi_map=piece.efi_map,
                      mean_map=piece.spectra is not None)
    if piece.spectra is not None and piece.sample is not None:  # a whole field: the sample is at hand
        sums["spec_members"] = _spectra_sum(block[list(piece.sample)], piece.spectra)
    return sums


def _kernel(spec: SpectrumGrid) -> Any:
    from hens.scoring.spectra import spectrum_kernel  # torch: imported by the tasks that need it

    nlat, nlon, lmax, mmax, grid = spec
    return partial(spectrum_kernel, nlat=nlat, nlon=nlon, lmax=lmax, mmax=mmax, grid=grid, kind="total")


def _spectra_sum(fields: np.ndarray, spec: SpectrumGrid) -> np.ndarray:
    """Sum of the power spectra of whole fields ``(n, nlat, nlon)``."""
    kernel = _kernel(spec)
    step = max(1, (32 << 20) // (spec[0] * spec[1] * 8))  # float64 fields per transform
    return sum(kernel(fields[i:i + step]).sum(0) for i in range(0, len(fields), step))


def group_spectra(piece: Piece, group: np.ndarray) -> dict[str, np.ndarray]:
    """Summed spectra of one group of members' whole fields (store indices; a dask task)."""
    fields = read_members(piece.store, piece.channel, piece.init_index, piece.lead_index, (0, piece.spectra[0]),
                          group)
    return {"spec_members": _spectra_sum(fields, piece.spectra)}


def finish_field(parts: list[dict[str, np.ndarray]], piece: Piece, sample_size: int) -> dict:
    """One (init, lead): its pieces added, its spectra finished (a dask task): the mean member
    spectrum of the sample, the spectrum of the ensemble mean and of the truth."""
    sums = combine(parts)
    spec = piece.spectra
    nlat, nlon = spec[0], spec[1]
    kernel = _kernel(spec)
    sums["spec_members"] = sums["spec_members"] / sample_size
    sums["spec_mean"] = kernel(sums.pop("mean_map").reshape(nlat, nlon))
    sums["spec_truth"] = kernel(_truth_field(piece.truth, piece.channel, piece.valid))
    sums["spec_n"] = np.array(1.0)
    return sums


def tree(parts: list, fan_in: int = 8) -> Any:
    """Sum delayed pieces in a fixed tree (the same additions in the same order anywhere)."""
    from dask import delayed

    while len(parts) > 1:
        parts = [delayed(combine)(parts[i : i + fan_in]) for i in range(0, len(parts), fan_in)]
    return parts[0]


def field_reads(store: EnsembleStore, sample: np.ndarray | None) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
    """What the tasks of one (init, lead) read: the latitude bands ``(lo, hi)`` of all members,
    and the groups of members (store indices) whose whole fields the spectra read (none when
    one band is the whole field or without spectra)."""
    nlat, band = store.grid.nlat, store.band()
    bounds = [*range(0, nlat, band), nlat]
    bands = list(zip(bounds[:-1], bounds[1:], strict=True))
    return bands, (store.member_groups(sample) if sample is not None and len(bands) > 1 else [])


def score_block(
    store: EnsembleStore,
    verification: Verification,
    channel: str,
    leads: slice,
    *,
    options: PieceOptions,
    sample: np.ndarray | None,
    compute: Any,
) -> dict[str, np.ndarray]:
    """Every score of one (channel, lead block), summed per lead (module docstring).

    ``sample``: positions (along the scored members) of the mean member spectrum's sample;
    ``None``: no spectra.
    """
    from dask import delayed

    grid = store.grid
    bands, groups = field_reads(store, sample)
    whole = len(bands) == 1
    weights = area_weights(store.dataset["lat"], store.dataset["lon"]).values
    lead_index = np.arange(store.lead_times.size)[leads]
    times = xr.Dataset(coords={"init_time": store.init_times, "lead_time": store.lead_times[leads]})
    windows = verification.windows(channel, times)
    stats = verification.climatology_path if windows is not None else None
    sht = None
    if sample is not None:
        from hens.scoring.spectra import default_lmax

        lmax = default_lmax(grid)
        sht = (grid.nlat, grid.nlon, lmax, min(lmax, grid.nlon // 2 + 1), grid.sht_grid)
    members = None if not store.dropped else tuple(int(m) for m in store.members)
    roots = []
    for j, lead in enumerate(store.lead_times[leads]):
        fields = []
        for i, init in enumerate(store.init_times):
            common = dict(store=str(store.path), members=members, truth=verification.truth_key, channel=channel,
                          init_index=i, lead_index=int(lead_index[j]), valid=init + lead, init=init, stats=stats,
                          window=None if windows is None else int(windows[i, j]), spectra=sht)
            parts = [delayed(score_piece)(Piece(**common, rows=rows, efi_map=i == 0,
                                                sample=tuple(int(k) for k in sample) if whole and sht else None),
                                          weights, options)
                     for rows in bands]
            if sht is None:
                fields.append(tree(parts))
                continue
            field = Piece(**common, rows=(0, grid.nlat), efi_map=False)
            parts += [delayed(group_spectra)(field, g) for g in groups]
            fields.append(delayed(finish_field)(parts, field, len(sample)))
        roots.append(tree(fields))
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
