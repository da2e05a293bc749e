"""``hens forecast --plan`` for the HENS configuration, on this machine.

Standalone: ``python benchmarks/plan_hens.py [--batch-size 16] [--ranks 64]``. Writes, in a
temporary folder, what a plan reads and nothing more: a WeatherBench2-layout store on the
0.25-degree grid (721x1440, both poles) with the 74 HENS channels whose arrays are declared but
hold no values, and 29 checkpoint headers with the HENS network's config (embed 620, 8 layers,
scale factor 2; a token state dict, since a plan counts weights but never reads them). Then
plans 29 checkpoints x 128 hemispheric bred-vector +/- pairs = 7,424 members, 15 days 6-hourly,
one initial time, on CUDA ranks, and prints the plan (text and JSON).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import dask.array as da
import numpy as np
import torch
import xarray as xr
import yaml

from hens.forecast.channels import get_channel
from hens.models.checkpoint import FORMAT, FORMAT_VERSION
from hens.pipelines.forecast.plan import plan_run

LEVELS = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)
SURFACE = ("u10m", "v10m", "u100m", "v100m", "t2m", "d2m", "sp", "msl", "tcwv")
CHANNELS = SURFACE + tuple(f"{v}{lev}" for v in "uvztq" for lev in LEVELS)  # 9 + 65 = 74
HENS_NETWORK = {"embed_dim": 620, "num_layers": 8, "scale_factor": 2, "grid": "721x1440:equiangular"}


def era5_coordinates(path: Path) -> Path:
    """A WB2-layout Zarr store of the 74 channels, declared only (no chunk written)."""
    times = np.datetime64("2023-06-01T00", "ns") + np.arange(-8, 4) * np.timedelta64(6, "h")
    lat, lon = np.linspace(90, -90, 721), np.arange(1440) * 0.25
    shape3, shape4 = (times.size, 721, 1440), (times.size, len(LEVELS), 721, 1440)
    data = {}
    for name in CHANNELS:
        ch = get_channel(name)
        if ch.level is None:
            data[ch.long_name] = (("time", "latitude", "longitude"), da.zeros(shape3, "f4", chunks=(1, 721, 1440)))
        else:
            data[ch.long_name] = (("time", "level", "latitude", "longitude"),
                                  da.zeros(shape4, "f4", chunks=(1, 1, 721, 1440)))
    ds = xr.Dataset(data, coords={"time": times, "level": np.array(LEVELS), "latitude": lat, "longitude": lon})
    ds.to_zarr(path, mode="w-", compute=False, zarr_format=2, consolidated=True)
    return path


def checkpoint_header(path: Path, seed: int) -> Path:
    """A hens checkpoint file with the HENS network's description and a token state dict."""
    n = len(CHANNELS)
    config = {"in_channels": n, "out_channels": n, **HENS_NETWORK}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "hens_version": "plan", "model_kind": "sfno",
               "model_config": config, "state_dict": {"token": torch.zeros(1)}, "channels": list(CHANNELS),
               "grid": HENS_NETWORK["grid"], "normalisation": {k: [0.0] * n for k in ("mean", "std", "tendency_std")},
               "seed": seed, "data_sha256": "plan", "forcings": [], "extra": {}}
    torch.save(payload, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--ranks", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        era5_coordinates(folder / "era5.zarr")
        models = [checkpoint_header(folder / f"seed{k}.pt", k).name for k in range(29)]
        config = folder / "hens.yaml"
        config.write_text(yaml.safe_dump({
            "data": "era5.zarr", "output": "hens.zarr", "init_times": ["2023-06-01T00"], "lead_hours": 360,
            "models": models, "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 128, "cycles": 2},
            "seeds": 1, "batch_size": args.batch_size, "seed": 0}))
        plan = plan_run(config, ranks=args.ranks, device="cuda")
        print(plan.text())
        print(plan.to_dict())
        print("weights counted: token state dicts; the real 29 checkpoints add their size to host memory "
              "while loading (HENS embed 620 x 8 layers)")


if __name__ == "__main__":
    main()
