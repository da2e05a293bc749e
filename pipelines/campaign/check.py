"""Checks of a campaign against its data and `hens train`'s own rules, before any submission.

Separate from :mod:`hens.pipelines.campaign.config` because it opens the data and imports
torch (through the training code); loading a campaign stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hens.forecast.errors import ConfigError
from hens.pipelines.campaign.config import CampaignConfig


def check_campaign(cfg: CampaignConfig) -> None:
    """Check the campaign against its data and `hens train`'s own rules (imports torch).

    Parameters
    ----------
    cfg
        A campaign from :func:`hens.pipelines.campaign.config.load_campaign`.

    Raises
    ------
    ConfigError
        Training options `hens train` refuses, training channels the data lacks, given
        models (checkpoints, packages) that do not form one ensemble or do not fit the data,
        or an initial time whose analyses (breeding window included) or verifying truth (when
        scoring) the data lacks.
    """
    from hens.forecast.perturb.bred import breeding_times
    from hens.forecast.sources import open_source

    values = cfg.forecast_values(cfg.init_times)
    source = open_source(values["data"] if len(values["data"]) > 1 else values["data"][0])
    if cfg.trains:
        _check_training(cfg, source)
    else:
        from hens.models.checkpoint import read_header
        from hens.models.compatibility import check_compatible, check_ensemble

        headers = [read_header(p) for p in cfg.model_paths()]
        check_ensemble(headers)
        for header in headers:
            check_compatible(header, source)
    cycles = cfg.perturbation.cycles if cfg.perturbation.bred else 0
    t0 = cfg.init_times[0]
    window = breeding_times(t0, cycles) - t0  # the analyses a run starts from and breeds over
    _check_times(cfg, source, [int(h) for h in window // np.timedelta64(1, "h")], "analysis")
    if cfg.scoring:
        truth = cfg.truth
        _check_times(cfg, open_source(truth if len(truth) > 1 else truth[0]), range(0, cfg.lead_hours + 1, 6),
                     "truth (score)")


def _check_training(cfg: CampaignConfig, source: Any) -> None:
    """`hens train`'s own rules for the campaign's training options, on its data."""
    from hens.models.forcings import parse_forcings
    from hens.models.training.config import TrainConfig
    from hens.models.training.data import split_times

    opts = {("num_layers" if k == "layers" else k): v for k, v in cfg.train_options.items()}
    if isinstance(opts.get("channels"), str):
        opts["channels"] = [c.strip() for c in opts["channels"].split(",") if c.strip()]
    if "channels" in opts:
        missing = [c for c in opts["channels"] if c not in source.channels]
        if missing:
            raise ConfigError(f"train channels {', '.join(missing)} are not in the data "
                              f"(it has {', '.join(source.channels)})")
        opts["channels"] = tuple(opts["channels"])
    try:
        if "forcings" in opts:
            opts["forcings"] = parse_forcings(opts["forcings"])
        for seed in cfg.seeds:
            TrainConfig(data=cfg.data, out=cfg.checkpoint(seed), seed=seed, **opts)
    except ConfigError as err:
        raise ConfigError(f"train: {err}") from None
    split_times(source.times, val_days=opts.get("val_days"), train_period=opts.get("train_period"),
                valid_period=opts.get("valid_period"), name=source.name)


def _check_times(cfg: CampaignConfig, source: Any, hours: Any, what: str) -> None:
    """Every init time + ``hours`` must be a time of ``source``."""
    have = set(np.asarray(source.times, dtype="datetime64[ns]").tolist())
    for t in cfg.init_times:
        for h in hours:
            v = (t + np.timedelta64(h, "h")).astype("datetime64[ns]")
            if v.tolist() not in have:
                raise ConfigError(f"init time {np.datetime_as_string(t, unit='h')} needs the {what} at "
                                  f"{np.datetime_as_string(v, unit='h')}, which {source.name} lacks")
