"""String options of the model code, defined once.

Every string option is a :data:`typing.Literal` alias; public functions and config
dataclasses check it on entry with :func:`hens.forecast.types.check_choice`, which raises
:class:`hens.forecast.errors.ConfigError` naming the allowed values.
"""

from __future__ import annotations

from typing import Literal

#: ensemble CRPS estimator: empirical-CDF ("standard"), unbiased ("fair"), AIFS "almost_fair"
CRPSKind = Literal["standard", "fair", "almost_fair"]
#: deterministic training loss: area-weighted MSE, or the adjusted spectral MSE (no blurring incentive)
DeterministicLoss = Literal["mse", "amse"]
#: position embedding added after the SFNO encoder
PosEmbed = Literal["none", "learnable lat", "learnable latlon"]
#: normalisation after each spectral convolution (on channels, per grid point, or per field)
BlockNorm = Literal["none", "layer", "instance"]
#: skip connections around the spectral convolution (inner) and the whole block (outer)
Skip = Literal["none", "identity", "linear"]
#: order inside an SFNO block: hens' (conv -> norm [+ inner skip] -> MLP [+ outer skip]) or makani's
#: (conv -> norm0 -> activation -> MLP with biased output -> norm1 [+ outer skip]), as the published packages
BlockLayout = Literal["hens", "makani"]
#: point-wise non-linearity
Activation = Literal["gelu", "silu"]
#: where the stochastic SFNO's noise enters: input channels, conditional layer norms, both
NoiseInjection = Literal["input", "norm", "both"]
#: model kinds a checkpoint can hold
ModelKind = Literal["sfno", "stochastic_sfno"]
#: checkpoint style of a makani model package: makani v0.1 training save (torch zip file,
#: ``module.`` prefix) or the Huge Ensembles conversion (torch's legacy file, no prefix)
PackageStyle = Literal["makani-v0.1", "hens-conversion"]
#: longitude transform of the SHT: dense DFT matrix, torch.fft, or chosen per (device, nlon)
LonTransform = Literal["auto", "dft", "rfft"]
#: arithmetic of an ensemble step: float32, or autocast to bfloat16 / float16 (transforms stay float32)
Precision = Literal["float32", "bfloat16", "float16"]

#: what a network predicts: the increment in tendency-std units (hens) or the normalised state (packages)
StepOutput = Literal["increment", "state"]
