"""The shallow-water world: hens' embedded atmosphere, written in the ERA5 layout by ``hens world``.

Modules: :mod:`~hens.models.shallow_water.solver` (:class:`ShallowWaterWorld`, the time
loop), :mod:`~hens.models.shallow_water.forcing` (jet, tracer, seasons, stochastic forcing)
and :mod:`~hens.models.shallow_water.config` (:class:`WorldConfig`, time steps).
"""

from hens.lazy import lazy_exports

__all__ = ["SAVE_INTERVAL_S", "ShallowWaterWorld", "WorldConfig", "WorldState", "default_dt"]
__getattr__ = lazy_exports(__name__, {
    "ShallowWaterWorld": "solver", "WorldState": "solver",
    "SAVE_INTERVAL_S": "config", "WorldConfig": "config", "default_dt": "config",
})
