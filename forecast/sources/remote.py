"""Stores named by fsspec URLs: ``gs://``, ``s3://``, ``https://``, ``file://``, ``memory://``.

A URL stays a URL from the command line or YAML to the reader: xarray and zarr open it
through fsspec, and only Zarr stores are read this way. The cloud backends are the optional
extra ``hens[cloud]`` (gcsfs, s3fs; gcsfs brings aiohttp, which ``https://`` needs). No
storage options are passed, so each backend finds credentials itself (gcsfs and s3fs fall
back to anonymous access, which public buckets allow).
"""

from __future__ import annotations

from pathlib import Path

from hens.forecast.errors import DataError
from hens.forecast.sources.part import first_line

#: files whose presence makes a folder a Zarr store (v2 group, v2 consolidated, v3)
ZARR_METADATA = (".zgroup", ".zmetadata", "zarr.json")
CLOUD_EXTRA = "pip install 'hens[cloud]'"


def is_url(path: str | Path) -> bool:
    """True for ``scheme://...`` text; a :class:`~pathlib.Path` is always local (it would
    collapse ``//`` anyway)."""
    return isinstance(path, str) and "://" in path


def check_store_url(url: str) -> None:
    """Raise a one-line :class:`DataError` unless ``url`` names a Zarr store fsspec can read.

    Tells the user to install ``hens[cloud]`` when the protocol's backend is missing.
    """
    import fsspec

    protocol = url.split("://", 1)[0]
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except ImportError:  # fsspec knows the protocol; its package (gcsfs, s3fs, ...) is absent
        raise DataError(f"{url}: reading {protocol}:// needs a backend that is not installed; "
                        f"{CLOUD_EXTRA}") from None
    except ValueError as err:
        raise DataError(f"{url}: unknown protocol {protocol}:// ({first_line(err)}); hens reads "
                        "local paths and fsspec URLs such as gs://, s3://, https://, file://") from None
    try:
        found = any(fs.exists(f"{root.rstrip('/')}/{name}") for name in ZARR_METADATA)
    except Exception as err:  # network, credentials, permissions: the backend's own words
        raise DataError(f"{url}: cannot reach it ({type(err).__name__}: {first_line(err)})") from err
    if not found:
        raise DataError(f"{url}: no Zarr store there (no {', '.join(ZARR_METADATA)}); "
                        "hens reads remote data as Zarr stores only")
