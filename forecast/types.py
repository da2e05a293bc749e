"""String options of the forecast code, defined once (``Literal`` aliases, torch-free), and
:func:`check_choice`, the one check of a string option that every hens package uses.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np

from hens.forecast.errors import ConfigError

#: hours of one model step (every hens model and the world's stores step 6-hourly)
HOURS_PER_STEP = 6
#: the same step as a numpy duration, for time arithmetic on ``datetime64`` arrays
STEP = np.timedelta64(HOURS_PER_STEP, "h")
#: model steps in a day
STEPS_PER_DAY = 24 // HOURS_PER_STEP

#: initial-condition perturbation kinds (:mod:`hens.forecast.perturb`)
PerturbationKind = Literal["none", "gaussian", "bred_vector", "hemispheric_bred_vector"]
PERTURBATION_KINDS: tuple[str, ...] = get_args(PerturbationKind)

#: what ``hens calibrate`` tunes: the perturbation's amplitude or a stochastic model's noise_scale
TunedParameter = Literal["amplitude", "noise_scale"]


def check_choice(name: str, value: Any, alias: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of the ``Literal`` ``alias`` values.

    Parameters
    ----------
    name
        Name of the option, as the user wrote it (for the message).
    value
        The value given.
    alias
        A :data:`typing.Literal` alias listing the allowed values.

    Raises
    ------
    ConfigError
        Naming the option and the allowed values.
    """
    allowed = get_args(alias)
    if value not in allowed:
        raise ConfigError(
            f"{name}={value!r} is not an option; use one of {', '.join(map(repr, allowed))}"
        )
