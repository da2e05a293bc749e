"""The ensemble engine in one process: store layout, single-member recomputation, resume
after a crash, the background writer, the physics ensemble, model/seed checks."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import torch

from hens.forecast.engine import pending_batches, run_ensemble
from hens.forecast.errors import CheckpointError, ConfigError
from hens.forecast.store_reader import open_store
from hens.forecast.writer import BackgroundWriter
from hens.forecast.zarr_sink import open_sink
from hens.models.checkpoint import file_sha256
from hens.pipelines.forecast.components import build_plan
from hens.pipelines.forecast.config import load_config
from hens.pipelines.forecast.run import compute_member, run_forecast

torch.set_num_threads(1)
DIMS = ("init_time", "member", "lead_time", "lat", "lon")


@pytest.fixture(scope="module")
def reference(ensemble_yaml, tmp_path_factory):
    """An uninterrupted one-process run of the default small ensemble (16 members, 2 times)."""
    folder = tmp_path_factory.mktemp("reference")
    config = ensemble_yaml(folder)
    run_forecast(config, progress=False)
    return config, folder / "ens.zarr"


def _assert_same_arrays(a, b):
    da, db = open_store(a), open_store(b)
    assert set(da.variables) == set(db.variables)
    for name in da.variables:
        assert np.array_equal(da[name].values, db[name].values, equal_nan=True), name


def test_store_layout_and_provenance(reference, tiny_checkpoints, world_store):
    config, path = reference
    ds = open_store(path)
    assert ds["z500"].dims == DIMS and ds["z500"].attrs["units"] == "m2 s-2"
    assert ds["t2m"].attrs["standard_name"] == "air_temperature"
    assert ds.sizes == {"init_time": 2, "member": 16, "lead_time": 5, "lat": 32, "lon": 64}
    assert ds["completed"].values.all() and np.isfinite(ds["u500"].values).all()
    assert ds["lead_time"].attrs["standard_name"] == "forecast_period" and ds.attrs["Conventions"] == "CF-1.10"
    assert list(ds["seed"].values[:4]) == [0, 1, 0, 1] and list(ds["sign"].values[:4]) == [1, 1, -1, -1]
    records = json.loads(ds.attrs["checkpoints"])
    assert [r["sha256"] for r in records] == [file_sha256(tiny_checkpoints[k]) for k in ("stoch0", "stoch1")]
    assert json.loads(ds.attrs["hens_config"]) == load_config(config).to_dict()
    assert json.loads(ds.attrs["batch_partition"]) == [[0, 4], [4, 8], [8, 12], [12, 16]]
    assert set(json.loads(ds.attrs["perturbation_amplitudes"])) == {"z500", "u500", "v500", "t2m"}
    assert "tendency std" in ds.attrs["perturbation_scale_source"]
    # lead 0: a +/- pair is centred on the analysis; other seeds of a member diverge later
    import hens.forecast as hf

    analysis = hf.open_source(world_store)(["2000-01-10T00"], ["z500"]).values[0, 0]
    z = ds["z500"].isel(init_time=0)
    np.testing.assert_allclose((z[0, 0] + z[2, 0]).values / 2, analysis, rtol=1e-6)
    assert np.array_equal(z[0, 0], z[1, 0]) and not np.array_equal(z[0, 1], z[1, 1])


@pytest.mark.parametrize("init_time, member", [("2000-01-10T00", 0), ("2000-01-12T06", 7), ("2000-01-12T06", 13)])
def test_a_member_recomputed_from_its_batch_is_bit_equal(reference, init_time, member):
    """``compute_member`` reruns the member's batch: the stored bits on any CPU kernel path
    (``tests/pipelines/forecast/test_kernel_paths.py`` reruns this test on the others)."""
    config, path = reference
    alone = compute_member(config, init_time, member)
    stored = open_store(path).sel(init_time=init_time, member=member)
    for name in ("z500", "u500", "v500", "t2m"):
        assert np.array_equal(alone[name].values, stored[name].values), name


def test_members_of_batches_across_checkpoints_and_a_short_last_batch(ensemble_yaml, tmp_path):
    """Batches of 6 out of 16: [6, 12) spans both checkpoints, [12, 16) is short."""
    config = ensemble_yaml(tmp_path, batch_size=6, init_times=["2000-01-10T00"], lead_hours=12)
    run_forecast(config, progress=False)
    ds = open_store(tmp_path / "ens.zarr")
    assert json.loads(ds.attrs["batch_partition"]) == [[0, 6], [6, 12], [12, 16]]
    for member in (7, 8, 15):
        alone = compute_member(config, "2000-01-10T00", member)
        assert np.array_equal(alone["v500"].values, ds["v500"].isel(init_time=0, member=member).values), member


def test_a_store_written_with_other_batches_is_refused(reference, ensemble_yaml, tmp_path):
    """The recompute follows the store's recorded partition; a config that disagrees is one error."""
    import shutil

    shutil.copytree(reference[1], tmp_path / "ens.zarr")
    config = ensemble_yaml(tmp_path, batch_size=8)
    with pytest.raises(ConfigError, match="records member batches"):
        compute_member(config, "2000-01-10T00", 3)


