"""hens train on the world store: 2 gloo ranks vs 1 rank (real processes), 1-day skill (slow)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from hens.models.checkpoint import load_checkpoint

TINY = ["--steps", "6", "--batch", "4", "--embed-dim", "8", "--layers", "2", "--scale-factor", "2",
        "--no-progress", "--val-days", "8"]
#: stated tolerance: 1 and 2 ranks differ only in float32 summation order of the gradient mean
LOSS_RTOL = 1e-4


class Custom:
    """A custom class: loading its pickle needs arbitrary unpickling."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hens(args: list[str], *, ranks: int = 1, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if ranks == 1:
        cmd = [sys.executable, "-m", "hens.pipelines.cli", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}",
               f"--master_port={_free_port()}", "-m", "hens.pipelines.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.dist
def test_two_gloo_ranks_follow_the_one_rank_loss_curve(world_store, tmp_path):
    for stochastic in ([], ["--stochastic", "--members", "2"]):
        outs = {}
        for ranks in (1, 2):
            out = tmp_path / f"r{ranks}{'s' if stochastic else ''}.pt"
            done = _hens(["train", "--data", str(world_store), "--out", str(out), "--seed", "5", *TINY, *stochastic],
                         ranks=ranks)
            assert done.returncode == 0, done.stderr[-2000:]
            outs[ranks] = load_checkpoint(out)
        one, two = outs[1], outs[2]
        assert two.extra["world_size"] == 2 and one.extra["world_size"] == 1
        np.testing.assert_allclose(two.extra["train_loss"], one.extra["train_loss"], rtol=LOSS_RTOL)
        np.testing.assert_allclose(two.extra["val_loss"], one.extra["val_loss"], rtol=LOSS_RTOL)
        for k, v in one.model.state_dict().items():
            torch.testing.assert_close(two.model.state_dict()[k], v, atol=1e-4, rtol=1e-3)


def test_cli_checkpoint_errors_exit_non_zero(world_store, tmp_path, hens_cli):
    from hens.models.checkpoint import save_checkpoint
    from hens.models.sfno.network import SFNO, SFNOConfig

    hens = hens_cli

    def save(name: str, channels: tuple[str, ...], grid: str = "32x64"):
        model = SFNO(SFNOConfig(len(channels), len(channels), grid=grid, embed_dim=4, num_layers=1))
        ones = [1.0] * len(channels)
        return save_checkpoint(tmp_path / name, model, channels=channels, mean=ones, std=ones,
                               tendency_std=ones, seed=0, data_sha256="0" * 64)

    good = save("good.pt", ("z500", "u500", "v500", "t2m"))
    code, out, err = hens("checkpoint", str(good), str(save("twin.pt", ("z500", "u500", "v500", "t2m"))),
                          "--data", str(world_store))
    assert code == 0 and "ok: 2 checkpoint(s) fit" in out and "32x64" in out
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    pickled = tmp_path / "pickle.pt"
    torch.save({"format": "hens-checkpoint", "model": Custom()}, pickled)
    cases = [
        ([str(save("chan.pt", ("z500", "t850"))), "--data", str(world_store)], "needs channels t850"),
        ([str(save("grid.pt", ("z500", "t2m"), grid="16x32")), "--data", str(world_store)], "is for grid 16x32"),
        ([str(good), str(save("other.pt", ("z500", "u500", "v500", "t850")))], "has t850; lacks t2m"),
        ([str(truncated)], "truncated or corrupt"),
        ([str(pickled)], "arbitrary Python objects"),
    ]
    for args, message in cases:
        code, _, err = hens("checkpoint", *args)
        assert code == 2, (args, err)
        assert err.startswith("hens: error:") and message in err and err.count("\n") == 1, err


def test_cli_spectral_weight_reaches_the_loss_and_the_checkpoint(world_store, tmp_path, hens_cli):
    out = tmp_path / "spectral.pt"
    code, _, err = hens_cli("train", "--data", str(world_store), "--out", str(out), "--stochastic", "--members", "2",
                            "--spectral-weight", "0.5", "--steps", "1", "--batch", "2", "--embed-dim", "8",
                            "--layers", "1", "--scale-factor", "2", "--val-days", "8", "--no-progress")
    assert code == 0, err
    ckpt = load_checkpoint(out)
    assert ckpt.extra["spectral_weight"] == 0.5
    code, _, err = hens_cli("train", "--data", str(world_store), "--out", str(tmp_path / "x.pt"), "--stochastic",
                            "--spectral-weight", "-1", "--steps", "1")
    assert code == 2 and err.startswith("hens: error:") and "--spectral-weight" in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_short_training_beats_persistence_and_climatology_at_one_day(world_store, tmp_path):
    from hens.forecast.sources import open_source
    from hens.forecast.stats import open_world_stats
    from hens.models.training.skill import evaluate, held_out_starts, world_climatology

    out = tmp_path / "skill.pt"
    done = _hens(["train", "--data", str(world_store), "--out", str(out), "--seed", "0", "--minutes", "3",
                  "--embed-dim", "48", "--no-progress", "--val-days", "9"], timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt = load_checkpoint(out)
    source = open_source(world_store)
    starts = held_out_starts(ckpt, source, max_lead_days=1.0, every_hours=6)
    skill = evaluate(ckpt, source, starts, lead_days=(1.0,),
                     climatology=world_climatology(open_world_stats(world_store), ckpt.channels))
    print(skill.table())
    for channel in ("z500", "t2m"):
        k = skill.channels.index(channel)
        assert skill.model[0, k] < skill.persistence[0, k]
        assert skill.model[0, k] < skill.climatology[0, k]
