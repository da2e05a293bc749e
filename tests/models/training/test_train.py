"""hens train: split, statistics, determinism, resume, stochastic and rollout runs, CLI errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from hens.forecast.errors import ConfigError, DataError, OutputExists
from hens.forecast.grids import parse_grid
from hens.forecast.types import STEP
from hens.models.checkpoint import load_checkpoint
from hens.models.runtime import Distributed, first_host, slurm_environment
from hens.models.training import Run, TrainConfig, train
from hens.models.training.data import GAP, area_weighted_stats, split_times
from hens.models.training.schedule import commit_total, decay_start, lr_at, planned_total

torch.set_num_threads(1)
SIX_HOURS = np.timedelta64(6, "h")


class WaveSource:
    """An analytic DataSource: travelling zonal waves on a seasonal mean, 6-hourly."""

    def __init__(self, days: float = 90.0, grid: str = "16x32") -> None:
        self.grid = parse_grid(grid)
        self.channels = ("z500", "t2m")
        self.times = np.datetime64("2000-01-01T00", "ns") + np.arange(int(days * 4)) * SIX_HOURS
        self.name, self.layout = "waves", "analytic"

    def __call__(self, times, channels) -> xr.DataArray:
        t = (np.asarray(times, dtype="datetime64[ns]") - self.times[0]) / np.timedelta64(1, "D")
        lat = np.radians(self.grid.lat)[None, :, None]
        lon = np.radians(self.grid.lon)[None, None, :]
        t = t[:, None, None]
        fields = {
            "z500": 5.5e4 + 2e3 * np.cos(lat) ** 2 + 300 * np.cos(lat) * np.sin(3 * (lon - 0.4 * t)),
            "t2m": 280 + 20 * np.cos(lat) + 3 * np.sin(2 * (lon + 0.2 * t)) * np.cos(lat) + np.sin(t / 20),
        }
        data = np.stack([fields[c] for c in channels], axis=1).astype(np.float32)
        return xr.DataArray(data, dims=("time", "channel", "lat", "lon"),
                            coords={"time": times, "channel": list(channels)})


def _assert_resumes_to(straight, cfg: TrainConfig, source, *, stop: int) -> None:
    """A run of ``cfg`` saved after ``stop`` steps and then resumed by the same command ends
    bit-identical to the ``straight`` run's checkpoint (losses and weights)."""
    run = Run(cfg, Distributed(), source)
    for _ in range(stop):
        run.train_step()
    run.save(final=False)
    run.close()
    resumed = load_checkpoint(train(cfg, source=source))
    assert resumed.extra["train_loss"] == straight.extra["train_loss"]
    ss, sr = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(ss[k], sr[k]) for k in ss)


def _cfg(tmp_path, name="m.pt", **kw) -> TrainConfig:
    base = dict(data=("waves",), out=tmp_path / name, steps=6, batch=4, embed_dim=8, num_layers=2,
                scale_factor=2, progress=False, val_days=8.0)
    base.update(kw)
    return TrainConfig(**base)


def test_split_has_a_gap_of_more_than_30_days():
    times = WaveSource(days=200).times
    split = split_times(times)
    assert split.val[0] - split.train[-1] > np.timedelta64(30, "D") and GAP > np.timedelta64(30, "D")
    assert split.val[-1] == times[-1] and split.train[0] == times[0]
    days = (split.val[-1] - split.val[0]) / np.timedelta64(1, "D")
    assert days == pytest.approx(0.15 * 199.75, abs=0.3)
    with pytest.raises(DataError, match="too short"):
        split_times(times[:100])


def test_area_weighted_stats():
    src = WaveSource(days=5)
    data = src(src.times, src.channels).values
    stats = area_weighted_stats(data, src.times, src.grid)
    w = src.grid.area_weights[None, :, None] * np.ones((1, 1, src.grid.nlon))
    for c in range(2):
        x = data[:, c].astype(np.float64)
        mean = (x * w).sum() / (w.sum() * x.shape[0])
        assert stats["mean"][c] == pytest.approx(mean)
        assert stats["std"][c] == pytest.approx(np.sqrt(((x - mean) ** 2 * w).sum() / (w.sum() * x.shape[0])), rel=1e-6)
        d = np.diff(x, axis=0)
        assert stats["tendency_std"][c] == pytest.approx(np.sqrt((d**2 * w).sum() / (w.sum() * d.shape[0])), rel=1e-6)


