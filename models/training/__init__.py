"""``hens train``: fit an SFNO (or a stochastic SFNO) to 6-hour steps of any data source.

One run = one checkpoint; several independent checkpoints come from several seeds.

* Data: all channels of the source by default; the last part of the record is held out
  for validation behind a > 30-day gap (:mod:`hens.models.training.data`), or
  ``train_period``/``valid_period`` choose the blocks; normalisation statistics from the
  training block, accumulated block by block. Batches are read from the source as they are
  needed, the next ones on a background thread, and kept in a cache of ``cache_mb``
  (:mod:`hens.models.training.batches`): memory does not grow with the period.
* Model: :class:`~hens.models.stepper.ModelStep` around an SFNO: z-scored input plus the
  forcing fields of the valid time (``forcings``, default the phase of the year), the network
  predicts the 6-hour increment in units of the per-channel tendency std.
* Loss: area-weighted MSE or the adjusted spectral MSE (``loss="amse"``: no reward for
  damping unpredictable scales) in tendency-std units (deterministic), or almost-fair CRPS
  (alpha 0.95) over ``members`` noise draws per sample, plus ``spectral_weight`` x spectral
  CRPS (stochastic). The last ``rollout_fraction`` of the steps unroll ``rollout`` steps
  (loss averaged over them, gradients through the rollout), at the low end of a cosine
  learning-rate schedule.
* Noise (stochastic): enters as ``injection`` says and is an AR(1) process with decorrelation
  time ``noise_decorrelation_hours``; every sample-member starts from a stationary draw and
  its noise state advances once per unrolled step.
* Reproducible: a run is a pure function of (data, options, seed, number of steps) on a given
  machine and thread count. ``--minutes`` times the first steps and fixes the number of
  steps from it (recorded in the checkpoint; rerun with ``--steps`` to reproduce exactly).
* Distributed: data parallel over torch.distributed (:mod:`hens.models.runtime`); every rank
  draws the same global batch and noise and takes its slice, gradients are averaged, so N
  ranks follow the loss curve of one rank with the same global batch.
* Resumable: ``<out>.resume`` (weights, optimizer, step, RNG states, losses) is written with
  every checkpoint; rerunning the same command continues from it.

Modules: :mod:`~hens.models.training.config` (the options), :mod:`~hens.models.training.run`
(one rank's run state and step), :mod:`~hens.models.training.loop` (``train``),
:mod:`~hens.models.training.budget` (the ``--minutes`` planner),
:mod:`~hens.models.training.schedule` (learning rate), :mod:`~hens.models.training.data` and
:mod:`~hens.models.training.batches` (reading), :mod:`~hens.models.training.losses`,
:mod:`~hens.models.training.periods`, :mod:`~hens.models.training.progress` (bar and loss
curve) and :mod:`~hens.models.training.skill` (scoring a trained checkpoint).
"""

from hens.lazy import lazy_exports

__all__ = ["Run", "TrainConfig", "model_config", "plot_losses", "train"]
__getattr__ = lazy_exports(__name__, {
    "Run": "run", "TrainConfig": "config", "model_config": "config", "plot_losses": "progress", "train": "loop",
})
