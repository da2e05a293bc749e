"""Model checkpoints: one file with the weights and everything needed to use them.

A checkpoint is a ``torch.save`` of plain containers and tensors only, so
``torch.load(path, weights_only=True)`` reads it (no arbitrary unpickling):

============== ============================================================================
key            value
============== ============================================================================
format         ``"hens-checkpoint"``; ``format_version`` (int)
hens_version   version of hens that wrote it
model_kind     ``"sfno"`` or ``"stochastic_sfno"``; ``model_config`` its config as a dict
               (a stochastic SFNO's records its noise: lengths, injection, decorrelation
               hours; without the hours, from before them, white noise)
state_dict     the model's parameters
channels       hens channel names, model order; ``grid`` the grid spec (``"32x64"``)
normalisation  ``{"mean", "std", "tendency_std"}``: float64 tensors, one value per channel
seed           training seed; ``data_sha256`` sha256 of the training-data description
forcings       names of the forcing inputs (:mod:`hens.models.forcings`); absent: none
extra          plain training metadata (steps, losses, wall time, ...)
============== ============================================================================

:func:`load_checkpoint` turns every failure into one :class:`CheckpointError` line;
:mod:`hens.models.compatibility` compares channels and grids. It also loads
NVIDIA's published SFNO packages (a makani package directory or its ``.tar``) as hens models
(docs/packages.md); the rest of hens sees the same :class:`Checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hens import __version__
from hens.forecast.errors import CheckpointError, ConfigError, HensError
from hens.forecast.grids import Grid, parse_grid
from hens.models.compatibility import check_compatible as check_compatible  # their home before compatibility.py
from hens.models.compatibility import check_ensemble as check_ensemble
from hens.models.forcings import check_forcings, forcing_channels
from hens.models.safe_unpickle import first_line, load_weights_only
from hens.models.sfno.network import SFNO, SFNOConfig
from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig
from hens.models.stepper import ModelStep
from hens.models.types import ModelKind

FORMAT = "hens-checkpoint"
FORMAT_VERSION = 2  # 2: forcing inputs ("forcings")
REQUIRED_KEYS = (
    "format", "format_version", "hens_version", "model_kind", "model_config", "state_dict",
    "channels", "grid", "normalisation", "seed", "data_sha256",
)
_MODELS: dict[str, tuple[Any, type[nn.Module]]] = {
    "sfno": (SFNOConfig, SFNO),
    "stochastic_sfno": (StochasticSFNOConfig, StochasticSFNO),
}
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)  # exact types: subclasses may not unpickle


def build_model(kind: ModelKind, config: Mapping[str, Any]) -> nn.Module:
    """Build an untrained model of ``kind`` from its config dict."""
    if kind not in _MODELS:
        raise ConfigError(f"unknown model kind {kind!r}; use one of {', '.join(_MODELS)}")
    config_cls, model_cls = _MODELS[kind]
    return model_cls(config_cls.from_dict(config))


def model_kind(model: nn.Module) -> ModelKind:
    """The registry name of ``model``'s class."""
    for kind, (_, cls) in _MODELS.items():
        if type(model) is cls:
            return kind  # type: ignore[return-value]
    raise ConfigError(f"cannot checkpoint a {type(model).__name__}; hens saves {', '.join(_MODELS)}")


def network_config(model: nn.Module) -> SFNOConfig:
    """The SFNO config whose input and output channels are the data's (plus forcings on input)."""
    return model.cfg.sfno if model_kind(model) == "stochastic_sfno" else model.cfg


def _fits(cfg: SFNOConfig, channels: Sequence[str], forcings: Sequence[str]) -> bool:
    """Whether a network with ``cfg`` reads ``channels`` + the ``forcings`` fields and writes ``channels``."""
    return cfg.in_channels == len(channels) + forcing_channels(forcings) and cfg.out_channels == len(channels)


