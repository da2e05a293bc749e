"""Ensemble metrics, spectra, extremes and plots over xarray."""
