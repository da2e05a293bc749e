"""``hens products``: CF-1.11 netCDF forecast products from an ensemble store.

One file per initial time, ``OUT/<store stem>_<YYYYMMDDTHH>.nc``, dims ``time`` (valid time),
``lat``, ``lon`` plus ``quantile`` / ``threshold_quantile`` where needed. Per channel ``c``
(hens names, :mod:`hens.forecast.channels`), from the members completed at that initial
time (``completed`` flag of :mod:`hens.forecast.zarr_sink`):

``c_mean``, ``c_spread``
    Ensemble mean and standard deviation over members (ddof = 1), channel units.
``c_quantile(quantile, ...)``
    Ensemble quantiles (numpy "linear"), channel units.
``c_threshold(threshold_quantile, ...)``, ``c_probability(threshold_quantile, ...)``
    Climatological thresholds Q_clim(level) of the valid time's day-of-year window (channel
    units) and the fraction of members above them (units 1; ``ancillary_variables`` names
    the threshold).
``c_efi``, ``c_sot_upper``, ``c_sot_lower``
    Extreme Forecast Index and Shift of Tails (:mod:`hens.scoring.extremes`), units 1.

Scalar coordinates: the channel's level (``plev500``, Pa, or ``height2m``, m, from the channel
registry) and ``realization``, the reduced member axis (bounds: first and last member used).

The climatology is a statistics store (:mod:`hens.forecast.stats`); by default the one beside
the data the ensemble was started from (``hens_config.data`` in the store's attributes). Its
analysis climate stands in for a model climate in EFI/SOT (as in ``hens score``).

Global attributes: CF ``Conventions``, ``title``, ``institution``, ``source``, ``history``;
``ensemble_size`` and ``ensemble_members`` (half-open runs ``[[start, stop], ...]`` of the
member indices used); every attribute of the store as ``ensemble_<name>`` (its
``hens_config``, ``checkpoints`` with sha256, ``batch_partition``, ``hens_version``, ...),
numbers and text as stored, anything else as JSON text.

Work: one (initial time, channel) at a time, read lazily in latitude bands of all members and
written by dask into a temporary file that is renamed when the initial time is complete, so a
failed run never leaves a half-written product. Memory: per dask thread, a few times one
band of all members (:data:`~hens.scoring.evaluate.store.BAND_BYTES` as stored, computed in
float64), plus whole output fields of one lead chunk.

Modules: :mod:`~hens.pipelines.products.inputs` (the store and the climatology),
:mod:`~hens.pipelines.products.cf` (CF metadata) and :mod:`~hens.pipelines.products.write`
(the products and the files).
"""

from hens.lazy import lazy_exports

__all__ = ["CONVENTIONS", "DDOF", "DEFAULT_QUANTILES", "DEFAULT_THRESHOLDS", "MIN_MEMBERS", "REALIZATION",
           "REALIZATION_BOUNDS", "channel_products", "write_products"]
__getattr__ = lazy_exports(__name__, {
    "CONVENTIONS": "cf", "DDOF": "cf", "REALIZATION": "cf", "REALIZATION_BOUNDS": "cf", "MIN_MEMBERS": "inputs",
    "DEFAULT_QUANTILES": "write", "DEFAULT_THRESHOLDS": "write", "channel_products": "write", "write_products": "write",
})
