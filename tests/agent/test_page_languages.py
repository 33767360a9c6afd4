"""The page speaks the visitor's language: a reply to a question in the question's language; a pair loaded, refused
or placed in the browser's language (Accept-Language), else the last question's, else English. A tool's error
detail is quoted as the tool wrote it (English, naming the file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.answering.catalog import LANGUAGES
from agent.answering.page_messages import accepted_language, visitor_language
from agent.page.blocks import build_blocks, make_page
from agent.page.session import ChangePage, Session
from agent.settings import AgentSettings
from deltavlm.synthetic import write_example

pytestmark = [  # pandas 3 deprecations inside gradio's queue bookkeeping, not ours
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> ChangePage:
    return make_page(AgentSettings(), work_dir=tmp_path_factory.mktemp("page"), example_seeds=(7,))


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    return write_example(tmp_path_factory.mktemp("pngs"), seed=7, georeferenced=False)


@pytest.fixture(scope="module")
def odd_pair(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("odd")
    paths = []
    for name, width in (("before.png", 64), ("after.png", 80)):
        cv2.imwrite(str(folder / name), np.full((64, width, 3), 120, np.uint8))
        paths.append(str(folder / name))
    return paths[0], paths[1]


def _last(steps: Iterator[Session]) -> Session:
    return list(steps)[-1]


def _answer(session: Session) -> str:
    return next(m["content"] for m in reversed(session.chat) if m["role"] == "assistant" and "metadata" not in m)


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"),
        ("ja,de;q=0.5,en;q=0.3", "de"),
        ("en;q=0.2, pt-BR;q=0.9", "pt"),
        ("zh-CN,zh;q=0.9", "zh"),
        ("es;q=0, en", "en"),
        ("ja-JP", None),
        ("", None),
        (None, None),
    ],
)
def test_the_browser_language_is_the_preferred_one_the_catalogs_have(header, lang):
    assert accepted_language(header) == lang


def test_the_page_language_is_the_browsers_then_the_last_questions_then_english():
    assert visitor_language("es", "de") == "es"
    assert visitor_language(None, "de") == "de"
    assert visitor_language(None, None) == "en"


def test_a_french_visitor_who_loads_a_bad_pair_is_told_in_french(page, odd_pair):
    failed = page.load_files(Session(browser_language="fr"), *odd_pair)
    reply = failed.chat[-1]["content"]
    assert reply.startswith("⚠ **Impossible de charger la paire.**"), reply
    assert "**Que faire :** envoyez deux dates co-enregistrées du même lieu" in reply
    assert reply.endswith("Aucune paire n'est encore chargée.")
    # the tool's detail is quoted as written: English, naming each file
    assert "the before (t1) file before.png is 64×64" in reply and "after.png is 80×64" in reply
    assert "Impossible de charger la paire." in failed.status and "Could not" not in failed.status


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_frames_a_failed_load_in_its_own_words(page, odd_pair, lang):
    reply = page.load_files(Session(browser_language=lang), *odd_pair).chat[-1]["content"]
    english = page.load_files(Session(), *odd_pair).chat[-1]["content"]
    assert reply.startswith("⚠ **") and "differ in size" in reply
    for sentence in ("Could not load the pair.", "What to do:", "upload two co-registered", "No pair is loaded"):
        assert sentence in english and sentence not in reply, (lang, sentence)


def test_a_german_question_that_hits_an_input_error_gets_a_german_frame(page, pngs, tmp_path):
    mask = tmp_path / "mask.png"
    mask.write_bytes(Path(pngs.mask).read_bytes())
    loaded = page.load_files(Session(browser_language="en"), str(pngs.t1), str(pngs.t2), str(mask), "levir-mci")
    assert loaded.pair is not None
    mask.unlink()  # the mask is gone when the question comes: the agent's reading of it fails
    failed = _last(page.ask(loaded, "Wie viele neue Gebäude gibt es?"))
    reply = failed.chat[-1]["content"]
    assert reply.startswith("⚠ **Diese Frage konnte nicht beantwortet werden.**"), reply
    assert "mask.png" in reply and str(tmp_path) not in reply  # the detail names the file, not the server path
    assert "**Was tun:** Laden Sie ein PNG-, JPEG- oder (Geo)TIFF-Bild hoch" in reply
    too_long = _last(page.ask(loaded, "Hat sich etwas verändert? " * 100))
    reply = too_long.chat[-1]["content"]
    assert reply.startswith("⚠ **Diese Frage konnte nicht beantwortet werden.**") and "the limit is 2000" in reply
    assert reply.endswith("**Was tun:** Stellen Sie eine kürzere Frage.")


def test_a_spanish_visitor_places_the_pair(page, pngs):
    loaded = page.load_files(Session(browser_language="es"), str(pngs.t1), str(pngs.t2))
    assert loaded.status == "✓ Par cargado. Haga una pregunta."
    assert loaded.evidence == "_Haga una pregunta: aquí aparece la evidencia en la que se basa cada respuesta._"
    assert "sin georreferencia" in loaded.pair_summary
    assert "**Máscara de cambios:** no se ha subido" in loaded.pair_summary
    placed = page.place(loaded, "35.50,33.88,35.52,33.90", "EPSG:4326", 0.5)
    assert placed.chat[-1]["content"] == (
        "◎ El par está ahora ubicado en EPSG:4326 (35.50,33.88,35.52,33.90). "
        "Distancia de muestreo en el terreno: 0,5 m por píxel. "
        "La conversación continúa; a partir de ahora las exportaciones lo usan."
    )
    assert "georreferenciado (EPSG:4326) a partir de sus límites" in placed.pair_summary
    bad = page.place(placed, "1,2,3", "EPSG:4326", None)
    assert bad.chat[-1]["content"].startswith("⚠ **No se pudo ubicar el par.**")
    assert "**Qué hacer:** corrija el campo Bounds (W,S,E,N) o CRS" in bad.chat[-1]["content"]


def test_without_a_browser_language_the_page_follows_the_last_question(page, pngs):
    loaded = page.load_files(Session(), str(pngs.t1), str(pngs.t2))
    assert loaded.status == "✓ Pair loaded. Ask a question."
    answered = _last(page.ask(loaded, "Est-ce que quelque chose a changé ?"))
    assert _answer(answered).startswith("Oui")
    title = answered.chat[-1]["metadata"]["title"]
    assert title.startswith("Preuves · ") and "confiance" in title
    assert answered.chat[-1]["content"].startswith("**Outils :**") and "**Masque :**" in answered.chat[-1]["content"]
    assert answered.status.startswith("Réponse au tour 1. Les images et le GeoJSON ci-dessous sont à jour.")
    assert answered.evidence.startswith("**Question (tour 1) :** Est-ce que quelque chose a changé ?")
    assert "#### Chiffres du vérificateur" in answered.evidence and "| pixels modifiés |" in answered.evidence
    placed = page.place(answered, "", "", 0.5)  # a message not tied to a question: the thread's language
    assert placed.chat[-1]["content"].startswith("◎ La paire n'a toujours pas de géoréférence.")
    assert page.new_conversation(placed).status == "Nouvelle conversation commencée sur la même paire."
    browser = page.place(answered.model_copy(update={"browser_language": "de"}), "", "", 0.5)
    assert browser.chat[-1]["content"].startswith("◎ Das Bildpaar hat weiterhin keine Georeferenz.")


def test_the_served_page_reads_the_accept_language_header(odd_pair, tmp_path, page_client):
    from gradio_client import handle_file

    import tests.agent.test_app as served_page

    page = make_page(AgentSettings(), work_dir=tmp_path, example_seeds=())
    blocks = build_blocks(page)
    port = served_page._free_port()
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        files = [handle_file(path) for path in odd_pair]
        for header, frame in (("fr-FR,fr;q=0.9,en;q=0.5", "Impossible de charger la paire."), (None, "Could not load")):
            client = page_client(f"http://127.0.0.1:{port}/", headers={"Accept-Language": header or ""})
            status, *_ = client.predict(*files, None, "auto", "none", "", "", None, api_name="/load_pair")
            assert frame in status, (header, status)
    finally:
        blocks.close()


def test_every_advice_the_page_can_pick_is_in_every_catalog():
    """The advice keys are built from the problem's words, so the catalog test cannot see them: check each here."""
    from agent.answering.catalog import messages
    from agent.answering.page_messages import _ADVICE

    keys = {f"page:advice:{key}" for _, key in _ADVICE} | {"page:advice:other", "page:polygons:one"}
    for lang in LANGUAGES:
        assert keys <= set(messages(lang)), (lang, keys - set(messages(lang)))
