"""The ensemble config: YAML parsing, defaults, one-line errors for every kind of mistake."""

from __future__ import annotations

import numpy as np
import pytest

from hens.forecast.errors import ConfigError
from hens.pipelines.forecast.config import PerturbationConfig, load_config, parse_config
from hens.pipelines.schema import Schema, validate


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "world.zarr").mkdir()
    for name in ("ck0.pt", "ck1.pt"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def _values(**overrides):
    values = {"data": "world.zarr", "output": "ens.zarr", "init_times": ["2001-03-08T00", "2001-03-01T00"],
              "lead_hours": 240, "models": ["ck0.pt", "ck1.pt"],
              "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 8, "cycles": 3, "amplitude": 0.35},
              "seeds": 2, "batch_size": 16, "seed": 0}
    values.update(overrides)
    return values


def test_the_documented_example_parses(folder):
    (folder / "ens.yaml").write_text(
        "data: world.zarr\noutput: ens.zarr\ninit_times: [\"2001-03-01T00\", 2001-03-08]\nlead_hours: 240\n"
        "models: [ck0.pt, ck1.pt]\n"
        "perturbation: {kind: hemispheric_bred_vector, pairs: 8, cycles: 3, amplitude: 0.35}\n"
        "seeds: 2\nbatch_size: 16\nseed: 0\n"
    )
    cfg = load_config(folder / "ens.yaml")
    assert cfg.init_times == (np.datetime64("2001-03-01T00", "ns"), np.datetime64("2001-03-08T00", "ns"))
    assert cfg.model_paths == (folder / "ck0.pt", folder / "ck1.pt") and cfg.output_path == folder / "ens.zarr"
    assert cfg.perturbation == PerturbationConfig(pairs=8) and cfg.lead_steps[-1] == 240 and len(cfg.lead_steps) == 41
    assert cfg.to_dict()["init_times"] == ["2001-03-01T00", "2001-03-08T00"]
    assert cfg.to_dict()["models"] == ["ck0.pt", "ck1.pt"] and cfg.threads == 1


def test_remote_data_is_passed_through_unchecked(folder):
    url = "gs://weatherbench2/datasets/era5/1959-2023_01_10-wb13-6h-1440x721_with_derived_variables.zarr"
    cfg = parse_config(_values(data=url), base_dir=folder)
    assert cfg.data_paths == url
    assert parse_config(_values(data=[url, "world.zarr"]), base_dir=folder).data_paths == [url, str(folder / "world.zarr")]


def test_physics_needs_no_checkpoint(folder):
    cfg = parse_config(_values(models=["physics"]), base_dir=folder)
    assert cfg.physics and cfg.model_paths == ()


@pytest.mark.parametrize("overrides, message", [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"perturbation": {"kind": "bred_vector", "pairz": 2}}, "perturbation: unknown key 'pairz'; allowed: kind, pairs"),
    ({"perturbation": {"kind": "lagged"}}, "perturbation.kind: 'lagged' is not one of none, gaussian"),
    ({"perturbation": {"amplitude": float("nan")}}, "perturbation.amplitude: must be a positive number"),
    ({"perturbation": {"pairs": 0}}, "perturbation.pairs: must be an integer >= 1"),
    ({"perturbation": "bred"}, "perturbation: must be a mapping"),
    ({"lead_hours": 25}, "multiple of 6"),
    ({"lead_hours": True}, "lead_hours: must be a positive integer multiple of 6, got True"),
    ({"init_times": ["2001-03-01T03"]}, "not at 00, 06, 12 or 18 UTC"),
    ({"init_times": ["March"]}, "cannot read 'March'"),
    ({"init_times": ["2001-03-01T00", "2001-03-01T00"]}, "twice"),
    ({"init_times": []}, "non-empty list"),
    ({"seeds": 0}, "seeds: must be an integer >= 1"),
    ({"seed": -1}, "seed: must be an integer >= 0"),
    ({"batch_size": 2.5}, "batch_size: must be an integer"),
    ({"models": ["ck0.pt", "missing.pt"]}, "models: checkpoint missing.pt does not exist"),
    ({"models": ["ck0.pt", "ck0.pt"]}, "twice"),
    ({"models": ["physics", "ck0.pt"]}, "do not mix"),
    ({"models": []}, "models: must be a path or a non-empty list"),
    ({"data": "nowhere.zarr"}, "data: 'nowhere.zarr' does not exist"),
    ({"output": "no/such/folder/ens.zarr"}, "output: the folder of .*ens.zarr does not exist"),
    ({"output": "world.zarr"}, "output: world.zarr is also an input"),
])
def test_mistakes_are_one_line_config_errors(folder, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_config(_values(**overrides), base_dir=folder)
    assert "\n" not in str(err.value)


def test_missing_key_and_non_mapping(folder):
    values = _values()
    del values["models"]
    with pytest.raises(ConfigError, match="models: missing from the config"):
        parse_config(values, base_dir=folder)
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config(["data"], base_dir=folder)


def test_errors_name_the_dotted_path_with_list_indices():
    class Runs(Schema):
        perturbations: list[PerturbationConfig]

    with pytest.raises(ConfigError, match=r"^perturbations\[1\]\.pairs: must be an integer >= 1, got 0$"):
        validate(Runs, {"perturbations": [{}, {"pairs": 0}]}, where="runs.yaml")
    with pytest.raises(ConfigError, match=r"^perturbations: missing from runs.yaml$"):
        validate(Runs, {}, where="runs.yaml")


@pytest.mark.parametrize("text, message", [
    ("data: [world.zarr\n", r"bad YAML in .*ens.yaml line \d+, column \d+"),
    ("data: world.zarr\n  output: x\n", "bad YAML in .*ens.yaml line 2, column 9: mapping values"),
    ("", "must be a mapping"),
])
def test_bad_yaml_is_one_line(folder, text, message):
    (folder / "ens.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(folder / "ens.yaml")
    assert "\n" not in str(err.value)
