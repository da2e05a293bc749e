"""``hens train --init-from CKPT``: start a run from the weights of a trained checkpoint.

A stochastic SFNO fine-tuned from a deterministic one (the demo's recipe, docs/models.md "The
stochastic recipe") starts as that deterministic model: the noise enters through extra input
columns of the encoder and of the big skip, which start at zero, and through conditional
layer norms, which start as plain ones. The CRPS then teaches the network to use the noise
while it keeps the deterministic model's dynamics, which cost four to six times less to learn
per sample than with the CRPS's members (one forward per sample instead of ``--members``).

Every other weight must have the same shape in both networks: same grid, width, blocks,
scale factor and internal layout. The checkpoint must have been trained on the same data and
split (its ``data_sha256``), so that its normalisation is the run's.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hens.forecast.errors import ConfigError
from hens.models.sfno.network import SFNO
from hens.models.sfno.stochastic import StochasticSFNO


def load_initial_weights(model: nn.Module, path: Path, *, data_sha256: str, forcings: tuple[str, ...]) -> None:
    """Load into ``model`` every weight of the checkpoint at ``path``.

    Input columns that the checkpoint lacks (noise channels: the physical and forcing channels
    come first) start at zero; conditioning weights that it lacks (a conditional norm's) keep
    ``model``'s own initial values, which are zero.

    Raises
    ------
    ConfigError
        The checkpoint was trained on other data, or its network does not fit ``model``'s.
    """
    from hens.models.checkpoint import load_checkpoint, network_config

    source = load_checkpoint(path)
    if source.data_sha256 != data_sha256:
        raise ConfigError(f"--init-from {path} was trained on other data or another split than this run")
    if tuple(source.forcings) != tuple(forcings):
        raise ConfigError(f"--init-from {path} reads the forcings {', '.join(source.forcings) or 'none'}, this run "
                          f"{', '.join(forcings) or 'none'}")
    if network_config(source.model) != network_config(model):  # the data's side of both: noise left out
        raise ConfigError(f"--init-from {path} is another network than this run's (grid, width, blocks, scale factor "
                          "or norms differ)")
    target = _sfno(model)
    theirs = _sfno(source.model).state_dict()
    state: dict[str, torch.Tensor] = {}
    for key, value in target.state_dict().items():
        given = theirs.pop(key, None)
        if given is None:  # a conditional norm's noise weights (zero: the plain norm)
            state[key] = value
        elif given.shape == value.shape:
            state[key] = given.to(value.dtype)
        else:  # an input weight: the noise columns start at zero
            grown = torch.zeros_like(value)
            grown[..., : given.shape[-1]] = given
            state[key] = grown
    if theirs:  # e.g. a plain layer norm's affine weights where this run's norm is conditioned on the noise
        raise ConfigError(f"--init-from {path} has weights this run's network has no place for "
                          f"({', '.join(sorted(theirs)[:3])})")
    target.load_state_dict(state)


def _sfno(model: nn.Module) -> SFNO:
    """The SFNO that holds ``model``'s weights (a stochastic SFNO's inner one)."""
    return model.net if isinstance(model, StochasticSFNO) else model