class CrashingSink:
    """Forwards to a real sink, then raises after ``limit`` block writes (a crash mid-run)."""

    def __init__(self, sink, limit, lead_chunk):
        self.sink, self.limit, self.writes, self.lead_chunk = sink, limit, 0, lead_chunk

    def completed(self):
        return self.sink.completed()

    def write_leads(self, *args):
        self.writes += 1
        if self.writes > self.limit:
            raise OSError("disk gone")
        self.sink.write_leads(*args)

    def mark_completed(self, *args):
        self.sink.mark_completed(*args)


def test_a_crashed_run_resumes_to_the_uninterrupted_store(reference, ensemble_yaml, tmp_path):
    config = ensemble_yaml(tmp_path)
    cfg = load_config(config)
    plan, spec = build_plan(cfg, torch.device("cpu"))
    sink = open_sink(cfg.output_path, spec)
    work = pending_batches(plan, sink.completed())
    with pytest.raises(OSError, match="disk gone"), torch.inference_mode():
        run_ensemble(plan, CrashingSink(sink, limit=3, lead_chunk=3), work)  # blocks of 3 + 2 leads
    done = sink.completed()
    assert done.sum() == 4 and np.isfinite(open_store(cfg.output_path)["z500"][0, 4:8, :3]).all()
    run_forecast(config, resume=True, progress=False)
    _assert_same_arrays(cfg.output_path, reference[1])


class SlowSink:
    lead_chunk = 3

    def __init__(self):
        self.blocks, self.flags = [], []

    def completed(self):
        return np.zeros((1, 4), bool)

    def write_leads(self, init_index, members, leads, data):
        time.sleep(0.01)
        self.blocks.append((leads.start, leads.stop, data.shape))

    def mark_completed(self, init_index, members):
        self.flags.append(members)


def test_background_writer_is_bounded_and_writes_lead_blocks_in_order():
    sink = SlowSink()
    slab = np.zeros((2, 1, 4, 8), np.float32)
    with BackgroundWriter(sink, depth=2) as writer:
        for k in range(10):
            writer.put_lead(0, slice(0, 2), k, slab)
            assert writer._queue.qsize() <= 2
        writer.put_completed(0, slice(0, 2))
    assert sink.blocks == [(0, 3, (2, 3, 1, 4, 8)), (3, 6, (2, 3, 1, 4, 8)), (6, 9, (2, 3, 1, 4, 8)),
                           (9, 10, (2, 1, 1, 4, 8))]
    assert sink.flags == [slice(0, 2)] and writer.completed == 1


def test_background_writer_reraises_sink_errors():
    class Broken(SlowSink):
        def write_leads(self, *args):
            raise OSError("no space left")

    with pytest.raises(OSError, match="no space"):
        with BackgroundWriter(Broken(), depth=1) as writer:
            for k in range(20):
                writer.put_lead(0, slice(0, 1), k, np.zeros((1, 1, 2, 4), np.float32))
    assert not any(t.name == "hens-writer" for t in threading.enumerate())