def test_lr_schedule_and_commit():
    assert lr_at(0, 100, 1.0) == pytest.approx(1 / 20)
    assert lr_at(19, 100, 1.0) == lr_at(69, 100, 1.0) == lr_at(69, None, 1.0) == 1.0
    assert lr_at(70, 100, 1.0) == 1.0 > lr_at(71, 100, 1.0) > lr_at(99, 100, 1.0) > 0.01
    assert lr_at(100, 100, 1.0) == pytest.approx(0.01)
    for step in range(1, 500):  # a --minutes run can enter the decay at any step
        total = commit_total(step)
        assert decay_start(total) == step < total


@pytest.mark.parametrize(("step", "cost"), [(0, 1.0), (700, 1.0), (700, 6.0), (2475, 5.8), (10, 3.0)])
def test_the_planned_total_prices_the_rollout_tail_it_still_has_ahead(tmp_path, step, cost):
    """The steps a plan leaves, priced as :meth:`Run.rollout_at` will run them (one-step,
    then the last 25 % unrolled), fit the seconds left, and one step more would not."""
    run = Run.__new__(Run)  # only rollout_at: no data, no model
    run.cfg = _cfg(tmp_path, rollout=6, rollout_fraction=0.25)

    def seconds(total: int) -> float:
        run.total = total
        return sum(cost if run.rollout_at(k) > 1 else 1.0 for k in range(step, total)) * 0.4

    left = 1000.0
    total = planned_total(step, left, 0.4, rollout_fraction=0.25, rollout_cost=cost)
    assert seconds(total) <= left < seconds(total + 1)


