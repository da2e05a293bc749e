"""A damaged chunk of a real ensemble store, of either format, is found and named."""

from __future__ import annotations

import shutil

import pytest
from test_store_reader import _format1_copy

from hens.forecast.errors import DataError
from hens.forecast.store_check import reading, unreadable_chunk
from hens.scoring.evaluate.score import score_ensemble

# (format, damaged file, its array, a selection that excludes it)
CASES = [
    (2, "fields/c/1/2/1/0/0/0", "fields", {"lead_time": slice(0, 3)}),  # lead_chunk 3: leads 3, 4
    (2, "completed/c/2/3", "completed", {"init_time": slice(0, 2)}),
    (1, "t2m/2.1.1.0.0", "t2m", {"member": slice(0, 4)}),  # chunk (init 2, batch 1, leads 3, 4)
    (1, "completed/0.3", "completed", {"member": slice(4, 12)}),
]


def _store(score_inputs, folder, store_format):
    path = folder / "ens.zarr"
    if store_format == 1:
        return _format1_copy(score_inputs["calibrated"], path)
    return shutil.copytree(score_inputs["calibrated"], path)


@pytest.mark.parametrize("store_format, key, array, elsewhere", CASES)
def test_the_damaged_chunk_and_only_it_is_named(score_inputs, tmp_path, store_format, key, array, elsewhere):
    path = _store(score_inputs, tmp_path, store_format)
    assert unreadable_chunk(path, array) is None
    assert (path / key).is_file()
    (path / key).write_bytes(b"not a chunk")
    found, reason = unreadable_chunk(path, array)
    assert found == key and reason.split(":")[0].endswith("Error")
    assert unreadable_chunk(path, array, elsewhere) is None


@pytest.mark.parametrize("store_format, key", [(2, "fields/c/0/3/0/0/0/0"), (1, "z500/0.3.0.0.0")])
def test_scoring_a_damaged_store_names_store_array_and_chunk(score_inputs, tmp_path, store_format, key):
    path = _store(score_inputs, tmp_path, store_format)
    (path / key).write_bytes(b"\0" * 100)
    out = tmp_path / "scores.zarr"
    with pytest.raises(DataError) as err:
        score_ensemble(path, score_inputs["truth"], out=out, progress=False)
    array = key.split("/")[0]
    assert str(err.value).startswith(f"{path}: array {array}, chunk {key} is unreadable (")
    fix = "flag file completed/c/0/3, then rerun `hens forecast CONFIG --resume`" if store_format == 2 else "--overwrite"
    assert fix in str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".scores.zarr*"))


def test_a_failure_that_no_chunk_explains_propagates_unchanged(score_inputs):
    with pytest.raises(KeyError, match="not damage"), reading(score_inputs["calibrated"], "z500"):
        raise KeyError("not damage")