def test_physics_ensemble_through_the_same_engine(ensemble_yaml, tmp_path):
    config = ensemble_yaml(tmp_path, models=["physics"], init_times=["2000-01-10T00"], lead_hours=12, seeds=1,
                           batch_size=2, perturbation={"kind": "hemispheric_bred_vector", "pairs": 1, "cycles": 1})
    run_forecast(config, progress=False)
    ds = open_store(tmp_path / "ens.zarr")
    assert json.loads(ds.attrs["checkpoints"])[0]["name"] == "physics"
    assert ds.sizes["member"] == 2 and np.isfinite(ds["z500"].values).all()
    alone = compute_member(config, "2000-01-10T00", 1)
    assert np.array_equal(alone["u500"].values, ds["u500"].isel(init_time=0, member=1).values)


@pytest.mark.parametrize("overrides, error, message", [
    ({"models": ["det0"], "seeds": 2}, ConfigError, "needs stochastic models"),
    ({"models": ["det0"], "seeds": 1, "perturbation": {"kind": "none"}}, ConfigError, "identical members"),
    ({"models": ["det0", "stoch0"]}, CheckpointError, "mix model kinds"),
])
def test_models_and_seeds_must_fit(ensemble_yaml, tiny_checkpoints, tmp_path, overrides, error, message):
    overrides["models"] = [str(tiny_checkpoints[k]) for k in overrides["models"]]
    with pytest.raises(error, match=message):
        run_forecast(ensemble_yaml(tmp_path, **overrides), progress=False)
    assert not (tmp_path / "ens.zarr").exists()


@pytest.mark.parametrize("kind", ["none", "gaussian", "bred_vector"])
def test_every_perturbation_kind_runs(ensemble_yaml, world_store, tmp_path, kind):
    import hens.forecast as hf

    config = ensemble_yaml(tmp_path, init_times=["2000-01-10T00"], lead_hours=6,
                           perturbation={"kind": kind, "pairs": 1, "cycles": 1})
    first, second = (compute_member(config, "2000-01-10T00", m)["u500"].values for m in (0, 2))  # signs + and -
    analysis = hf.open_source(world_store)(["2000-01-10T00"], ["u500"]).values[0, 0]
    d1, d2 = first[0] - analysis, second[0] - analysis
    if kind == "none":
        assert (d1 == 0).all() and (d2 == 0).all() and not np.array_equal(first[1], second[1])
    elif kind == "gaussian":
        np.testing.assert_allclose(d1, -d2, atol=1e-5)  # centred pair (float32 sums)
    else:
        assert np.abs(d1).max() > 0 and not np.allclose(d1, -d2, atol=1e-3)  # one vector per member


def test_members_step_with_their_valid_time(ensemble_yaml, tiny_checkpoints, tmp_path):
    """A model with forcing inputs gets the valid time of every step: stepping a stored member's
    initial state by hand with those times reproduces its leads; the wrong season does not."""
    from hens.models.checkpoint import load_checkpoint

    config = ensemble_yaml(tmp_path, models=[str(tiny_checkpoints["det0"])], seeds=1, lead_hours=24,
                           init_times=["2000-01-12T06"], perturbation={"kind": "gaussian", "pairs": 1})
    run_forecast(config, progress=False)
    ds = open_store(tmp_path / "ens.zarr").isel(init_time=0, member=0)
    states = torch.from_numpy(np.stack([ds[c].values for c in ("z500", "u500", "v500", "t2m")], axis=1))
    stepper = load_checkpoint(tiny_checkpoints["det0"]).stepper()
    assert stepper.forcings == ("year_progress", "day_progress")
    t0 = np.datetime64("2000-01-12T06", "ns")

    def rollout(start):
        x, out = states[:1], []
        with torch.no_grad():
            for k in range(states.shape[0] - 1):
                x = stepper(x, time=start + k * np.timedelta64(6, "h"))
                out.append(x[0])
        return torch.stack(out)

    torch.testing.assert_close(rollout(t0), states[1:], rtol=1e-5, atol=1e-3)
    assert not torch.allclose(rollout(t0 + np.timedelta64(90, "D")), states[1:], rtol=1e-5, atol=1e-3)


