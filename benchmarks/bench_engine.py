"""Ensemble engine ratios, all measured in one run (issue 5).

Standalone (not pytest): ``python benchmarks/bench_engine.py [--quick]``. One intra-op thread per
process; a tiny stochastic SFNO (embed 32, 4 blocks) on the 32x64 world grid, centred Gaussian
perturbations, an analytic data source, batches of 16. Printed ratios (goal in brackets):

1. batched member-steps/s / per-member loop (batch 16 against 16 rollouts of one member): what
   a forward pass made batch-invariant by construction (micro-batches of one) would cost;
2. streaming wall / compute-only wall: the engine writing Zarr on its background thread against
   the same run into a sink that drops the data (<= 1.1), with the SFNO above and with a
   most write-heavy one (embed 2, 1 block, 5x the steps, ``heavy_*``: <= 1.05), whose ``heavy_write_over_compute``
   (the same bytes written by the sink alone / compute-only wall) says how heavy;
3. Zarr write rate (the sink writing forecast fields in whole shards, then ``fsync`` of its files; MB of
   float32 before compression) / ``dd`` sequential write rate (``conv=fdatasync``) on the same
   disk, best of three each (>= 0.5); ``zarr_pipeline_over_dd``: the same through zarr's own
   codec pipeline (``array[...] = block``, what hens did before ``forecast/shard_writer.py``);
4. peak RSS at 1024 members / at 64 members, each run in its own process (<= 1.2);
5. 2-rank / 1-rank throughput, ``torchrun`` with one thread per rank (>= 1.8; needs 2 idle cores);
6. physics-solver member-step cost / SFNO member-step cost.

Reference check: the streaming and compute-only runs are rolled out from the same seeds; a batch
rerun gives its first run's bits (how ``compute_member`` recomputes a member); the looped rollouts
agree with the batched ones to rounding (``loop_rel_diff``: largest difference over the batch's
std, 0 where the kernels do not depend on the row count). Results append to
``results/engine_<machine>.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import xarray as xr  # noqa: E402
from _results import append_rows, results_path  # noqa: E402

from hens.forecast.engine import EnsemblePlan, member_leads, pending_batches, run_ensemble  # noqa: E402
from hens.forecast.grids import parse_grid  # noqa: E402
from hens.forecast.members import MemberLayout  # noqa: E402
from hens.forecast.allocator import tune_cpu_allocator  # noqa: E402
from hens.forecast.perturb import GaussianPerturbation  # noqa: E402
from hens.forecast.zarr_sink import StoreSpec, ZarrSink, lead_chunk_for, open_sink  # noqa: E402
from hens.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from hens.models.sfno.noise import SphericalNoise  # noqa: E402
from hens.models.sfno.network import SFNOConfig  # noqa: E402
from hens.models.shallow_water.solver import WorldConfig  # noqa: E402
from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig  # noqa: E402
from hens.pipelines.forecast.steppers import CheckpointStepper, PhysicsStepper  # noqa: E402

GRID = parse_grid("32x64")
CHANNELS = ("z500", "u500", "v500", "t2m")
MEAN, STD, TEND = [9.8e4, 11.0, 0.0, 280.0], [5e3, 22.0, 14.0, 19.0], [460.0, 3.3, 3.7, 1.6]
T0 = np.datetime64("2000-02-01T00", "ns")
BATCH = 16


class WaveSource:
    """Analytic analyses: zonal waves on the world's mean state (no disk reads in the timings)."""

    grid, channels = GRID, CHANNELS
    times = T0 + np.arange(-8, 8) * np.timedelta64(6, "h")

    def __call__(self, times, channels):
        t = ((np.asarray(times, "datetime64[ns]") - T0) / np.timedelta64(1, "D"))[:, None, None, None]
        lat, lon = np.radians(GRID.lat)[:, None], np.radians(GRID.lon)[None, :]
        values = (np.array(MEAN)[None, :, None, None]
                  + np.array(STD)[None, :, None, None] * np.cos(lat) * np.sin(3 * lon - 0.5 * t))
        return xr.DataArray(values.astype(np.float32), dims=("time", "channel", "lat", "lon"))


class NullSink:
    """Drops the data: the compute-only reference of the streaming ratio."""

    lead_chunk = 1

    def __init__(self, members: int) -> None:
        self.members = members

    def completed(self) -> np.ndarray:
        return np.zeros((1, self.members), bool)

    def write_leads(self, *args) -> None:
        pass

    def mark_completed(self, *args) -> None:
        pass


