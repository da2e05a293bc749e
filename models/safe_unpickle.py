"""Read makani checkpoint files without running code from them.

A makani checkpoint (``training_checkpoints/best_ckpt_mp0.tar`` of a model package) is a
``torch.save`` of plain containers and tensors plus one pickled parameter object: a
``makani.utils.YParams.YParams`` (makani v0.1 training saves) or a
``makani.utils.YParams.ParamsBase`` (the Huge Ensembles conversion). torch's weights-only
unpickler refuses both. :func:`load_makani_checkpoint` allows exactly these two names and
maps them to :class:`MakaniParams` / :class:`MakaniYParams`, inert hens classes: the
unpickler creates them with ``object.__new__`` (pickle opcode NEWOBJ) and fills their
``__dict__`` from the pickled state (BUILD); neither class defines ``__setstate__``, so no
method of theirs runs and nothing from the file is called. Every other global (a function a
malicious ``__reduce__`` would call, a class of another library) is refused before it is
looked up, with one :class:`~hens.forecast.errors.CheckpointError` line naming it.

makani is never imported: hens does not depend on it, and importing it would run its code.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import IO, Any

import torch
from hens.forecast.errors import CheckpointError

#: the only globals a makani checkpoint may reference beyond torch's tensor machinery
MAKANI_PARAMS_GLOBALS: tuple[str, ...] = ("makani.utils.YParams.ParamsBase", "makani.utils.YParams.YParams")
#: first bytes of a zip file: torch's default format since 1.6 (the other is the legacy one)
_ZIP_MAGIC = b"PK\x03\x04"


class MakaniParams:
    """Inert stand-in for makani's pickled ``ParamsBase``: its attributes, as plain data.

    No methods at all (read it with :func:`params_dict`): no ``__setstate__``, so torch's
    unpickler only updates ``__dict__`` with state it has already unpickled under its own
    rules, and no pickled attribute can shadow a method hens would call.
    """


class MakaniYParams(MakaniParams):
    """Inert stand-in for makani's pickled ``YParams`` (a ``ParamsBase`` read from YAML)."""


def params_dict(params: MakaniParams) -> dict[str, Any]:
    """makani's parameters as a dict: its ``params`` entries, then attributes set beside them
    (what makani's ``ParamsBase.to_dict`` returns)."""
    state = dict(vars(params))
    inner = state.pop("params", None)
    original = state.pop("_original_attrs", None)
    out = dict(inner) if isinstance(inner, dict) else {}
    skip = set(original) if isinstance(original, list) else set()
    out.update({k: v for k, v in state.items() if k not in skip})
    return out


_STAND_INS: list[tuple[type, str]] = [
    (MakaniParams, MAKANI_PARAMS_GLOBALS[0]),
    (MakaniYParams, MAKANI_PARAMS_GLOBALS[1]),
]


def is_zip_checkpoint(head: bytes) -> bool:
    """Whether a checkpoint whose first bytes are ``head`` is in torch's zip format."""
    return head[: len(_ZIP_MAGIC)] == _ZIP_MAGIC


def load_weights_only(
    source: str | Path | IO[bytes], *, name: str, refusal: Callable[[str], str],
    stand_ins: Sequence[tuple[type, str]] = (), map_location: str | torch.device = "cpu", mmap: bool = False,
) -> Any:
    """``torch.load(weights_only=True)``, every failure turned into one :class:`CheckpointError` line.

    Parameters
    ----------
    source
        Path or seekable binary file (e.g. a tar member) in torch's zip or legacy format.
    name
        How error messages name the file.
    refusal
        The message for a file that needs a global the unpickler refuses, given its name.
    stand_ins
        ``(class, "module.qualname")`` pairs allowed beside torch's own globals.
    map_location, mmap
        As for ``torch.load``.

    Raises
    ------
    CheckpointError
        One line: the file needs another global (``refusal``; nothing was called), or it is
        truncated or corrupt.
    """
    try:
        with torch.serialization.safe_globals(list(stand_ins)):
            return torch.load(source, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        text = str(err)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(refusal(found[1])) from None
        reason = _weights_only_reason(text) or first_line(err)
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt ({reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt ({first_line(err)})") from None


def load_makani_checkpoint(source: str | Path | IO[bytes], *, name: str) -> Any:
    """``torch.load`` a makani checkpoint with the weights-only unpickler and two stand-ins.

    Parameters
    ----------
    source
        Path or seekable binary file (e.g. a tar member) in torch's zip or legacy format.
    name
        How error messages name the file.

    Returns
    -------
    The unpickled object (tensors on the CPU); makani's parameter objects come back as
    :class:`MakaniParams` / :class:`MakaniYParams`.

    Raises
    ------
    CheckpointError
        One line: the file needs another global (named, nothing was called), or it is
        truncated or corrupt.
    """
    return load_weights_only(
        source, name=name, stand_ins=_STAND_INS,
        refusal=lambda found: (f"checkpoint {name} needs unpickling of {found}, which hens refuses (it reads "
                               f"tensors and makani's parameter objects only); nothing from the file was run"),
    )


def _weights_only_reason(text: str) -> str | None:
    # torch wraps the unpickler's own message in paragraphs of advice: keep the message
    found = re.search(r"WeightsUnpickler error: *\n*\s*(.+)", text)
    return found[1].strip()[:200] if found else None


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name."""
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__
