"""Area weights and the weighted mean shared by all scores."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hens.forecast.errors import DataError, GridMismatch
from hens.forecast.grids import Grid
from hens.scoring import area_weights, weighted_mean


@pytest.mark.parametrize(
    "grid", [Grid(8, 16), Grid(9, 16, "equiangular"), Grid(8, 16, "equiangular-nopoles")]
)
def test_area_weights_follow_coordinate_values(grid):
    lat = xr.DataArray(grid.lat, dims="lat", coords={"lat": grid.lat})
    w = area_weights(lat, xr.DataArray(grid.lon, dims="lon"))
    np.testing.assert_allclose(w.values, grid.area_weights)
    assert w.mean() == pytest.approx(1.0)
    ascending = area_weights(lat.sortby("lat"))  # zonal data: no lon needed
    np.testing.assert_allclose(ascending.values, grid.area_weights[::-1])
    assert grid.kind in w.attrs["weights"]
    # the quadrature integrates sin^2(lat) to its area mean 1/3 (exact for the Gauss rule)
    f = xr.DataArray(np.sin(np.radians(grid.lat)) ** 2, dims="lat", coords={"lat": grid.lat})
    tol = 1e-12 if grid.kind != "equiangular-nopoles" else 2e-2
    assert float(weighted_mean(f, "lat")) == pytest.approx(1 / 3, abs=tol)


def test_weighted_mean_dims_nan_and_explicit_weights():
    grid = Grid(4, 8)
    values = np.arange(2 * 4 * 8, dtype=float).reshape(2, 4, 8)
    da = xr.DataArray(
        values, dims=("time", "lat", "lon"), coords={"lat": grid.lat, "lon": grid.lon}
    )
    assert weighted_mean(da, None) is da
    w = grid.area_weights[None, :, None]
    np.testing.assert_allclose(
        weighted_mean(da, ["lat", "lon"]).values, (values * w).sum((1, 2)) / (w.sum() * 8)
    )
    np.testing.assert_allclose(weighted_mean(da, "time").values, values.mean(0))
    assert weighted_mean(da, "time").attrs["weights"] == "equal"
    holed = da.where(da != 5)
    assert np.isnan(weighted_mean(holed, ["lat", "lon"]).values[0])
    skipped = weighted_mean(holed, ["lat", "lon"], skipna=True).values[0]
    ok = values[0] != 5
    assert skipped == pytest.approx(
        (values[0] * w[0] * ok).sum() / (np.broadcast_to(w[0], ok.shape) * ok).sum()
    )
    mask = xr.DataArray(
        np.ones((4, 8)), dims=("lat", "lon"), coords={"lat": grid.lat, "lon": grid.lon}
    )
    mask[:, :4] = 0  # only the eastern half
    east = weighted_mean(da, ["lat", "lon"], weights=mask)
    np.testing.assert_allclose(east.values, values[:, :, 4:].mean((1, 2)))
    assert east.attrs["weights"] == "explicit"


def test_errors_name_the_problem():
    grid = Grid(4, 8)
    da = xr.DataArray(
        np.zeros((4, 8)), dims=("lat", "lon"), coords={"lat": grid.lat, "lon": grid.lon}
    )
    with pytest.raises(DataError, match="not a dim"):
        weighted_mean(da, "time")
    with pytest.raises(DataError, match="coordinates differ"):
        weighted_mean(
            da, "lat", weights=xr.DataArray(np.ones(4), dims="lat", coords={"lat": grid.lat + 1})
        )
    with pytest.raises(DataError, match="fillna"):
        weighted_mean(
            da,
            "lat",
            weights=xr.DataArray([1.0, np.nan, 1.0, 1.0], dims="lat", coords={"lat": grid.lat}),
        )
    with pytest.raises(DataError, match="lacks"):
        weighted_mean(da, "lat", weights=xr.DataArray(np.ones(3), dims="level"))
    odd = da.assign_coords(lat=np.linspace(80, -80, 4))
    with pytest.raises(GridMismatch, match="unknown"):
        weighted_mean(odd, ["lat", "lon"])
    weighted_mean(
        odd,
        ["lat", "lon"],
        weights=xr.DataArray(np.cos(np.radians(odd.lat)), coords={"lat": odd.lat}),
    )
