"""The models: SFNO and stochastic SFNO, their training, checkpoints, and the shallow-water world.

Folders: :mod:`~hens.models.sfno` (the networks and their noise), :mod:`~hens.models.training`
(``hens train``), :mod:`~hens.models.shallow_water` (the world behind ``hens world``) and
:mod:`~hens.models.makani` (NVIDIA's published packages). At the top: checkpoints, the
physical-units step of a network, forcing inputs, process setup and the string options.
"""

from hens.lazy import lazy_exports

__all__ = [
    "SFNO", "Checkpoint", "ModelStep", "SFNOConfig", "ShallowWaterWorld", "StochasticSFNO",
    "StochasticSFNOConfig", "TrainConfig", "WorldConfig", "load_checkpoint", "read_header",
    "save_checkpoint", "train",
]
__getattr__ = lazy_exports(__name__, {
    "Checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "read_header": "checkpoint",
    "save_checkpoint": "checkpoint", "ModelStep": "stepper",
    "SFNO": "sfno.network", "SFNOConfig": "sfno.network",
    "StochasticSFNO": "sfno.stochastic", "StochasticSFNOConfig": "sfno.stochastic",
    "TrainConfig": "training.config", "train": "training.loop",
    "ShallowWaterWorld": "shallow_water.solver", "WorldConfig": "shallow_water.config",
})