def test_deterministic_for_a_seed_and_resumable(tmp_path):
    src = WaveSource()
    a = load_checkpoint(train(_cfg(tmp_path, "a.pt", seed=1), source=src))
    b = load_checkpoint(train(_cfg(tmp_path, "b.pt", seed=1), source=src))
    c = load_checkpoint(train(_cfg(tmp_path, "c.pt", seed=2), source=src))
    sa, sb, sc = (x.model.state_dict() for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.extra["train_loss"] == b.extra["train_loss"] and len(a.extra["train_loss"]) == 6
    assert a.data_sha256 == c.data_sha256 and a.seed == 1 and a.channels == ("z500", "t2m")
    assert (tmp_path / "a.loss.png").stat().st_size > 1000
    assert set(a.extra["rmse_48h"]) == {"z500", "t2m"} and all(v > 0 for v in a.extra["rmse_48h"].values())
    assert not (tmp_path / "a.pt.resume").exists()
    # interrupted after 3 steps, then the same command again: identical to the straight run
    cfg = _cfg(tmp_path, "r.pt", seed=1)
    run = Run(cfg, Distributed(), src)
    for _ in range(3):
        run.train_step()
    run.save(final=False)
    assert cfg.resume_path.exists()
    r = load_checkpoint(train(cfg, source=src))
    sr = r.model.state_dict()
    assert all(torch.equal(sa[k], sr[k]) for k in sa)
    assert r.extra["train_loss"] == a.extra["train_loss"]
    with pytest.raises(OutputExists, match="--overwrite"):
        train(cfg, source=src)
    with pytest.raises(ConfigError, match="other options \\(lr\\)"):
        run.save(final=False)
        train(_cfg(tmp_path, "r.pt", seed=1, lr=1e-4), source=src)


def test_stochastic_rollout_and_minutes(tmp_path):
    src = WaveSource()
    ckpt = load_checkpoint(train(_cfg(tmp_path, "s.pt", stochastic=True, members=2, steps=8, rollout=2), source=src))
    assert ckpt.stochastic and ckpt.extra["rollout_steps"] == 2 and ckpt.extra["members"] == 2
    assert np.isfinite(ckpt.extra["train_loss"]).all() and ckpt.extra["val_loss"]
    timed = load_checkpoint(train(_cfg(tmp_path, "t.pt", steps=None, minutes=0.3, rollout=2), source=src))
    steps = timed.extra["steps"]
    assert 20 <= steps == timed.extra["planned_steps"] and timed.extra["wall_seconds"] < 0.3 * 60
    # the timed run is reproduced exactly by --steps with its recorded total
    again = load_checkpoint(train(_cfg(tmp_path, "t2.pt", steps=steps, rollout=2), source=src))
    assert again.extra["train_loss"] == timed.extra["train_loss"]


def test_stochastic_noise_options_reach_the_model_and_the_rollout(tmp_path, monkeypatch):
    """--injection and --noise-decorrelation-hours: recorded in the checkpoint; the rollout's
    noise is one AR(1) chain per row (lag-one correlation phi) from a stationary start."""
    cfg = _cfg(tmp_path, "n.pt", stochastic=True, members=2, steps=3, rollout=3, rollout_fraction=0.3,
               injection="both", noise_decorrelation_hours=24.0)
    ckpt = load_checkpoint(train(cfg, source=WaveSource()))
    assert ckpt.model.cfg.injection == "both" and ckpt.model.cfg.sfno.norm == "layer"
    assert ckpt.config["noise_decorrelation_hours"] == 24.0
    run = Run(_cfg(tmp_path, "m.pt", stochastic=True, noise_decorrelation_hours=24.0), Distributed(), WaveSource())
    try:
        states = run.noise_states(512, 3, torch.Generator().manual_seed(0), slice(None))
    finally:
        run.close()
    a, b = (torch.view_as_real(s).flatten(1) for s in states[1:])
    corr = float((a * b).sum() / (a.square().sum() * b.square().sum()).sqrt())
    assert corr == pytest.approx(np.exp(-0.25), abs=0.05)  # 512 x 2 rows of 4 channels: se < 0.01


def test_resume_identity_keeps_runs_from_before_the_noise_options():
    """Noise options at the values runs had before they existed (or unused) are not part of
    the identity, so those runs' resume files stay valid."""
    old = {"stochastic": True, "injection": "input", "noise_decorrelation_hours": 0.0}
    assert not {"injection", "noise_decorrelation_hours"} & set(_cfg(Path("."), **old).identity())
    assert not {"injection", "noise_decorrelation_hours"} & set(_cfg(Path("."), stochastic=False).identity())
    assert _cfg(Path("."), stochastic=True).identity()["noise_decorrelation_hours"] == 6.0
    with pytest.raises(ConfigError, match="--injection="):
        _cfg(Path("."), injection="block")
    with pytest.raises(ConfigError, match="--noise-decorrelation-hours -1"):
        _cfg(Path("."), noise_decorrelation_hours=-1.0)


def test_input_noise_fields_have_the_asked_std_and_the_same_bits_on_any_rank_count(tmp_path):
    """--input-noise adds fields of point-wise std input_noise x the channel's tendency std;
    each rank keeps its slice of the global draw, so two ranks' inputs are one rank's."""
    src = WaveSource()
    run = Run(_cfg(tmp_path, batch=64, input_noise=0.5, input_noise_km=2000.0), Distributed(), src)
    try:
        x0 = torch.zeros((64, 2, 16, 32))
        state = run.input_noise.get_state()
        whole = run.perturb_inputs(x0, slice(None))
        run.input_noise.set_state(state)
        first = run.perturb_inputs(x0[:32], slice(0, 32))
        run.input_noise.set_state(state)
        second = run.perturb_inputs(x0[32:], slice(32, 64))
        scale = run.stepper.tendency_std
    finally:
        run.close()
    assert torch.equal(torch.cat([first, second]), whole)
    w = torch.as_tensor(src.grid.area_weights, dtype=torch.float64).view(1, 1, -1, 1)
    var = ((whole.double() / scale) ** 2 * w).sum((0, 2, 3)) / (w.sum() * 64 * 32)
    # 64 fields of ~(L/2000 km)^2 independent patches each: se of the std ~ 3 %
    assert var.sqrt().numpy() == pytest.approx([0.5, 0.5], rel=0.12)


def test_input_noise_degrees_keep_the_fields_to_the_planetary_scales(tmp_path):
    """--input-noise-degrees N: all of the fields' power sits at l = 1..N, the point-wise std as asked."""
    from torch_harmonics import RealSHT

    src = WaveSource()
    run = Run(_cfg(tmp_path, batch=64, input_noise=0.5, input_noise_degrees=2), Distributed(), src)
    try:
        fields = (run.perturb_inputs(torch.zeros((64, 2, 16, 32)), slice(None)) / run.stepper.tendency_std).double()
    finally:
        run.close()
    sht = RealSHT(16, 32, lmax=16, mmax=16, grid=src.grid.sht_grid, norm="ortho").double()
    power = (sht(fields).abs() ** 2).sum((0, 1, 3))  # per degree l
    assert power[3:].sum() < 1e-8 * power.sum() and power[1] > 0.2 * power.sum() and power[2] > 0.2 * power.sum()
    w = torch.as_tensor(src.grid.area_weights, dtype=torch.float64).view(1, 1, -1, 1)
    std = (((fields**2) * w).sum() / (w.sum() * 64 * 2 * 32)).sqrt()
    assert float(std) == pytest.approx(0.5, rel=0.15)  # 128 fields of 8 planetary coefficients each
    with pytest.raises(ConfigError, match="--input-noise-degrees 16 must be below 16"):
        Run(_cfg(tmp_path, input_noise=0.5, input_noise_degrees=16), Distributed(), src)
    with pytest.raises(ConfigError, match="--input-noise-degrees 0 must be >= 1"):
        _cfg(tmp_path, input_noise=0.5, input_noise_degrees=0)
    assert "input_noise_degrees" not in _cfg(tmp_path, input_noise=0.5).identity()
    assert _cfg(tmp_path, input_noise=0.5, input_noise_degrees=2).identity()["input_noise_degrees"] == 2


def test_input_noise_changes_training_reproducibly_and_resumes(tmp_path):
    src = WaveSource()
    a = load_checkpoint(train(_cfg(tmp_path, "a.pt", seed=1, input_noise=0.5), source=src))
    b = load_checkpoint(train(_cfg(tmp_path, "b.pt", seed=1, input_noise=0.5), source=src))
    plain = load_checkpoint(train(_cfg(tmp_path, "p.pt", seed=1), source=src))
    assert a.extra["train_loss"] == b.extra["train_loss"] != plain.extra["train_loss"]
    assert a.extra["input_noise"] == 0.5 and a.extra["input_noise_km"] == 1000.0
    assert plain.extra["input_noise"] == 0.0 and "input_noise" not in _cfg(tmp_path, seed=1).identity()
    _assert_resumes_to(a, _cfg(tmp_path, "r.pt", seed=1, input_noise=0.5), src, stop=3)
    with pytest.raises(ConfigError, match="--input-noise -1"):
        _cfg(tmp_path, input_noise=-1.0)
    with pytest.raises(ConfigError, match="--input-noise-km 0.0 must be finite and > 0"):
        _cfg(tmp_path, input_noise=0.5, input_noise_km=0.0)


def test_pushforward_scores_one_step_from_the_models_own_forecast_without_gradients_through_it(tmp_path):
    """--pushforward K: one-step step n starts from the model's own (n mod K)-step forecast of a
    drawn analysis; its loss and gradients are those of a one-step loss from that forecast held
    fixed. The rollout tail unrolls as before."""
    src = WaveSource()
    run = Run(_cfg(tmp_path, pushforward=3, rollout=2, steps=12), Distributed(), src)
    try:
        assert [run.pushed_at(s) for s in range(12)] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 0]
        assert [run.window_at(s) for s in range(12)] == [1, 2, 3, 1, 2, 3, 1, 2, 3, 2, 2, 2]
        starts = run.starts[3][[0, 7, 19, 40]]
        x0, targets = run.train_data.batch(starts, 3)
        times = run.train_data.times[starts]
        run.model.train()
        for _ in range(2):  # leave the untrained model: its own forecasts then differ from the truth
            run.train_step()
        run.optimizer.zero_grad(set_to_none=True)
        loss = run.loss(x0, targets, None, times, pushed=2)
        loss.backward()
        grads = [p.grad.clone() for p in run.model.parameters()]
        run.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            x2 = run.stepper(run.stepper(x0, time=times), time=times + STEP)
        held = run.loss(x2, targets[2:], None, times + 2 * STEP)
        held.backward()
        assert torch.equal(loss, held) and all(torch.equal(g, p.grad) for g, p in zip(grads, run.model.parameters()))
        assert not torch.equal(loss, run.loss(x0, targets[:1], None, times))
    finally:
        run.close()


