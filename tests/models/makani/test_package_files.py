"""makani packages: layout detection, safe reading of both checkpoint styles, one-line errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickletools
import shutil
import tarfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from hens.forecast.errors import CheckpointError
from hens.forecast.grids import Grid
from hens.models.makani.archive import CHECKPOINT, is_package
from hens.models.makani.files import read_package
from hens.models.safe_unpickle import (
    MakaniParams,
    MakaniYParams,
    load_makani_checkpoint,
    params_dict,
)
from package_builders import (
    CHANNELS_73,
    SMALL_CHANNELS,
    ParamsBase,
    fake_makani,
    make_params,
    static_fields,
    tar_package,
    weight_shapes,
    write_package,
)

torch.set_num_threads(1)
STYLES = ("makani-v0.1", "hens-conversion")
HENS_SMALL = ("u10m", "v10m", "t2m", "d2m", "msl", "z500", "q850")


@pytest.fixture(scope="module", params=STYLES)
def package(request, tmp_path_factory) -> Path:
    return write_package(tmp_path_factory.mktemp("pkg") / "sfno", style=request.param)


def _as(container: str, folder: Path, tmp_path: Path) -> Path:
    if container == "folder":
        return folder
    return tar_package(folder, tmp_path / f"{container}.tar", top_folder=container == "tar-in-folder")


@pytest.mark.parametrize("container", ["folder", "tar-in-folder", "tar-flat"])
def test_reads_both_styles_in_every_container(package, container, tmp_path):
    path = _as(container, package, tmp_path)
    assert is_package(path)
    pkg = read_package(path)
    config = json.loads((package / "config.json").read_text())
    assert pkg.path == path
    assert pkg.style == ("makani-v0.1" if zipfile.is_zipfile(package / CHECKPOINT) else "hens-conversion")
    assert pkg.params == config | {"min_path": None}  # makani reads the string "None" as None
    assert pkg.channels == HENS_SMALL and pkg.grid == Grid(9, 16, "equiangular") and pkg.step_hours == 6
    assert pkg.extras == ("xzen", "xsgrlat1", "xsgrlon1", "xsgrlat2", "xsgrlon2", "xoro", "xlsml", "xlsms")
    assert pkg.weights_sha256 == hashlib.sha256((package / CHECKPOINT).read_bytes()).hexdigest()
    expected = weight_shapes(channels=7, embed_dim=8, num_layers=2, nlat=9, scale_factor=2, grid_num_frequencies=2)
    assert {k: tuple(v.shape) for k, v in pkg.state_dict.items()} == expected  # no "module." prefix
    assert pkg.state_dict["model.blocks.1.filter.filter.weight"].dtype == torch.complex64
    mean, std = np.load(package / "global_means.npy"), np.load(package / "global_stds.npy")
    np.testing.assert_array_equal(pkg.mean, mean.ravel().astype(np.float64))
    np.testing.assert_array_equal(pkg.std, std.ravel().astype(np.float64))
    assert pkg.mean.dtype == np.float64 and pkg.mean.shape == (7,)
    z, lsm = static_fields(9, 16)
    np.testing.assert_allclose(pkg.orography, z.astype(np.float32), rtol=0, atol=0)  # north (high) first
    np.testing.assert_array_equal(pkg.land_mask, lsm.astype(np.float32))
    assert pkg.land_mask[0].min() == 1.0 and pkg.orography.shape == pkg.grid.shape


def test_checkpoint_styles_pickle_the_params_classes_by_their_makani_names(package):
    raw = (package / CHECKPOINT).read_bytes()
    pickles = 4  # legacy format: magic number, protocol, system info, then the object
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            raw, pickles = z.read(next(n for n in z.namelist() if n.endswith("data.pkl"))), 1
    stream = io.BytesIO(raw)
    ops = [(op.name, arg) for _ in range(pickles) for op, arg, _ in pickletools.genops(stream)]
    globals_ = {arg for name, arg in ops if name == "GLOBAL"}
    assert {"makani.utils.YParams YParams", "makani.utils.YParams ParamsBase"} & globals_
    assert ("NEWOBJ", None) in ops and ("BUILD", None) in ops  # protocol 2: no copyreg._reconstructor
    payload = load_makani_checkpoint(package / CHECKPOINT, name="ckpt")
    params = payload["params"]
    assert type(params) in (MakaniParams, MakaniYParams)
    public = {k: v for k, v in params_dict(params).items() if not k.startswith("_")}  # _yaml_filename...
    assert public == json.loads((package / "config.json").read_text())
    zip_style = zipfile.is_zipfile(package / CHECKPOINT)
    assert (type(params) is MakaniYParams) == zip_style
    assert all(k.startswith("module.") for k in payload["model_state"]) == zip_style


def test_stand_ins_run_nothing():
    # no method torch's unpickler would call (BUILD uses __setstate__ if present)
    for cls in (MakaniParams, MakaniYParams):
        assert not hasattr(cls, "__setstate__") and cls.__init__ is object.__init__
        assert cls.__new__ is object.__new__ and not hasattr(cls, "__getattr__")


def test_hens_equiangular_grid_is_makanis():
    grid = Grid(721, 1440, "equiangular")
    np.testing.assert_allclose(grid.lat, np.linspace(90.0, -90.0, 721), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grid.lon, np.linspace(0.0, 360.0, 1440, endpoint=False), rtol=0, atol=1e-12)


def test_statistics_pick_in_channels_of_the_dataset(tmp_path):
    data = ("z500", "t2m", "sp", "u10m", "v10m", "2d", "msl", "tcwv", "q850", "u100m")
    path = write_package(tmp_path / "p", channels=SMALL_CHANNELS, data_channels=data)
    pkg = read_package(path)
    index = [data.index(c) for c in SMALL_CHANNELS]
    np.testing.assert_array_equal(pkg.mean, np.load(path / "global_means.npy")[0, index, 0, 0])
    np.testing.assert_array_equal(pkg.std, np.load(path / "global_stds.npy")[0, index, 0, 0])


def test_published_channel_names_map_to_hens_names(tmp_path):
    pkg = read_package(write_package(tmp_path / "p", channels=(*CHANNELS_73, "2d"), embed_dim=4, num_layers=1))
    assert pkg.channels[:8] == ("u10m", "v10m", "u100m", "v100m", "t2m", "sp", "msl", "tcwv")
    assert pkg.channels[-1] == "d2m" and "q1000" in pkg.channels and len(pkg.channels) == 74


def test_filters_with_a_group_dimension_are_read_as_published(tmp_path):
    path = write_package(tmp_path / "p", style="hens-conversion")
    payload = load_makani_checkpoint(path / CHECKPOINT, name="x")
    state = OrderedDict((k, v.unsqueeze(0) if k.endswith("filter.filter.weight") else v)
                        for k, v in payload["model_state"].items())
    with fake_makani():
        torch.save({"model_state": state, "params": make_params(ParamsBase, {})}, path / CHECKPOINT)
    assert read_package(path).state_dict["model.blocks.0.filter.filter.weight"].shape == (8, 8, 4)


def test_is_package_by_layout(tmp_path, package):
    assert not is_package(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert not is_package(tmp_path / "empty")
    (tmp_path / "file.tar").write_bytes(b"not a tar")
    assert not is_package(tmp_path / "file.tar")
    partial = shutil.copytree(package, tmp_path / "partial")
    (partial / CHECKPOINT).unlink()
    assert not is_package(partial) and not is_package(tar_package(partial, tmp_path / "partial.tar"))
    with pytest.raises(CheckpointError, match="is not a makani package") as err:
        read_package(partial)
    assert "\n" not in str(err.value)


def test_tar_members_are_read_in_place_never_extracted(tmp_path, package):
    out = tmp_path / "evil.tar"
    shutil.copy(tar_package(package, tmp_path / "ok.tar", top_folder=False), out)
    with tarfile.open(out, "a") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        read_package(out)
    finally:
        os.chdir(cwd)
    assert not list(tmp_path.parent.parent.glob("escaped.txt")) and not (tmp_path / "escaped.txt").exists()
    # a link member is not a file of the package
    linked = tmp_path / "linked.tar"
    with tarfile.open(linked, "w") as tar:
        for item in sorted(package.iterdir()):
            if item.name != "global_means.npy":
                tar.add(item, arcname=item.name)
        link = tarfile.TarInfo("global_means.npy")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(CheckpointError, match="lacks global_means.npy"):
        read_package(linked)


class Evil:
    """Unpickling this calls ``target`` (a file-creating function) with ``args``."""

    def __init__(self, target, args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("how", ["os.system", "open"])
def test_malicious_pickle_is_refused_before_it_runs(tmp_path, package, legacy, how):
    path = shutil.copytree(package, tmp_path / "p")
    target = tmp_path / "pwned"
    evil = Evil(os.system, (f"touch {target}",)) if how == "os.system" else Evil(open, (str(target), "w"))
    with fake_makani():
        payload = {"model_state": {}, "params": make_params(ParamsBase, {"hook": evil})}
        torch.save(payload, path / CHECKPOINT, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError) as err:
        read_package(path)
    message = str(err.value)
    assert not target.exists()
    assert "\n" not in message and str(path / CHECKPOINT) in message
    assert ("posix.system" if how == "os.system" else "open") in message and "refuses" in message


def test_other_classes_are_refused(tmp_path, package):
    path = shutil.copytree(package, tmp_path / "p")
    torch.save({"model_state": {}, "params": argparse_namespace()}, path / CHECKPOINT)
    with pytest.raises(CheckpointError, match=r"needs unpickling of argparse\.Namespace"):
        read_package(path)


def argparse_namespace():
    import argparse

    return argparse.Namespace(lr=1e-3)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_config(path: Path, **changes) -> None:
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def _wrong_orography(path: Path) -> None:
    from package_builders import _write_static

    _write_static(path / "orography.nc", "Z", np.zeros((5, 8)), "Geopotential")


BROKEN = {
    "no means": (lambda p: (p / "global_means.npy").unlink(), "lacks global_means.npy"),
    "truncated checkpoint": (lambda p: _truncate(p / CHECKPOINT), "is truncated or corrupt"),
    "truncated means": (lambda p: _truncate(p / "global_means.npy"), "global_means.npy is truncated or corrupt"),
    "corrupt config": (lambda p: (p / "config.json").write_text("{"), "config.json is not valid JSON"),
    "means count": (lambda p: np.save(p / "global_stds.npy", np.ones((1, 5, 1, 1))), "in_channels [0, 1, 2, 3, 4, 5, 6] do not pick 7"),
    "means shape": (lambda p: np.save(p / "global_means.npy", np.ones(7)), "has shape (7,), expected (1, C, 1, 1)"),
    "orography grid": (_wrong_orography, "Z is on a 5x8 grid, the package's is 9x16:equiangular"),
    "unknown channels": (lambda p: _edit_config(p, channel_names=["u10m", "r500", "foo", "t2m", "2d", "msl", "z500"]),
                         "unknown makani channel(s) r500, foo"),
    "input count": (lambda p: _edit_config(p, N_in_channels=110), "N_in_channels is 110"),
    "embed": (lambda p: _edit_config(p, embed_dim=16), "model.encoder.fwd.0.weight is [8, 15, 1, 1], config.json implies [16, 15, 1, 1]"),
    "no step": (lambda p: _edit_config(p, dhours=None), "lacks dhours"),
    "lat order": (lambda p: _edit_config(p, lat=list(np.linspace(-90, 90, 9))), "latitudes/longitudes differ"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_packages_fail_with_one_line_naming_the_file(tmp_path, package, case):
    path = shutil.copytree(package, tmp_path / "p")
    edit, message = BROKEN[case]
    edit(path)
    with pytest.raises(CheckpointError) as err:
        read_package(path)
    text = str(err.value)
    assert message in text and "\n" not in text and str(path) in text, text


def test_cli_describes_packages_and_checks_them_as_one_ensemble(tmp_path, hens_cli):
    def hens(*args: object) -> tuple[int, str, str]:
        return hens_cli("checkpoint", *args)

    a = write_package(tmp_path / "a", style="makani-v0.1")
    b = tar_package(write_package(tmp_path / "b", style="hens-conversion", seed=1), tmp_path / "b.tar")
    code, out, err = hens(a, b)
    assert code == 0, err
    sha = hashlib.sha256((a / CHECKPOINT).read_bytes()).hexdigest()
    for text in ("makani package (makani-v0.1)", "makani package (hens-conversion)", "embed 8, 2 layers",
                 "scale factor 2", "lmax = mmax = 4", "9x16:equiangular", "t2m d2m msl", "step      6 h",
                 "cos zenith, 4 grid channels, orography, land mask (2 channels)", sha):
        assert text in out, (text, out)
    other = write_package(tmp_path / "c", channels=("u10m", "v10m", "t2m", "2d", "msl", "z500", "q700"))
    grid = write_package(tmp_path / "d", nlat=17, nlon=32)
    cut = shutil.copytree(a, tmp_path / "cut")
    _truncate(cut / CHECKPOINT)
    cases = [((a, other), "has q700; lacks q850"), ((a, grid), "is for grid 17x32:equiangular"),
             ((cut,), "is truncated or corrupt"), ((tmp_path / "nothing",), "does not exist")]
    for args, message in cases:
        code, _, err = hens(*args)
        assert code == 2 and err.startswith("hens: error:") and message in err and err.count("\n") == 1, err