def stepper(folder: Path, *, embed: int = 32, blocks: int = 4) -> CheckpointStepper:
    torch.manual_seed(0)
    model = StochasticSFNO(StochasticSFNOConfig(SFNOConfig(4, 4, grid=GRID.spec, embed_dim=embed, num_layers=blocks)))
    path = save_checkpoint(folder / f"bench-{embed}x{blocks}.pt", model, channels=CHANNELS, mean=MEAN, std=STD, tendency_std=TEND,
                           seed=0, data_sha256="bench")
    return CheckpointStepper(load_checkpoint(path))


def plan(folder: Path, members: int, steps: int, *, heavy: bool = False) -> EnsemblePlan:
    noise = SphericalNoise(GRID, [500.0] * 4)
    perturbation = GaussianPerturbation(noise, 0.35 * np.sqrt(8) * torch.tensor(TEND), base_seed=0)
    model = stepper(folder, embed=2, blocks=1) if heavy else stepper(folder)
    return EnsemblePlan(source=WaveSource(), steppers=(model,), perturbation=perturbation,
                        layout=MemberLayout(1, members // 2, 1), init_times=(T0,),
                        lead_hours=tuple(range(0, 6 * steps + 1, 6)), batch_size=BATCH, base_seed=0)


def spec(p: EnsemblePlan) -> StoreSpec:
    return StoreSpec(channels=CHANNELS, init_times=p.init_times, lead_hours=p.lead_hours, grid=GRID,
                     layout=p.layout, batch_size=BATCH, attrs={"hens_config": {"bench": True}},
                     lead_chunk=lead_chunk_for(BATCH, GRID.shape, len(p.lead_hours), len(CHANNELS)))


def store(p: EnsemblePlan, path: Path) -> ZarrSink:
    return open_sink(path, spec(p), mode="overwrite")


def batched_vs_loop(p: EnsemblePlan, steps: int) -> tuple[float, float]:
    """(per-member loop wall / batched wall, largest |loop - batched| / std of the batch).

    The loop is the forward pass made batch-invariant by construction (a micro-batch of one
    row); the engine runs batches and recomputes a member by rerunning its batch, which must
    give the same bits (checked here), while the loop agrees only to rounding on some kernel
    paths (MKL's AVX2 SGEMM, the one AMD processors take).
    """
    st, x = p.steppers[0], torch.from_numpy(WaveSource()([T0], CHANNELS).values).repeat(BATCH, 1, 1, 1)
    seeds = list(range(BATCH))

    def batched() -> torch.Tensor:
        r = st.start(x, init_time=T0, seeds=seeds)
        return [r.step() for _ in range(steps)][-1]

    with torch.inference_mode():
        t = time.perf_counter()
        first = batched()
        t_batch = time.perf_counter() - t
        t = time.perf_counter()
        loop = []
        for i in range(BATCH):
            r = st.start(x[i:i + 1], init_time=T0, seeds=seeds[i:i + 1])
            loop.append([r.step() for _ in range(steps)][-1])
        t_loop = time.perf_counter() - t
        assert torch.equal(batched(), first), "a batch rerun differs from its first run"
    loop_diff = float((torch.cat(loop) - first).abs().max() / first.std())
    return t_loop / t_batch, loop_diff


class RecordingSink(NullSink):
    """Keeps every block the engine hands over (to time the same writes without the engine)."""

    def __init__(self, members: int) -> None:
        super().__init__(members)
        self.blocks: list[tuple] = []

    def write_leads(self, init_index, members, leads, data) -> None:
        self.blocks.append((init_index, members, leads, data.copy()))


def streaming(folder: Path, members: int, steps: int, *, heavy: bool = False) -> tuple[float, float, float]:
    """(streaming wall / compute-only wall, member-steps per second of the compute-only run,
    wall of the same writes by the sink alone / compute-only wall)."""
    p = plan(folder, members, steps, heavy=heavy)
    work = pending_batches(p, np.zeros((1, members), bool))
    walls = {}
    for name in ("compute", "stream", "compute", "stream", "compute", "stream"):  # interleaved, best of 3
        sink = NullSink(members) if name == "compute" else store(p, folder / "stream.zarr")
        t = time.perf_counter()
        run_ensemble(p, sink, work)
        walls[name] = min(walls.get(name, np.inf), time.perf_counter() - t)
    recorded = RecordingSink(members)
    recorded.lead_chunk = store(p, folder / "stream.zarr").lead_chunk
    run_ensemble(p, recorded, work)
    for _ in range(2):
        sink = store(p, folder / "stream.zarr")
        t = time.perf_counter()
        for block in recorded.blocks:
            sink.write_leads(*block)
        walls["write"] = min(walls.get("write", np.inf), time.perf_counter() - t)
    return walls["stream"] / walls["compute"], members * steps / walls["compute"], walls["write"] / walls["compute"]


def _dd_rate(folder: Path, megabytes: int) -> float:
    out = subprocess.run(["dd", "if=/dev/zero", f"of={folder / 'dd.bin'}", "bs=1M", f"count={megabytes}",
                          "conv=fdatasync"], capture_output=True, text=True, check=True).stderr
    (folder / "dd.bin").unlink()
    *_, rate, unit = out.strip().splitlines()[-1].split()
    return float(rate) * {"GB/s": 1000.0, "MB/s": 1.0, "kB/s": 1e-3}[unit]


def _zarr_rate(folder: Path, megabytes: int, *, zarr_encodes: bool = False) -> float:
    slab_mb = BATCH * len(CHANNELS) * GRID.nlat * GRID.nlon * 4 / 1e6
    leads = int(megabytes / slab_mb)
    p = plan(folder, BATCH, leads - 1)
    sink = store(p, folder / "disk.zarr")
    if zarr_encodes:
        sink._shards = None  # zarr's codec pipeline encodes the shards
    k = sink.lead_chunk
    # forecast fields (they compress like real ones; random numbers would not), k leads of one batch
    with torch.inference_mode():
        fields = [x.numpy() for _, x in zip(range(k), member_leads(p, 0, range(BATCH)), strict=False)]
    data = np.stack(fields, axis=1)  # (members, leads, C, lat, lon)
    t = time.perf_counter()
    for start in range(0, leads - leads % k, k):  # the engine's writes: whole chunks
        sink.write_leads(0, slice(0, BATCH), slice(start, start + k), data)
    for path in (folder / "disk.zarr").rglob("*"):  # to disk, as dd's fdatasync (os.sync would flush others' data too)
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    return (leads - leads % k) * slab_mb / (time.perf_counter() - t)


def disk_ratio(folder: Path, megabytes: int) -> tuple[float, float, float, float]:
    """(Zarr rate / dd rate, Zarr MB/s, dd MB/s, zarr's own pipeline / dd rate): best of three
    each, interleaved (shared disks vary)."""
    dd_rate = zarr_rate = pipeline_rate = 0.0
    for _ in range(3):
        dd_rate = max(dd_rate, _dd_rate(folder, megabytes))
        zarr_rate = max(zarr_rate, _zarr_rate(folder, megabytes))
        pipeline_rate = max(pipeline_rate, _zarr_rate(folder, megabytes, zarr_encodes=True))
    return zarr_rate / dd_rate, zarr_rate, dd_rate, pipeline_rate / dd_rate


def rss_child(members: int) -> None:
    """Run ``members`` members for 2 leads into a fresh store; print the peak RSS (kB)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = plan(Path(tmp), members, 2)
        sink = store(p, Path(tmp) / "rss.zarr")
        run_ensemble(p, sink, pending_batches(p, sink.completed()))
    # VmHWM, not ru_maxrss: after exec ru_maxrss starts at the parent's peak (Linux keeps the
    # pre-exec high-water mark), which would hide the child's own memory behind this process's
    status = Path("/proc/self/status").read_text().splitlines()
    print(json.dumps({"maxrss_kb": next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))}))


def rank_child(members: int, steps: int) -> None:
    """One rank of the throughput run (under torchrun): print member-steps/s on rank 0."""
    from hens.forecast.ranks import agree, share
    from hens.models.runtime import setup_distributed, teardown

    info = setup_distributed()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(share(tmp))  # every rank writes into rank 0's temporary folder
        p = plan(Path(tmp), members, steps)
        agree(lambda: store(p, folder / "ranks.zarr"), root_only=True)
        sink = ZarrSink(folder / "ranks.zarr", spec(p))
        work = pending_batches(p, np.zeros((1, members), bool))
        stats = run_ensemble(p, sink, work, rank=info.rank, world_size=info.world_size)
        seconds = torch.tensor([stats.seconds])
        if info.world_size > 1:
            torch.distributed.all_reduce(seconds, op=torch.distributed.ReduceOp.MAX)
            torch.distributed.barrier()  # rank 0 keeps the folder until everyone is done
        if info.main:
            print(json.dumps({"rate": members * steps / float(seconds)}))
    teardown(info)


def _child(args: list[str], *, ranks: int | None = None) -> dict:
    prefix = [sys.executable] if ranks is None else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc_per_node={ranks}"]
    out = subprocess.run([*prefix, __file__, *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def physics_ratio(folder: Path, sfno_rate: float) -> float:
    """Seconds per physics member-step / seconds per SFNO member-step (batched, compute only)."""
    phys = PhysicsStepper(WorldConfig(grid=GRID.spec))
    x = torch.from_numpy(WaveSource()([T0], CHANNELS).values).repeat(4, 1, 1, 1)
    r = phys.start(x, init_time=T0, seeds=[0, 1, 2, 3])
    t = time.perf_counter()
    r.step(), r.step()
    return (time.perf_counter() - t) / 8 * sfno_rate


def _cpu_model() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())


def _kernel_path() -> str:
    """torch's CPU capability and any MKL instruction setting (see tests/pipelines/forecast/test_kernel_paths.py)."""
    mkl = os.environ.get("MKL_ENABLE_INSTRUCTIONS") or os.environ.get("MKL_CBWR") or "native"
    return f"aten {torch.backends.cpu.get_cpu_capability()}, mkl {mkl}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a rough check)")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rank-child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tune_cpu_allocator()  # as hens forecast does
    if args.rss_child:
        return rss_child(args.rss_child)
    if args.rank_child:
        return rank_child(*args.rank_child)
    members, steps = (64, 4) if args.quick else (128, 8)
    load_before = os.getloadavg()[0]  # other work on the machine skews every ratio: recorded with them
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk of the working directory
        folder = Path(tmp)
        rows = {}
        rows["batched_over_loop"], rows["loop_rel_diff"] = batched_vs_loop(plan(folder, BATCH, 1), steps)
        rows["streaming_over_compute"], sfno_rate, rows["write_over_compute"] = streaming(folder, members, steps)
        heavy = streaming(folder, 2 * members, 5 * steps, heavy=True)  # long enough for the last shard's write
        rows["heavy_streaming_over_compute"], heavy_rate, rows["heavy_write_over_compute"] = heavy
        rows["zarr_over_dd"], rows["zarr_mb_s"], rows["dd_mb_s"], rows["zarr_pipeline_over_dd"] = disk_ratio(
            folder, 64 if args.quick else 256)
        rss = {n: _child(["--rss-child", str(n)])["maxrss_kb"] for n in (64, 1024)}
        rows["rss_1024_over_64"] = rss[1024] / rss[64]
        rates = {n: _child(["--rank-child", str(members), str(steps)], ranks=n)["rate"] for n in (1, 2)}
        rows["two_over_one_rank"] = rates[2] / rates[1]
        rows["physics_over_sfno"] = physics_ratio(folder, sfno_rate)
    goals = {"streaming_over_compute": "<= 1.1", "heavy_streaming_over_compute": "<= 1.05",
             "heavy_write_over_compute": ">= 0.3 (write-heavy)", "zarr_over_dd": ">= 0.5", "rss_1024_over_64": "<= 1.2",
             "two_over_one_rank": ">= 1.8"}
    print(f"SFNO embed 32 x 4 blocks, 32x64, batch {BATCH}, {members} members x {steps} steps, 1 thread per process")
    print(f"  SFNO compute-only throughput: {sfno_rate:.0f} member-steps/s (write-heavy SFNO embed 2 x 1 block, "
          f"{2 * members} members: {heavy_rate:.0f}); peak RSS 64: {rss[64] / 1024:.0f} MB, "
          f"1024: {rss[1024] / 1024:.0f} MB; Zarr {rows['zarr_mb_s']:.0f} MB/s, dd {rows['dd_mb_s']:.0f} MB/s")
    print(f"  per-member loop vs batch: largest difference {rows['loop_rel_diff']:.2g} of the batch's std")
    for key, value in rows.items():
        if not key.endswith(("mb_s", "diff")):
            print(f"  {key:<24} {value:7.3f}  {('goal ' + goals[key]) if key in goals else ''}")
    row = {"device": platform.machine(), "cpu": _cpu_model(), "kernels": _kernel_path(), "cores": os.cpu_count(),
           "load_before": f"{load_before:.2f}", "load_after": f"{os.getloadavg()[0]:.2f}",
           "members": members, "steps": steps, "sfno_member_steps_s": f"{sfno_rate:.4g}",
           "heavy_member_steps_s": f"{heavy_rate:.4g}",
           **{key: f"{value:.4g}" for key, value in rows.items()}}
    append_rows(results_path("engine", platform.machine()), [row])


if __name__ == "__main__":
    main()
