"""Cause 1 of issue 19: a truncated file is never analysed as whole, on any surface.

PNG, JPEG and TIFF dates and a PNG mask, each cut in half, must give an error that names the file, in the CLI
(``verify``, ``ask``), the API, ``batch`` (the pair's error record, exit status 1) and ``scene``.
"""

from __future__ import annotations

import pytest

from tests.bad_inputs.cases import (
    api_agent,
    ask_cli,
    batch_run,
    example,
    jpeg_of,
    plain_tif_of,
    png_of,
    run_cli,
    scene_run,
    truncate,
    verify_json,
)
from tools.pairs import load_pair
from tools.raster import InputError, read_raster


@pytest.fixture
def dates(tmp_path):
    """Whole and truncated copies of one example, per format: {fmt: (t1, t2, truncated t2)}."""
    ex = example(tmp_path / "ex")
    made = {}
    for fmt, convert in (("png", png_of), ("jpg", jpeg_of), ("tif", plain_tif_of)):
        t1 = convert(ex.t1, tmp_path / f"t1.{fmt}")
        t2 = convert(ex.t2, tmp_path / f"t2.{fmt}")
        made[fmt] = (t1, t2, truncate(t2, tmp_path / f"cut.{fmt}"))
    return ex, made


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif"])
@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.995])
def test_loader_refuses_every_truncation(dates, tmp_path, fmt, keep):
    _, made = dates
    cut = truncate(made[fmt][1], tmp_path / f"keep.{fmt}", keep)
    with pytest.raises(InputError, match=rf"t2 file .*keep\.{fmt}"):
        load_pair(made[fmt][0], cut)


def test_whole_files_still_read(dates):
    _, made = dates
    for t1, t2, _ in made.values():
        assert load_pair(t1, t2).shape == (64, 64)


def test_truncated_png_mask_is_refused(dates, tmp_path):
    ex, _ = dates
    cut = truncate(ex.mask, tmp_path / "mask_cut.png")
    with pytest.raises(InputError, match=r"mask file .*mask_cut\.png"):
        read_raster(cut, role="mask", validity=False)


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif"])
def test_cli_verify_and_ask_name_the_truncated_file(dates, tmp_path, capsys, fmt):
    _, made = dates
    t1, _, cut = made[fmt]
    code, payload, err = verify_json(t1, cut, capsys)
    assert code == 2 and payload is None
    assert f"cut.{fmt}" in err and "Traceback" not in err
    code, _, err = ask_cli(t1, cut, tmp_path, capsys)
    assert code == 2 and f"cut.{fmt}" in err


def test_cli_verify_names_a_truncated_mask(dates, tmp_path, capsys):
    ex, _ = dates
    cut = truncate(ex.mask, tmp_path / "mask_cut.png")
    code, _, err = verify_json(ex.t1, ex.t2, capsys, "--mask", cut)
    assert code == 2 and "mask file" in err and "mask_cut.png" in err


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif"])
def test_api_names_the_truncated_file(dates, tmp_path, fmt):
    _, made = dates
    t1, _, cut = made[fmt]
    agent = api_agent(tmp_path)
    with pytest.raises(InputError, match=rf"cut\.{fmt}"):
        agent.ask((t1, cut), "has anything changed?")


def test_api_names_a_truncated_mask(dates, tmp_path):
    ex, _ = dates
    cut = truncate(ex.mask, tmp_path / "mask_cut.png")
    with pytest.raises(InputError, match=r"mask_cut\.png"):
        api_agent(tmp_path).ask((ex.t1, ex.t2), "has anything changed?", mask=cut)


def test_batch_records_the_truncated_file_and_exits_1(dates, tmp_path, capsys):
    _, made = dates
    t1, _, cut = made["png"]
    report, record, _out = batch_run(tmp_path, t1, cut)
    assert report.failed == 1 and report.answered == 0
    assert record["stage"] == "load" and "cut.png" in record["error"] and "cut short" in record["error"]
    catalog = t1.parent / "catalog.csv"
    questions = tmp_path / "questions.txt"
    code, _, _err = run_cli(["batch", catalog, "--questions", questions, "--out", tmp_path / "o2", "--json"], capsys)
    assert code == 1


def test_batch_records_a_truncated_mask(dates, tmp_path):
    ex, _ = dates
    cut = truncate(ex.mask, ex.t1.parent / "mask_cut.png")
    report, record, _ = batch_run(tmp_path, ex.t1, ex.t2, cut)
    assert report.failed == 1 and "mask_cut.png" in record["error"]


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif"])
def test_scene_names_the_truncated_file(dates, tmp_path, fmt):
    _, made = dates
    t1, _, cut = made[fmt]
    with pytest.raises(InputError, match=rf"cut\.{fmt}"):
        scene_run(tmp_path, t1, cut)


def test_scene_names_a_truncated_mask(dates, tmp_path):
    ex, _ = dates
    cut = truncate(ex.mask, tmp_path / "mask_cut.png")
    with pytest.raises(InputError, match=r"mask_cut\.png"):
        scene_run(tmp_path, ex.t1, ex.t2, mask=cut)
