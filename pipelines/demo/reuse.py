"""Whether a product of ``hens demo`` can be reused: it must have been made by what would make
it now, read from the product itself.

* A checkpoint records its ``hens train`` options and budget (``extra["options"]``).
* An ensemble store records its configuration (``hens_config``) and the sha256 of each
  checkpoint file it ran (``checkpoints``).
* A score store (attribute) and the products folder (``made_from.json``) record
  :func:`store_key` of the ensemble they were made from.
* A calibrated ensemble YAML has its :func:`calibration_key` beside it
  (``<name>.calibration.json``): the draft YAML, its checkpoint files, the options.

A product made otherwise is rebuilt, and so is everything made from it: new checkpoints
change the ensemble store's ``checkpoints``, a new store changes its key.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np

#: what the demo does with a training run's checkpoint
CheckpointState = Literal["reuse", "resume", "stale", "train"]
_MADE_FROM = "made_from"
_RECORD = "made_from.json"  # in a folder of products


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples -> lists), for comparisons."""
    return json.loads(json.dumps(value, default=str))


def checkpoint_state(values: dict[str, Any]) -> CheckpointState:
    """What to do with the checkpoint of the training run ``values`` (TrainConfig fields).

    ``reuse``: finished with these options; ``resume``: interrupted with these options;
    ``stale``: made with other options (or by a hens that did not record them);
    ``train``: none yet. The data path is left out: the demo checks its world itself.
    """
    from hens.models.checkpoint import load_checkpoint
    from hens.models.training.config import TrainConfig

    path = Path(values["out"])
    if not path.exists():
        return "train"
    want = _plain(TrainConfig(**values).options())
    have = _plain(load_checkpoint(path).extra.get("options"))
    if not isinstance(have, dict) or {k: v for k, v in have.items() if k != "data"} != {
            k: v for k, v in want.items() if k != "data"}:
        return "stale"
    return "resume" if path.with_name(path.name + ".resume").exists() else "reuse"


def _attrs(store: Path) -> dict[str, Any]:
    import zarr

    return dict(zarr.open_group(store, mode="r").attrs)


def _decoded(attrs: dict[str, Any], key: str) -> Any:
    """An attribute that the store writer keeps as a JSON string (mappings and lists)."""
    value = attrs.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def finished(store: Path) -> bool:
    """An ensemble store whose run reached its end (``finalize`` wrote ``wall_seconds``)."""
    import zarr

    if not store.exists():
        return False
    group = zarr.open_group(store, mode="r")
    return "wall_seconds" in group.attrs and bool(np.asarray(group["completed"][...]).all())


def stale_store(store: Path, config: Path) -> bool:
    """Whether ``store`` exists but was made by another configuration or other checkpoint files.

    A store not declared yet (its run stopped while breeding) is not stale: resuming it
    checks the same things.
    """
    from hens.models.checkpoint import file_sha256
    from hens.pipelines.forecast.config import load_config

    if not store.exists():
        return False
    try:
        attrs = _attrs(store)
    except Exception:  # noqa: BLE001 - no group metadata yet: nothing to compare
        return False
    if "hens_config" not in attrs:
        return False
    cfg = load_config(config)
    if _plain(_decoded(attrs, "hens_config")) != _plain(cfg.to_dict()):
        return True
    paths = [config.parent / m for m in cfg.models if m != "physics"]
    now = [file_sha256(p) if p.exists() else None for p in paths]
    return [r.get("sha256") for r in _decoded(attrs, "checkpoints") or []][: len(now)] != now


def calibration_key(draft: Path, options: dict[str, Any]) -> str:
    """What a calibrated YAML is made from, as a sha256: the draft's text, the sha256 of its
    checkpoint files and the calibration options (new checkpoints need a new amplitude)."""
    from hens.models.checkpoint import description_sha256, file_sha256
    from hens.pipelines.forecast.config import load_config

    files = [file_sha256(p) for p in load_config(draft).model_paths if p.is_file()]
    return description_sha256({"draft": draft.read_text(), "checkpoints": files, "options": options})


def _calibration_record(config: Path) -> Path:
    return config.with_name(f"{config.stem}.calibration.json")


def calibrated(config: Path, key: str) -> bool:
    """Whether ``config`` was calibrated from what :func:`calibration_key` gave ``key``."""
    record = _calibration_record(config)
    return config.exists() and record.exists() and json.loads(record.read_text()).get(_MADE_FROM) == key


def record_calibration(config: Path, key: str) -> None:
    """Record that ``config`` was calibrated from what gave ``key`` (after writing it)."""
    _calibration_record(config).write_text(json.dumps({_MADE_FROM: key}))


def store_key(store: Path) -> str:
    """What made an ensemble store, as a sha256: its configuration and checkpoint files."""
    from hens.models.checkpoint import description_sha256

    attrs = _attrs(store)
    return description_sha256({k: _decoded(attrs, k) for k in ("hens_config", "checkpoints")})


def made_from(path: Path) -> str | None:
    """The key recorded by :func:`record_made_from` in a score store or a products folder."""
    if not path.exists():
        return None
    record = path / _RECORD
    if record.exists():
        return str(json.loads(record.read_text()).get(_MADE_FROM))
    try:
        value = _attrs(path).get(_MADE_FROM)
    except Exception:  # noqa: BLE001 - not a store: made by something else, rebuild it
        return None
    return None if value is None else str(value)


def record_made_from(path: Path, key: str) -> None:
    """Record ``key`` in the Zarr store (attribute) or folder (``made_from.json``) ``path``."""
    import zarr

    if (path / "zarr.json").exists() or (path / ".zgroup").exists():
        zarr.open_group(path, mode="r+").attrs[_MADE_FROM] = key
    else:
        (path / _RECORD).write_text(json.dumps({_MADE_FROM: key}))


def remove(path: Path) -> None:
    """Delete a stale product (a store or a folder), if present."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
