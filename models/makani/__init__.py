"""NVIDIA's published SFNO packages (makani) run as hens models (docs/packages.md).

Modules: :mod:`~hens.models.makani.archive` (finding a package's files in a directory or
tar), :mod:`~hens.models.makani.files` (reading them safely), :mod:`~hens.models.makani.network`
(its config and weights as hens' SFNO), :mod:`~hens.models.makani.static_fields` (static
inputs) and :mod:`~hens.models.makani.checkpoint` (the package as a hens checkpoint).
"""
