"""hens' spherical Fourier neural operators: transforms and layers, the SFNO, the stochastic
SFNO and its noise.

Modules: :mod:`~hens.models.sfno.layers` (spherical transforms, spectral convolution,
normalisation, MLPs), :mod:`~hens.models.sfno.network` (:class:`SFNO`, :class:`SFNOConfig`),
:mod:`~hens.models.sfno.stochastic` (:class:`StochasticSFNO`) and
:mod:`~hens.models.sfno.noise` (seeded spherical random fields, AR(1) in time).
"""

from hens.lazy import lazy_exports

__all__ = [
    "SFNO", "SFNOBlock", "SFNOConfig", "SphericalNoise", "StochasticSFNO", "StochasticSFNOConfig", "make_generator",
    "parameter_bytes", "parameter_count",
]
__getattr__ = lazy_exports(__name__, {
    "SFNO": "network", "SFNOBlock": "network", "SFNOConfig": "network", "parameter_bytes": "network", "parameter_count": "network",
    "StochasticSFNO": "stochastic", "StochasticSFNOConfig": "stochastic",
    "SphericalNoise": "noise", "make_generator": "noise",
})