class Diverging:
    """A real checkpoint's stepper whose rollout of the member with noise seed ``seed`` turns
    to Inf at step ``step`` (a model blowing up for one member)."""

    def __init__(self, stepper, seed, step):
        self.stepper, self.seed, self.step = stepper, seed, step

    def __getattr__(self, name):
        return getattr(self.stepper, name)

    def start(self, x, *, seeds, **kwargs):
        rollout, outer = self.stepper.start(x, seeds=seeds, **kwargs), self
        row = seeds.index(self.seed) if self.seed in seeds else None

        class Rollout:
            steps = 0

            def step(self):
                y = rollout.step().clone()
                self.steps += 1
                if row is not None and self.steps == outer.step:
                    y[row, 2, 5, 7] = float("inf")
                return y

        return Rollout()


def test_a_diverged_member_fails_its_batch_with_one_line(ensemble_yaml, tmp_path):
    """Member 5 (batch [4, 8), row 1) goes to Inf at its second step: the run stops naming it,
    the batch before it is complete, its own batch is not."""
    import dataclasses

    from hens.forecast.errors import DataError
    from hens.forecast.members import stream_seed

    cfg = load_config(ensemble_yaml(tmp_path, init_times=["2000-01-10T00"]))
    plan, spec = build_plan(cfg, torch.device("cpu"))
    seed = stream_seed(plan.base_seed, plan.init_times[0], plan.steppers[0].noise_stream, 0, 1, 0, 1)
    plan = dataclasses.replace(plan, steppers=(Diverging(plan.steppers[0], seed, step=2), plan.steppers[1]))
    sink = open_sink(cfg.output_path, spec)
    with pytest.raises(DataError) as err, torch.inference_mode():
        run_ensemble(plan, sink, pending_batches(plan, sink.completed()))
    assert str(err.value).startswith("member 5 (checkpoint 0, pair 1, sign +1, seed 1) from 2000-01-10T00 "
                                     "is not finite at lead 12 h")
    assert sink.completed()[0].tolist() == [True] * 4 + [False] * 12


def test_a_slab_larger_than_the_queue_budget_is_handed_over_not_queued():
    """With slabs over ``max_bytes`` a put returns only once the writer holds the slab: the host
    never has a queued slab besides the one being written and the one being put."""
    sink = SlowSink()
    slab = np.zeros((2, 1, 4, 8), np.float32)
    with BackgroundWriter(sink, max_bytes=slab.nbytes - 1, slab_bytes=slab.nbytes) as writer:
        assert writer.handoff
        for k in range(6):
            writer.put_lead(0, slice(0, 2), k, slab)
            assert writer._queue.qsize() == 0  # taken: SlowSink needs 10 ms a block, so a queue would fill
        writer.put_completed(0, slice(0, 2))
    assert [b[:2] for b in sink.blocks] == [(0, 3), (3, 6)] and sink.flags == [slice(0, 2)]
    with BackgroundWriter(SlowSink(), max_bytes=10 * slab.nbytes, slab_bytes=slab.nbytes) as queued:
        assert not queued.handoff and queued._queue.maxsize == 10  # the byte budget, not the depth (64)


def test_overlapped_host_copies_write_the_same_store(reference, ensemble_yaml, tmp_path, monkeypatch):
    """The GPU pipeline (copy of lead k while lead k+1 is computed), run here on CPU tensors."""
    import hens.forecast.transfer as transfer

    monkeypatch.setattr(transfer, "OVERLAP_DEVICES", ("cpu",))
    run_forecast(ensemble_yaml(tmp_path), progress=False)
    _assert_same_arrays(reference[1], tmp_path / "ens.zarr")


def test_bfloat16_precision_is_recorded_reproducible_and_close(reference, ensemble_yaml, tmp_path):
    ref = open_store(reference[1])
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        run_forecast(ensemble_yaml(tmp_path / name, precision="bfloat16"), progress=False)
    _assert_same_arrays(tmp_path / "a" / "ens.zarr", tmp_path / "b" / "ens.zarr")
    ds = open_store(tmp_path / "a" / "ens.zarr")
    assert json.loads(ds.attrs["hens_config"])["precision"] == "bfloat16"
    assert "precision" not in json.loads(ref.attrs["hens_config"])  # float32 stores look as before
    z, z_ref = ds["z500"].values, ref["z500"].values
    assert not np.array_equal(z, z_ref)
    spread = np.std(z_ref[:, :, -1], axis=1).mean()
    assert np.abs(z[:, :, -1] - z_ref[:, :, -1]).mean() < 0.2 * spread  # bf16 error << ensemble spread
    with pytest.raises(ConfigError, match="precision"):
        load_config(ensemble_yaml(tmp_path, precision="float8"))