def description_sha256(description: Mapping[str, Any]) -> str:
    """sha256 of a JSON-serialisable description (sorted keys), e.g. of the training data."""
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"checkpoint {where} has a non-string key {k!r}")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif type(value) not in _PLAIN:
        raise ConfigError(f"checkpoint {where} is a {type(value).__name__}; store plain values only")


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A loaded checkpoint: metadata and the built model (eval mode, on ``map_location``).

    ``origin`` says what the file was: ``"hens-checkpoint"`` or ``"makani-package"``. A
    package predicts whole states (``output="state"``), takes static input fields and
    records neither a tendency std, a training seed nor a data hash (``None``).
    """

    path: Path
    kind: ModelKind
    config: dict[str, Any]
    channels: tuple[str, ...]
    grid: Grid
    mean: torch.Tensor
    std: torch.Tensor
    tendency_std: torch.Tensor | None
    seed: int | None
    data_sha256: str | None
    hens_version: str
    sha256: str
    model: nn.Module
    extra: dict[str, Any] = field(default_factory=dict)
    forcings: tuple[str, ...] = ()
    origin: str = "hens-checkpoint"
    output: str = "increment"
    static: torch.Tensor | None = None

    @property
    def stochastic(self) -> bool:
        return self.kind == "stochastic_sfno"

    def stepper(self) -> ModelStep:
        """The physical-units :class:`~hens.models.stepper.ModelStep` of this checkpoint (shares the model)."""
        stepper = ModelStep(self.model, self.mean, self.std, self.tendency_std, self.forcings,
                          output=self.output, static=self.static, lat=self.grid.lat)  # type: ignore[arg-type]
        return stepper.to(next(self.model.parameters()).device)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    channels: Sequence[str],
    mean: Sequence[float] | torch.Tensor,
    std: Sequence[float] | torch.Tensor,
    tendency_std: Sequence[float] | torch.Tensor,
    seed: int,
    data_sha256: str,
    extra: Mapping[str, Any] | None = None,
    forcings: Sequence[str] = (),
) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically (temporary file + rename).

    The grid is the model config's grid; the model's inputs are ``channels`` then the fields
    of ``forcings``. Raises :class:`ConfigError` if the channel or statistics counts do not
    match the model, or ``extra`` holds non-plain values.
    """
    kind = model_kind(model)
    config = model.cfg.to_dict()
    sfno_cfg = network_config(model)
    channels = [str(c) for c in channels]
    forcings = check_forcings(forcings)
    if not _fits(sfno_cfg, channels, forcings) or len(set(channels)) != len(channels):
        raise ConfigError(
            f"{len(channels)} channels {channels} and forcings {list(forcings)} for a model with "
            f"{sfno_cfg.in_channels} input and {sfno_cfg.out_channels} output channels"
        )
    stats = {}
    for name, values in (("mean", mean), ("std", std), ("tendency_std", tendency_std)):
        t = torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()
        if t.numel() != len(channels):
            raise ConfigError(f"normalisation {name} has {t.numel()} values for {len(channels)} channels")
        stats[name] = t
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hens_version": __version__,
        "model_kind": kind,
        "model_config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "channels": channels,
        "grid": sfno_cfg.data_grid.spec,
        "normalisation": stats,
        "seed": int(seed),
        "data_sha256": str(data_sha256),
        "forcings": list(forcings),
        "extra": extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read(path: Path, map_location: str | torch.device, *, mmap: bool = False) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    payload = load_weights_only(
        path, name=str(path), map_location=map_location, mmap=mmap,
        refusal=lambda found: (f"checkpoint {path} needs unpickling of arbitrary Python objects ({found}), which "
                               "hens refuses (torch.load weights_only=True); save plain tensors with "
                               "hens.models.checkpoint.save_checkpoint"),
    )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a hens checkpoint (no format={FORMAT!r} entry)")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    if int(payload["format_version"]) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload['format_version']}; this hens "
            f"({__version__}) reads up to {FORMAT_VERSION}: upgrade hens"
        )
    return payload


@dataclass(frozen=True)
class CheckpointHeader:
    """What a checkpoint says about itself, read without its weights (for planning a run).

    Attributes
    ----------
    path
        The file.
    channels, grid, kind
        Model channels, data grid and model kind (as :class:`Checkpoint`, so
        :mod:`hens.models.compatibility`'s checks take headers too).
    model_config
        The network's config as stored.
    parameter_bytes
        Bytes of its state dict (float32 weights: 4 per parameter).
    tendency_std
        Per-channel 6-hour tendency std (float64), ``None`` for a published package.
    extra
        The checkpoint's plain training metadata (``{}`` for a package).
    """

    path: Path
    channels: tuple[str, ...]
    grid: Grid
    kind: str
    model_config: dict[str, Any]
    parameter_bytes: int
    tendency_std: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stochastic(self) -> bool:
        return self.kind == "stochastic_sfno"



