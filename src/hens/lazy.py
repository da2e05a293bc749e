"""Lazy re-exports: a package names its public objects without importing their modules.

hens' package ``__init__`` files re-export the names users import (``hens.models.sfno.SFNO``)
from the modules that define them; importing the package stays as cheap as before (no torch,
xarray or pydantic until a name is used).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<module>`` on first use of a name.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> the submodule (relative to ``package``) that defines it.

    Returns
    -------
    Callable
        To assign to the package's ``__getattr__`` (PEP 562).
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
