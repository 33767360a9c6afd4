"""The pair loader: formats, the 8-bit scaling rule, and errors that name the file and the problem."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.geodata import UTM14N, write_tif
from tools.pairs import as_pair, load_pair, pair_from_arrays
from tools.raster import InputError


def _rgb(seed: int, shape=(40, 50)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _png(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_png_pair_round_trips_pixels(tmp_path):
    a, b = _rgb(1), _rgb(2)
    pair = load_pair(_png(tmp_path / "a.png", a), _png(tmp_path / "b.png", b))
    assert pair.t1.dtype == np.uint8 and pair.t1.shape == (40, 50, 3)
    np.testing.assert_array_equal(pair.t1, a)
    np.testing.assert_array_equal(pair.t2, b)
    assert pair.georef is None
    assert pair.shape == (40, 50)
    assert pair.pair_id == pair_from_arrays(a, b).pair_id


def test_jpeg_and_grayscale(tmp_path):
    a = _rgb(3)
    cv2.imwrite(str(tmp_path / "a.jpg"), cv2.cvtColor(a, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "g.png"), a[..., 0])
    pair = load_pair(tmp_path / "a.jpg", tmp_path / "g.png")
    assert pair.t2.shape == (40, 50, 3)
    np.testing.assert_array_equal(pair.t2[..., 0], pair.t2[..., 2])


def test_rgba_png_drops_alpha(tmp_path):
    rgba = np.dstack([_rgb(4), np.full((40, 50), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    pair = load_pair(tmp_path / "a.png", tmp_path / "a.png")
    np.testing.assert_array_equal(pair.t1, rgba[..., :3])


def test_geotiff_pair_keeps_crs_and_transform(tmp_path):
    bands = np.moveaxis(_rgb(5), 2, 0)
    pair = load_pair(write_tif(tmp_path / "a.tif", bands), write_tif(tmp_path / "b.tif", bands))
    assert pair.georef is not None
    assert pair.georef.crs == UTM14N
    assert pair.georef.transform == (0.5, 0.0, 620000.0, 0.0, -0.5, 3350000.0)


def test_16bit_dates_are_each_stretched_on_their_own(tmp_path):
    """Each date is normalised on its own (issue 19): an offset or a bit depth of one date does not read as change."""
    rng = np.random.default_rng(0)
    a = rng.integers(1000, 3000, (3, 30, 30)).astype(np.uint16)
    b = a + 1000  # the same scene, delivered with another offset
    pair = load_pair(write_tif(tmp_path / "a.tif", a), write_tif(tmp_path / "b.tif", b))
    assert pair.t1.dtype == np.uint8
    np.testing.assert_array_equal(pair.t1, pair.t2)
    assert "each date stretched on its own" in pair.scaling


def test_8bit_date_against_a_16bit_copy_gives_the_same_pixels(tmp_path):
    a = np.moveaxis(_rgb(9, (30, 30)), 2, 0)
    wide = a.astype(np.uint16) * 257  # the 16-bit copy of the same scene
    pair = load_pair(write_tif(tmp_path / "a.tif", a), write_tif(tmp_path / "b.tif", wide))
    assert np.abs(pair.t1.astype(int) - pair.t2.astype(int)).max() <= 1


def test_multiband_without_colour_needs_rgb_bands(tmp_path):
    bands = np.random.default_rng(1).integers(0, 255, (5, 20, 20)).astype(np.uint8)
    a = write_tif(tmp_path / "a.tif", bands)
    with pytest.raises(InputError, match=r"a\.tif has 5 bands.*rgb_bands"):
        load_pair(a, a)
    pair = load_pair(a, a, rgb_bands=(3, 2, 1))
    np.testing.assert_array_equal(pair.t1[..., 0], bands[2])
    with pytest.raises(InputError, match="rgb_bands"):
        load_pair(a, a, rgb_bands=(9, 2, 1))


def test_two_band_image_is_refused(tmp_path):
    a = write_tif(tmp_path / "a.tif", np.zeros((2, 10, 10), np.uint8))
    with pytest.raises(InputError, match="2 bands"):
        load_pair(a, a)


def test_missing_file(tmp_path):
    b = _png(tmp_path / "b.png", _rgb(1))
    with pytest.raises(InputError, match=r"t1 file not found: .*nope\.png"):
        load_pair(tmp_path / "nope.png", b)


def test_not_an_image(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    with pytest.raises(InputError, match=r"t2 file .*notes\.png is not a readable image"):
        load_pair(_png(tmp_path / "a.png", _rgb(1)), bad)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="not a file"):
        load_pair(tmp_path, tmp_path)


def test_size_mismatch_names_both_files(tmp_path):
    a = _png(tmp_path / "a.png", _rgb(1, (40, 50)))
    b = _png(tmp_path / "b.png", _rgb(1, (41, 50)))
    with pytest.raises(InputError, match=r"a\.png is 50×40, .*b\.png is 50×41"):
        load_pair(a, b)


def test_crs_mismatch(tmp_path):
    bands = np.zeros((3, 10, 10), np.uint8)
    a = write_tif(tmp_path / "a.tif", bands)
    b = write_tif(tmp_path / "b.tif", bands, crs="EPSG:32615")
    with pytest.raises(InputError, match="different CRS"):
        load_pair(a, b)


def test_transform_mismatch(tmp_path):
    bands = np.zeros((3, 10, 10), np.uint8)
    a = write_tif(tmp_path / "a.tif", bands)
    b = write_tif(tmp_path / "b.tif", bands, origin=(620010.0, 3350000.0))
    with pytest.raises(InputError, match="different pixel grids"):
        load_pair(a, b)


def test_one_georeferenced_one_not(tmp_path):
    bands = np.zeros((3, 10, 10), np.uint8)
    a = write_tif(tmp_path / "a.tif", bands)
    b = write_tif(tmp_path / "b.tif", bands, crs=None)
    with pytest.raises(InputError, match=r"georeferenced .* but .*b\.tif is not"):
        load_pair(a, b)


def test_pixel_limit_refuses_decompression_bombs(tmp_path):
    a = _png(tmp_path / "a.png", _rgb(1, (100, 100)))
    with pytest.raises(InputError, match=r"10,000 pixels, over the limit of 9,999"):
        load_pair(a, a, max_pixels=9_999)


def test_as_pair_accepts_paths_arrays_and_pairs(tmp_path):
    a, b = _rgb(1), _rgb(2)
    pa, pb = _png(tmp_path / "a.png", a), _png(tmp_path / "b.png", b)
    from_paths = as_pair((pa, pb))
    from_arrays = as_pair([a, b])
    assert from_paths.pair_id == from_arrays.pair_id
    assert as_pair(from_paths) is from_paths
    with pytest.raises(InputError):
        as_pair("a.png")
    with pytest.raises(InputError, match="differ in size"):
        pair_from_arrays(a, _rgb(2, (10, 10)))


def test_real_odd_rgba_pair_is_refused_with_sizes(shared_data):
    root = shared_data / "levircd"
    with pytest.raises(InputError, match=r"768×384.*768×383"):
        load_pair(root / "A" / "test_113_0256.png", root / "B" / "test_113_0256.png")


def test_real_levircd_pair_loads(shared_data):
    root = shared_data / "levircd"
    pair = load_pair(root / "A" / "val_27_0000_0256.png", root / "B" / "val_27_0000_0256.png")
    assert pair.t1.shape == (256, 256, 3)
    assert pair.name == "val_27_0000_0256"
