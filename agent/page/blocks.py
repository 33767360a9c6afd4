"""The Gradio layout: components wired to :class:`~agent.page.session.ChangePage`'s callbacks."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from agent.answering.page_messages import accepted_language
from agent.api import Agent
from agent.mask_options import MASK_CATEGORY_LABEL, MASK_KIND_LABEL, MASK_KINDS, NO_CATEGORY
from agent.page.pictures import GRID_CHOICES
from agent.page.session import (
    AOI_TYPES,
    DEFAULT_MAX_FILE_MB,
    EXAMPLE_SEEDS,
    IMAGE_TYPES,
    MASK_CATEGORIES,
    NO_EVIDENCE,
    QUESTION_EXAMPLES,
    WELCOME,
    ChangePage,
    Session,
)
from agent.settings import AgentSettings
from tools.raster import DEFAULT_MAX_PIXELS

log = logging.getLogger(__name__)


class LatestThreads:
    """Which conversation each browser tab shows now, so a slow answer cannot overwrite a newer pair.

    Gradio hands an event the tab's state as it was when the event started; an answer that finishes after
    the tab loaded another pair (or started a new conversation) would write the old session back. Loading
    events record their thread here; an answer whose thread is no longer the tab's leaves the page alone.
    Bounded, oldest tab forgotten first (a forgotten tab simply gets no such protection).
    """

    def __init__(self, max_tabs: int = 4096) -> None:
        self._threads: OrderedDict[str, str] = OrderedDict()
        self._max_tabs = max_tabs
        self._lock = threading.Lock()

    def record(self, tab: str | None, thread_id: str) -> None:
        """``tab`` now shows ``thread_id`` (called by every event that loads a pair or starts a conversation)."""
        if tab is None:
            return
        with self._lock:
            self._threads[tab] = thread_id
            self._threads.move_to_end(tab)
            while len(self._threads) > self._max_tabs:
                self._threads.popitem(last=False)

    def superseded(self, tab: str | None, thread_id: str) -> bool:
        """True when ``tab`` has since moved to another thread."""
        with self._lock:
            current = self._threads.get(tab) if tab is not None else None
        return current is not None and current != thread_id

    def forget(self, tab: str | None) -> None:
        """The tab was closed: its entry would only take room."""
        if tab is None:
            return
        with self._lock:
            self._threads.pop(tab, None)


def build_blocks(page: ChangePage) -> gr.Blocks:
    """Lay out the page and wire its events to ``page``; ``app.py`` launches what this returns."""

    def view(session: Session) -> tuple[Any, ...]:
        status = f"{session.pair_summary}\n\n{session.status}" if session.pair_summary else session.status
        return (
            session,
            status,
            session.chat,
            session.compare_view(),
            session.legend,
            session.full_size or None,
            session.evidence,
            session.geojson,
            session.downloads or None,
        )

    def load(
        session: Session,
        t1: str | None,
        t2: str | None,
        mask: str | None,
        kind: str,
        category: str,
        bounds: str,
        crs: str,
        gsd: float | None,
        request: gr.Request,
        progress: gr.Progress,
    ) -> Session:
        """The session with the visitor's files loaded (dates, mask, placing), as the page shows it to them."""
        loaded = page.load_files(
            visiting(request, session),
            t1,
            t2,
            mask,
            kind,
            category,
            progress=progress,
            bounds=bounds,
            crs=crs,
            gsd_m=gsd,
        )
        return shown(request, loaded)

    def on_pair_files(
        session: Session,
        t1: str | None,
        t2: str | None,
        mask: str | None,
        kind: str,
        category: str,
        bounds: str,
        crs: str,
        gsd: float | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the tracker by this default)
    ) -> tuple[Any, ...]:
        """A new before or after image: the mask, its reading and the placing belonged to the old pair: they reset."""
        aoi: Any = gr.skip()
        if session.pair is not None and (t1, t2) != (session.pair.t1, session.pair.t2):
            mask, kind, category, bounds, crs, gsd, aoi = None, "auto", NO_CATEGORY, "", "", None, None
        loaded = load(session, t1, t2, mask, kind, category, bounds, crs, gsd, request, progress)
        return (*view(loaded), mask, kind, category, bounds, crs, gsd, aoi)

    def on_mask_file(
        session: Session,
        t1: str | None,
        t2: str | None,
        mask: str | None,
        kind: str,
        category: str,
        bounds: str,
        crs: str,
        gsd: float | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        return view(load(session, t1, t2, mask, kind, category, bounds, crs, gsd, request, progress))

    def on_aoi(session: Session, path: str | None, request: gr.Request) -> tuple[Any, ...]:
        return view(page.set_aoi(visiting(request, session), path))

    def on_mask_reading(session: Session, kind: str, category: str, request: gr.Request) -> tuple[Any, ...]:
        return view(page.reread_mask(visiting(request, session), kind, category))

    def on_place(session: Session, bounds: str, crs: str, gsd: float | None, request: gr.Request) -> tuple[Any, ...]:
        return view(page.place(visiting(request, session), bounds, crs, gsd))

    def on_toggle(session: Session, show: bool) -> tuple[Any, ...]:
        return view(page.toggle_changes(session, show))

    def on_grid(session: Session, fine_grid: int, request: gr.Request) -> tuple[Any, ...]:
        return view(page.set_grid(visiting(request, session), fine_grid))

    def on_example(
        session: Session,
        label: str,
        use_mask: bool,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        visitor = visiting(request, session)
        loaded, t1, t2, mask, kind, category = page.load_example(visitor, label, use_mask, progress=progress)
        return (*view(shown(request, loaded)), t1, t2, mask, kind, category, None)  # the old pair's AOI goes

    def on_ask(
        session: Session,
        question: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> Iterator[tuple[Any, ...]]:
        for step in page.ask(visiting(request, session), question, progress=progress):
            if latest.superseded(request.session_hash, session.thread_id):
                log.info("dropping an answer for a pair or conversation the tab has left")
                yield tuple(gr.skip() for _ in ask_outputs)
                return
            yield (*view(step), step.draft)

    def on_new(session: Session, request: gr.Request) -> tuple[Any, ...]:
        return view(shown(request, page.new_conversation(visiting(request, session))))

    def on_visit(session: Session, request: gr.Request) -> tuple[Any, ...]:
        """A tab opens: the welcome in the visitor's language (the page's first paint is English)."""
        visitor = visiting(request, session)
        if visitor.pair is None and not visitor.chat:
            visitor = page.new_conversation(visitor)
        return view(visitor)

    def visiting(request: gr.Request | None, session: Session) -> Session:
        """The session with the language the visitor's browser asks for (its Accept-Language header)."""
        headers = {str(k).lower(): str(v) for k, v in dict(getattr(request, "headers", None) or {}).items()}
        lang = accepted_language(headers.get("accept-language"))
        return session if lang == session.browser_language else session.model_copy(update={"browser_language": lang})

    def shown(request: gr.Request, session: Session) -> Session:
        latest.record(request.session_hash, session.thread_id)
        return session

    def on_close(request: gr.Request) -> None:
        latest.forget(request.session_hash)

    latest = LatestThreads()

    # analytics off: the page must work with no network, and it sends nothing about its visitors anywhere
    with gr.Blocks(title="changeagent: change analysis", delete_cache=(3600, 86400), analytics_enabled=False) as blocks:
        gr.Markdown(
            "# changeagent — what changed between two images?\n"
            "Load a before/after pair, then ask in plain language: *has anything changed?*, *how many new "
            "buildings?*, *where?*, *describe the changes*, *export the changed cells*. Every answer shows "
            "the evidence it rests on; problems are said in the chat."
        )
        gr.Markdown(f"**Perception:** {page.perception}", elem_id="perception")
        with gr.Accordion("How to configure the model", open=False):
            gr.Markdown(page.config_help())
        session = gr.State(Session())
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                with gr.Tab("Upload a pair"):
                    upload: dict[str, Any] = {"file_types": IMAGE_TYPES, "height": 140}
                    t1 = gr.File(label="Before (t1): PNG, JPEG or GeoTIFF", elem_id="t1", **upload)
                    t2 = gr.File(label="After (t2), same size and grid", elem_id="t2", **upload)
                    mask = gr.File(label="Change mask (optional)", elem_id="mask", **upload)
                    aoi = gr.File(
                        label="Areas of interest (optional): GeoJSON, GeoPackage or zipped Shapefile, any CRS",
                        elem_id="aoi",
                        file_types=AOI_TYPES,
                        height=100,
                    )
                    with gr.Row():
                        kind = gr.Dropdown(
                            list(MASK_KINDS),
                            value="auto",
                            label=f"{MASK_KIND_LABEL} (--mask-kind)",
                            elem_id="mask-kind",
                        )
                        category = gr.Dropdown(
                            list(MASK_CATEGORIES),
                            value=NO_CATEGORY,
                            label=f"{MASK_CATEGORY_LABEL} (--mask-category)",
                            info="what a binary mask's change is: building for LEVIR-CD labels",
                            elem_id="mask-category",
                        )
                    with gr.Accordion("Place a plain image on the map", open=False, elem_id="place"):
                        gr.Markdown(
                            "For PNG/JPEG pairs without a world file: the edges of the images and their CRS "
                            "(`--bounds W,S,E,N --crs EPSG:…` on the command line). A world file without a CRS "
                            "needs only the CRS."
                        )
                        bounds = gr.Textbox(
                            label="Bounds W,S,E,N", placeholder="35.46,33.86,35.58,33.92", elem_id="bounds"
                        )
                        crs = gr.Textbox(label="CRS", placeholder="EPSG:4326", elem_id="crs")
                        gsd = gr.Number(
                            label="Ground sampling distance (m per pixel)", minimum=0, value=None, elem_id="gsd"
                        )
                        place = gr.Button("Apply", elem_id="apply-place")
                    gr.Markdown(page.limits_text(), elem_classes=["limits"])
                with gr.Tab("Synthetic example"):
                    example = gr.Dropdown(
                        page.example_choices(),
                        value=page.example_choices()[0] if page.examples else None,
                        label="Bundled example (generated at start-up)",
                        elem_id="example",
                    )
                    use_mask = gr.Checkbox(
                        value=True, label="Use its labelled change mask (untick to let the classical detector look)"
                    )
                    load_example = gr.Button("Load example", variant="primary", elem_id="load-example")
                status = gr.Markdown(WELCOME, elem_id="status")
            with gr.Column(scale=2, min_width=420):
                chat = gr.Chatbot(label="Conversation", height=460, elem_id="chat", buttons=["copy"])
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask about the pair, e.g. “How many new buildings?”",
                        show_label=False,
                        scale=5,
                        elem_id="question",
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                new = gr.Button("New conversation", elem_id="new-conversation")
                gr.Examples(
                    [[q] for q in QUESTION_EXAMPLES],
                    inputs=[question],
                    label="Try",
                    api_name="question_example",
                    api_visibility="private",
                )
        gr.Markdown(
            "**Before ↔ after.** Drag the handle to swipe between the dates; scroll to zoom, drag to pan, or open "
            "the view full screen. With the changes shown, both dates carry the same marks."
        )
        with gr.Row():
            show_changes = gr.Checkbox(value=True, label="Show the changes on both dates", elem_id="overlay-toggle")
            grid = gr.Dropdown(
                [(label, size) for label, size in GRID_CHOICES], value=0, label="Grid", elem_id="grid", scale=1
            )
        compare = gr.ImageSlider(
            label="Before ↔ after",
            show_label=False,
            type="filepath",
            interactive=False,
            elem_id="compare",
            max_height=720,
            buttons=["download", "fullscreen"],
        )
        legend = gr.HTML(elem_id="legend")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2), gr.Accordion("Evidence for the latest answer", open=True):
                evidence = gr.Markdown(NO_EVIDENCE, elem_id="evidence")
            with gr.Column(scale=1):
                geojson = gr.File(
                    label="GeoJSON of the changed cells and objects", interactive=False, elem_id="geojson"
                )
                downloads = gr.File(
                    label="The same as GeoPackage and zipped Shapefile, and the change mask as a GeoTIFF (COG)",
                    file_count="multiple",
                    interactive=False,
                    elem_id="downloads",
                )
                full_size = gr.File(
                    label="Full-resolution pictures (click to open)",
                    file_count="multiple",
                    interactive=False,
                    elem_id="full-size",
                )

        outputs = [session, status, chat, compare, legend, full_size, evidence, geojson, downloads]
        file_inputs = [session, t1, t2, mask, kind, category, bounds, crs, gsd]
        hidden: dict[str, Any] = {"api_visibility": "private"}
        # File events run one at a time, in arrival order, so uploading t1 then t2 quickly cannot end with
        # the t1-only event's "now upload t2" overwriting the loaded pair. Progress shows where the work
        # lands, not over every output, so the status box stays readable.
        loading: dict[str, Any] = {
            "show_progress_on": [compare],
            "concurrency_limit": 1,
            "concurrency_id": "pair-files",
        }
        pair_outputs = [*outputs, mask, kind, category, bounds, crs, gsd, aoi]
        # One public endpoint for loading files (for scripts and the gradio_client tests); the rest are private.
        t1.upload(on_pair_files, file_inputs, pair_outputs, api_name="load_pair", **loading)
        t2.upload(on_pair_files, file_inputs, pair_outputs, **hidden, **loading)
        mask.upload(on_mask_file, file_inputs, outputs, **hidden, **loading)
        for component in (t1, t2):
            component.clear(on_pair_files, file_inputs, pair_outputs, **hidden, **loading)
        mask.clear(on_mask_file, file_inputs, outputs, **hidden, **loading)
        aoi.upload(on_aoi, [session, aoi], outputs, **hidden, **loading)
        aoi.clear(on_aoi, [session, aoi], outputs, **hidden, **loading)
        kind.input(on_mask_reading, [session, kind, category], outputs, **hidden, **loading)
        category.input(on_mask_reading, [session, kind, category], outputs, **hidden, **loading)
        place.click(on_place, [session, bounds, crs, gsd], outputs, **hidden, **loading)
        show_changes.input(on_toggle, [session, show_changes], outputs, **hidden)
        grid.input(on_grid, [session, grid], outputs, **hidden, **loading)
        load_example.click(
            on_example,
            [session, example, use_mask],
            [*outputs, t1, t2, mask, kind, category, aoi],
            api_name="load_example",
            **loading,
        )
        # One answer at a time inside the agent; the queue shows other visitors their place meanwhile.
        ask_outputs = [*outputs, question]
        ask_args: dict[str, Any] = {
            "fn": on_ask,
            "inputs": [session, question],
            "outputs": ask_outputs,
            "concurrency_limit": 1,
            "concurrency_id": "agent",
            "show_progress_on": [chat, compare],
        }
        send.click(**ask_args, api_name="ask")
        question.submit(**ask_args, **hidden)
        new.click(on_new, [session], outputs, api_name="new_conversation")
        chat.clear(on_new, [session], outputs, **hidden)  # the chat's own bin icon also starts afresh
        blocks.load(on_visit, [session], outputs, api_visibility="private")
        blocks.unload(on_close)
    blocks.queue(default_concurrency_limit=4)
    return blocks


def make_page(
    settings: AgentSettings | None = None,
    *,
    work_dir: str | Path | None = None,
    max_file_mb: float = DEFAULT_MAX_FILE_MB,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    example_seeds: Sequence[int] = EXAMPLE_SEEDS,
    agent: Agent | None = None,
) -> ChangePage:
    """A page with its own agent; artefacts default to the page's work folder so Gradio may serve them."""
    page_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="changeagent-page-"))
    if work_dir is None:
        atexit.register(shutil.rmtree, page_dir, ignore_errors=True)
    if agent is None:
        settings = settings or AgentSettings()
        if "artefact_dir" not in settings.model_fields_set:
            settings = settings.model_copy(update={"artefact_dir": page_dir / "agent"})
        agent = Agent(settings)
    return ChangePage(
        agent, work_dir=page_dir, max_file_mb=max_file_mb, max_pixels=max_pixels, example_seeds=example_seeds
    )