def test_pushforward_degrees_keep_the_models_own_part_of_the_input_to_the_planetary_scales(tmp_path):
    """--pushforward-degrees N: the pushed input is the analysis plus the forecast's error at l <= N."""
    from torch_harmonics import RealSHT

    from hens.models.training.pushforward import pushed_input

    src = WaveSource()
    run = Run(_cfg(tmp_path, pushforward=2, pushforward_degrees=3), Distributed(), src)
    try:
        starts = run.starts[2][[3, 11, 30, 50]]
        x0, targets = run.train_data.batch(starts, 2)
        times = run.train_data.times[starts]
        for _ in range(2):
            run.train_step()
        loss = run.loss(x0, targets, None, times, pushed=1)
        with torch.no_grad():
            x1 = run.stepper(x0, time=times)
        given = pushed_input(x1, targets[0], src.grid, 3)
        assert torch.equal(loss, run.loss(given, targets[1:], None, times + STEP))
    finally:
        run.close()
    sht = RealSHT(16, 32, lmax=16, mmax=16, grid=src.grid.sht_grid, norm="ortho").double()
    kept, error = sht((given - targets[0]).double()), sht((x1 - targets[0]).double())
    assert kept[..., 4:, :].abs().max() < 1e-5 * error.abs().max()
    assert torch.allclose(kept[..., :4, :], error[..., :4, :], rtol=0, atol=1e-5 * float(error.abs().max()))
    assert error[..., 4:, :].abs().max() > 0.1 * error.abs().max()  # the forecast had errors there to drop
    with pytest.raises(ConfigError, match="--pushforward-degrees 16 must be below 16"):
        Run(_cfg(tmp_path, pushforward=2, pushforward_degrees=16), Distributed(), src)
    with pytest.raises(ConfigError, match="--pushforward-degrees 3 needs --pushforward K > 1"):
        _cfg(tmp_path, pushforward_degrees=3)


