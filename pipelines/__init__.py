"""Workflows and the ``hens`` command line."""