def read_header(path: str | Path) -> CheckpointHeader:
    """Read a checkpoint's description; the weights are memory-mapped, never read.

    A published package's header comes from its ``config.json`` and statistics; its
    parameter bytes are counted from its config (:func:`hens.models.sfno.network.parameter_bytes`).

    Raises
    ------
    CheckpointError
        As :func:`load_checkpoint` for unreadable files and missing keys.
    """
    from hens.models.makani.checkpoint import is_package, package_header

    path = Path(path)
    if is_package(path):
        return package_header(path)
    payload = _read(path, "cpu", mmap=True)
    try:
        state = payload["state_dict"]
        size = sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))
        tendency = torch.as_tensor(payload["normalisation"]["tendency_std"], dtype=torch.float64).flatten()
        return CheckpointHeader(path, tuple(str(c) for c in payload["channels"]), parse_grid(payload["grid"]),
                                str(payload["model_kind"]), dict(payload["model_config"]), int(size),
                                tendency.clone(), dict(payload.get("extra") or {}))
    except (HensError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {path} has an invalid description: {first_line(err)}") from None


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read, validate and build a checkpoint; the model is in eval mode on ``map_location``.

    ``path`` may also be a published SFNO package (a makani package directory or its
    ``.tar``, docs/packages.md): read with weights-only unpickling and run as hens' SFNO in
    the makani layout.

    Raises
    ------
    CheckpointError
        One line for: a missing, truncated or corrupt file; a file that needs arbitrary
        unpickling; missing keys; an unknown model kind or config; weights that do not fit
        the config; statistics that do not fit the channels.
    """
    from hens.models.makani.checkpoint import is_package, package_checkpoint

    path = Path(path)
    if is_package(path):
        return package_checkpoint(path, map_location)
    payload = _read(path, map_location)
    try:
        channels = tuple(str(c) for c in payload["channels"])
        grid = parse_grid(payload["grid"])
        norm = payload["normalisation"]
        stats = {k: torch.as_tensor(norm[k], dtype=torch.float64).flatten() for k in ("mean", "std", "tendency_std")}
        forcings = check_forcings(payload.get("forcings") or ())
        model = build_model(payload["model_kind"], payload["model_config"])
    except (HensError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has an invalid description: {first_line(err)}") from None
    bad = [k for k, v in stats.items() if v.numel() != len(channels)]
    if bad:
        raise CheckpointError(f"checkpoint {path}: normalisation {', '.join(bad)} do not have {len(channels)} values")
    sfno_cfg = network_config(model)
    if not _fits(sfno_cfg, channels, forcings):
        raise CheckpointError(
            f"checkpoint {path}: a model with {sfno_cfg.in_channels} inputs and {sfno_cfg.out_channels} outputs "
            f"does not fit {len(channels)} channels and forcings {list(forcings) or 'none'}"
        )
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {path}: weights do not fit its model config ({first_line(err)})"
        ) from None
    model.to(map_location).eval()
    return Checkpoint(
        path=path,
        kind=payload["model_kind"],
        config=payload["model_config"],
        channels=channels,
        grid=grid,
        mean=stats["mean"],
        std=stats["std"],
        tendency_std=stats["tendency_std"],
        seed=int(payload["seed"]),
        data_sha256=str(payload["data_sha256"]),
        hens_version=str(payload["hens_version"]),
        sha256=file_sha256(path),
        model=model,
        extra=dict(payload.get("extra") or {}),
        forcings=forcings,
    )


def describe(ckpt: Checkpoint) -> str:
    """A few lines about a checkpoint: kind, size, grid, channels, seed, training, hashes."""
    numel = sum(p.numel() for p in ckpt.model.parameters())
    real = sum(p.numel() * (2 if p.is_complex() else 1) for p in ckpt.model.parameters())
    steps = ckpt.extra.get("steps")
    lines = [
        f"{ckpt.path}: {ckpt.kind}, {numel:,} parameters ({real:,} real numbers), hens {ckpt.hens_version}",
        f"  grid      {ckpt.grid.spec}",
        f"  channels  {' '.join(ckpt.channels)}",
        f"  forcings  {' '.join(ckpt.forcings) or 'none'}",
        f"  seed      {ckpt.seed}" + (f", {steps} steps" if steps is not None else ""),
        f"  data      sha256 {ckpt.data_sha256[:16]}...  file sha256 {ckpt.sha256[:16]}...",
    ]
    if ckpt.stochastic:
        lines.append(f"  noise     {ckpt.model.cfg.describe()}")
    return "\n".join(lines)