def test_resident_models_keep_within_their_budget_and_reload_the_same_weights(tiny_checkpoints):
    from hens.models.checkpoint import load_checkpoint
    from hens.pipelines.forecast.steppers import ResidentModels

    paths = [tiny_checkpoints[k] for k in ("stoch0", "stoch1")]
    size = sum(p.numel() * p.element_size() for p in load_checkpoint(paths[0]).model.parameters())
    models = ResidentModels(torch.device("cpu"), budget_bytes=size)  # room for one
    first = models.get(paths[0])
    assert models.get(paths[0]) is first and models.loaded == (paths[0],)
    models.get(paths[1])
    assert models.loaded == (paths[1],)  # the least recently used one was dropped
    again = models.get(paths[0])
    assert again is not first and models.loaded == (paths[0],)
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    roomy = ResidentModels(torch.device("cpu"), budget_bytes=2 * size)
    roomy.get(paths[0]), roomy.get(paths[1]), roomy.get(paths[0])
    assert roomy.loaded == (paths[1], paths[0])


def test_a_rank_lets_each_checkpoint_go_after_its_last_batch(reference, ensemble_yaml, tmp_path, monkeypatch):
    """The build validates every checkpoint and drops it; the engine loads each when a batch needs
    it and releases it after the rank's last batch of it (here init 1's), with the same store."""
    from hens.pipelines.forecast.steppers import ResidentModels

    events, rm_get, rm_release = [], ResidentModels.get, ResidentModels.release

    def get(self, path):
        if path not in self.loaded:
            events.append(("load", path.name))
        return rm_get(self, path)

    def release(self, path=None):
        events.append(("release", None if path is None else path.name))
        rm_release(self, path)

    monkeypatch.setattr(ResidentModels, "get", get)
    monkeypatch.setattr(ResidentModels, "release", release)
    run_forecast(ensemble_yaml(tmp_path), progress=False)
    build = events.index(("release", None))
    assert events[:build] == [("load", "stoch0.pt"), ("load", "stoch1.pt")]
    # 2 inits x 4 batches, checkpoint 0 = batches 0-1, 1 = batches 2-3: loaded once, kept across inits
    assert events[build + 1:] == [("load", "stoch0.pt"), ("load", "stoch1.pt"), ("release", "stoch0.pt"),
                                  ("release", "stoch1.pt")]
    _assert_same_arrays(reference[1], tmp_path / "ens.zarr")


def test_a_members_ar1_noise_state_is_its_own_whatever_the_batch(tiny_checkpoints, world_store):
    """The engine's rollout carries each member's AR(1) noise state across steps; member seed 7
    has the same state bits alone and in a batch at every step, and states close to them."""
    import hens.forecast as hf
    from hens.models.checkpoint import load_checkpoint
    from hens.pipelines.forecast.steppers import CheckpointStepper

    ckpt = load_checkpoint(tiny_checkpoints["stoch0"])
    assert ckpt.model.cfg.noise_phi > 0  # the default: AR(1), FourCastNet 3's decorrelation time
    t0 = np.datetime64("2000-01-10T00", "ns")
    x = torch.from_numpy(hf.open_source(world_store)([t0], ckpt.channels).values)
    stepper = CheckpointStepper(ckpt)
    alone = stepper.start(x, init_time=t0, seeds=[7])
    batch = stepper.start(x.expand(3, -1, -1, -1), init_time=t0, seeds=[3, 7, 7])
    with torch.inference_mode():
        for _ in range(4):
            a, b = alone.step(), batch.step()
            assert torch.equal(alone.noise[0], batch.noise[1]) and torch.equal(batch.noise[1], batch.noise[2])
            torch.testing.assert_close(a[0], b[1], rtol=1e-5, atol=1e-3)
    assert not torch.equal(batch.noise[0], batch.noise[1])