def test_pushforward_trains_reproducibly_and_resumes(tmp_path):
    src = WaveSource()
    a = load_checkpoint(train(_cfg(tmp_path, "a.pt", seed=1, pushforward=3), source=src))
    plain = load_checkpoint(train(_cfg(tmp_path, "p.pt", seed=1), source=src))
    assert a.extra["pushforward"] == 3 == a.extra["options"]["pushforward"] and plain.extra["pushforward"] == 1
    assert a.extra["train_loss"][0] == plain.extra["train_loss"][0] != a.extra["train_loss"][1]
    _assert_resumes_to(a, _cfg(tmp_path, "r.pt", seed=1, pushforward=3), src, stop=4)  # stopped inside a cycle
    assert "pushforward" not in _cfg(tmp_path, seed=1).identity()  # runs from before the option resume
    with pytest.raises(ConfigError, match="--pushforward 0 must be >= 1"):
        _cfg(tmp_path, pushforward=0)


def test_amse_loss_trains_and_is_recorded(tmp_path):
    """AMSE is the MSE where the powers match: the loss starts near the MSE run's and falls."""
    src = WaveSource()
    amse = load_checkpoint(train(_cfg(tmp_path, "a.pt", loss="amse", steps=12, lr=1e-2), source=src))
    plain = load_checkpoint(train(_cfg(tmp_path, "m.pt", steps=12, lr=1e-2), source=src))
    assert amse.extra["loss"].startswith("adjusted spectral MSE") and plain.extra["loss"].startswith("area-weighted MSE")
    a, m = amse.extra["train_loss"], plain.extra["train_loss"]
    assert np.isfinite(a).all() and a[0] >= m[0] and np.mean(a[-3:]) < a[0]


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--loss=.mae. is not an option"):
        _cfg(tmp_path, loss="mae")
    with pytest.raises(ConfigError, match="stochastic ones train with CRPS"):
        _cfg(tmp_path, stochastic=True, loss="amse")
    with pytest.raises(ConfigError, match="exactly one of --minutes M or --steps N"):
        _cfg(tmp_path, minutes=1.0)
    with pytest.raises(ConfigError, match="at least 2 members"):
        _cfg(tmp_path, stochastic=True, members=1)
    with pytest.raises(ConfigError, match="not in the data"):
        train(_cfg(tmp_path, channels=("q700",)), source=WaveSource())


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from hens.pipelines.cli import main

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["hens", "train", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return exit_info.value.code, capsys.readouterr().err

    code, err = run("--data", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x.pt"), "--steps", "1")
    assert code == 2 and err.count("\n") == 1 and err.startswith("hens: error:")
    code, err = run("--data", "x", "--out", str(tmp_path / "x.pt"), "--steps", "1", "--minutes", "1")
    assert code == 2 and "exactly one of --minutes M or --steps N" in err and err.count("\n") == 1
    code, err = run("--data", "x", "--out", str(tmp_path / "x.pt"), "--steps", "1", "--loss", "mae")
    assert code == 2 and "--loss='mae' is not an option" in err and err.count("\n") == 1
    code, err = run("--data", "x", "--out", str(tmp_path / "x.pt"), "--steps", "1", "--forcings", "solar_flux")
    assert code == 2 and "unknown forcing solar_flux" in err and err.count("\n") == 1


@pytest.mark.parametrize("forcings", [(), ("year_progress", "day_progress")])
def test_checkpoints_record_their_forcings(tmp_path, forcings):
    ckpt = load_checkpoint(train(_cfg(tmp_path, "f.pt", steps=2, forcings=forcings), source=WaveSource()))
    assert ckpt.forcings == forcings and ckpt.model.cfg.in_channels == len(ckpt.channels) + 2 * len(forcings)
    assert np.isfinite(list(ckpt.extra["rmse_48h"].values())).all()


def test_slurm_environment_mapping():
    env = {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_NODELIST": "node07"}
    mapped = slurm_environment(env)
    assert mapped == {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
                      "MASTER_PORT": str(15000 + 4242 % 40000)}
    assert slurm_environment({**env, "SLURM_JOB_NUM_NODES": "3", "SLURM_JOB_NODELIST": "gpu[03-05,9]"})["MASTER_ADDR"] == "gpu03"
    assert slurm_environment({**env, "RANK": "0"}) == {}  # torchrun already set it
    assert slurm_environment({**env, "SLURM_NTASKS": "1"}) == {}
    assert first_host("a1,b2") == "a1" and first_host("cn[1-2]") == "cn1"


def test_a_stochastic_run_from_a_deterministic_checkpoint_starts_as_that_model(tmp_path):
    """--init-from: the noise weights start at zero, so before its first step the stochastic
    SFNO is the deterministic one for any noise; the start's sha256 is part of the identity."""
    src = WaveSource()
    det = train(_cfg(tmp_path, "d.pt"), source=src)
    cfg = _cfg(tmp_path, "s.pt", stochastic=True, members=2, init_from=det)
    run = Run(cfg, Distributed(), src)
    try:
        model = load_checkpoint(det).model
        x = torch.randn(3, model.cfg.in_channels, 16, 32)
        noise = run.model.next_noise(torch.Generator().manual_seed(1), 3)
        torch.testing.assert_close(run.model.eval()(x, noise=noise), model(x), rtol=1e-5, atol=1e-5)
        assert cfg.identity()["init_from_sha256"] == cfg.options()["init_from_sha256"]
    finally:
        run.close()
    ckpt = load_checkpoint(train(cfg, source=src))
    assert ckpt.extra["init_from"] == str(det) and ckpt.stochastic
    noise_columns = ckpt.model.net.encoder.hidden[0].weight[:, model.cfg.in_channels:]
    assert noise_columns.abs().sum() > 0  # the CRPS taught the network to use the noise


def test_init_from_refuses_another_network_or_other_data(tmp_path):
    src = WaveSource()
    det = train(_cfg(tmp_path, "d.pt"), source=src)
    for kw, message in [(dict(embed_dim=16), "another network"), (dict(val_days=12.0), "other data"),
                        (dict(stochastic=True, members=2, injection="norm"), "another network")]:
        with pytest.raises(ConfigError, match=message):
            Run(_cfg(tmp_path, "x.pt", init_from=det, **kw), Distributed(), src)
    with pytest.raises(ConfigError, match="--init-from .* does not exist"):
        _cfg(tmp_path, init_from=tmp_path / "missing.pt")
