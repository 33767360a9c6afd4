"""The page surface of the probe suite: bad dates and masks become an assistant reply naming the file, and the
numbers on a half-valid pair are the same as the API's."""

from __future__ import annotations

import pytest

from agent.page.blocks import make_page
from agent.page.session import Session
from agent.settings import AgentSettings
from tests.bad_inputs.cases import example, float_with_nan, green_channel_mask, png_of, truncate


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return make_page(AgentSettings(), work_dir=tmp_path_factory.mktemp("page"), example_seeds=())


def _last_reply(session: Session) -> str:
    return next(m["content"] for m in reversed(session.chat) if m["role"] == "assistant")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_png_is_refused_in_the_chat_by_name(page, tmp_path, keep):
    ex = example(tmp_path / "ex")
    whole = png_of(ex.t2, tmp_path / "after.png")
    cut = truncate(whole, tmp_path / "after_cut.png", keep)
    session = page.load_files(Session(), str(png_of(ex.t1, tmp_path / "before.png")), str(cut))
    reply = _last_reply(session)
    assert session.pair is None and "after_cut.png" in reply and "Traceback" not in reply


def test_a_mask_with_change_in_another_channel_is_refused_in_the_chat(page, tmp_path):
    ex = example(tmp_path / "ex")
    bad = green_channel_mask(ex.mask, tmp_path / "green.png")
    session = page.load_files(Session(), str(ex.t1), str(ex.t2), str(bad), "binary", "building")
    reply = _last_reply(session)
    assert session.pair is None and "green.png" in reply


def test_a_half_valid_date_is_analysed_on_its_valid_part(page, tmp_path):
    ex = example(tmp_path / "ex")
    half = float_with_nan(ex.t2, tmp_path / "half.tif", slice(0, None, 2))
    session = page.load_files(Session(), str(ex.t1), str(half), str(ex.mask), "levir-mci")
    *_, answered = page.ask(session, "Has anything changed?")
    replies = [m["content"] for m in answered.chat if m["role"] == "assistant"]
    assert any("Only " in r and "holds data on both dates" in r for r in replies), replies
