"""The page's logic as plain Python: each callback takes and returns a :class:`Session`, so it is tested
without a browser or a server.

One :class:`agent.api.Agent` serves every visitor: each browser session gets its own conversation thread, and a
lock keeps two answers from running inside the agent at once (its pair store and graph are not meant for
concurrent use). Everything a user can get wrong (sizes that differ, a file that is not an image, a file over the
size limit, a mask of the wrong size) becomes a message, never a traceback; an unexpected failure is logged with
its traceback on the server and reported in one line on the page.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent.answering import describe_export, unplaced_hint
from agent.answering import page_messages as words
from agent.answering.page_evidence import evidence_markdown
from agent.answering.page_messages import file_label, status_line
from agent.api import Agent, check_aoi
from agent.mask_options import MASK_CATEGORY_CHOICES, MASK_KINDS, NO_CATEGORY, category_hint
from agent.page.evidence import scrub
from agent.page.pictures import change_pictures, date_pictures
from agent.reading import Request, read_request
from tools.aoi import aoi_collection, aoi_figures, read_aoi
from tools.crs import crs_text
from tools.geojson import changes_geojson, geojson_file_name, write_geojson
from tools.georef import load_placed_pair
from tools.mask_geotiff import mask_file_name, write_mask_cog
from tools.masks import ChangeMask, MaskKind, UserMaskProvider
from tools.pairs import ImagePair
from tools.raster import DEFAULT_MAX_PIXELS, InputError
from tools.vector_export import write_vector, write_zipped_shapefile
from tools.verify import Verification, verify

log = logging.getLogger(__name__)

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
AOI_TYPES = [".geojson", ".json", ".gpkg", ".zip"]
MASK_CATEGORIES = MASK_CATEGORY_CHOICES
DEFAULT_MAX_FILE_MB = 200
"""Largest upload the page accepts, per file; Gradio refuses bigger uploads before they reach Python."""
EXAMPLE_SEEDS: tuple[int, ...] = (7, 11, 23)
"""Pictures sent to the browser are shrunk to this side so a scene-sized pair does not stall the page."""
PAIR_CACHE_SIZE = 8
QUESTION_EXAMPLES = (
    "Has anything changed?",
    "How many new buildings are there?",
    "and where?",
    "Describe the changes.",
    "Export the changed cells as GeoJSON",
)
WELCOME = words.status("welcome", "en")
"""The status before the page knows its visitor (the page's first paint); a visitor's own is ``Session.welcome``."""
NO_EVIDENCE = words.status("no_evidence", "en")
"""The evidence panel before the first answer, at the page's first paint; a visitor's own is set by ``fresh``."""

ProgressFn = Callable[..., Any]


def _no_progress(*_args: Any, **_kwargs: Any) -> None:
    """Progress sink for callers outside a Gradio event (tests, scripts)."""


class PairRef(BaseModel):
    """What a session needs to find its pair again: the files, how to read the mask, where it lies."""

    t1: str
    t2: str
    mask: str | None = None
    mask_kind: MaskKind = "auto"
    mask_category: str | None = None
    bounds: str | None = Field(None, description="W,S,E,N the visitor gave to place a plain pair.")
    place_crs: str | None = Field(None, description="The CRS of those bounds, or of a world file that has none.")
    gsd_m: float | None = Field(None, description="Metres per pixel the visitor gave for a plain pair.")
    aoi: str | None = Field(None, description="The visitor's areas of interest (a vector file), for the thread.")
    name: str
    pair_id: str
    width: int
    height: int
    crs: str | None = None
    unplaced: str = Field("", description="Why the pair is not on a map, and what to do (empty when it is).")


class Session(BaseModel):
    """One browser session's view: its pair, conversation thread, chat and the latest pictures.

    The session, not the browser, is the source of truth for the chat, so a page that was reloaded or a
    client that sends a stale history cannot desynchronise the chat from the agent's thread.
    """

    pair: PairRef | None = None
    thread_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    chat: list[dict[str, Any]] = Field(default_factory=list)
    turns: int = 0
    before: str | None = Field(None, description="The swipe's left picture: the before date.")
    after: str | None = Field(None, description="The swipe's right picture: the after date.")
    before_changes: str | None = Field(None, description="The before date with the latest answer's change marks.")
    after_changes: str | None = Field(None, description="The after date with the latest answer's change marks.")
    show_changes: bool = True
    fine_grid: int = Field(0, description="0: the 3×3 cells only; N: an N×N grid of object shares as well.")
    legend: str = ""
    overlay: str | None = Field(None, description="The latest overlay with its legend strip, full resolution.")
    full_size: list[str] = Field(default_factory=list, description="Full-resolution pictures offered for download.")
    date_files: list[str] = Field(default_factory=list, description="The dates at full size, when previews shrink.")
    geojson: str | None = None
    downloads: list[str] = Field(
        default_factory=list, description="The latest turn's other exports: GeoPackage, zipped Shapefile, mask COG."
    )
    evidence: str = NO_EVIDENCE
    status: str = WELCOME
    pair_summary: str = Field("", description="What is loaded, shown above the latest status line.")
    draft: str = Field("", description="Text left in the question box (kept when a question was refused).")
    load_error: str | None = Field(None, description="Why the last load failed, repeated if a question comes.")
    browser_language: str | None = Field(
        None, description="The catalogs' language the visitor's browser asks for (Accept-Language), if any."
    )
    last_request: Request | None = Field(None, description="How the last question was read (its language).")

    @property
    def language(self) -> str:
        """What the page says outside a reply to a question is in this language (``visitor_language``)."""
        last = self.last_request.language if self.last_request else None
        return words.visitor_language(self.browser_language, last)

    def question_language(self, question: str) -> str:
        """The language of ``question`` as the reader reads it, after this thread's last question."""
        return read_request(question, [self.last_request] if self.last_request else []).language

    def fresh(self, **fields: Any) -> Session:
        """A new session for the same visitor: it keeps the languages the page speaks to them in."""
        kept = Session(browser_language=self.browser_language, last_request=self.last_request, **fields)
        kept.evidence = words.status("no_evidence", kept.language)
        return kept

    def compare_view(self) -> tuple[str, str] | None:
        """The swipe's two pictures: the dates, with the change marks when they exist and are wanted."""
        if self.show_changes and self.before_changes and self.after_changes:
            return self.before_changes, self.after_changes
        if self.before and self.after:
            return self.before, self.after
        return None

    def reply(self, text: str, *, status: str | None = None) -> None:
        """Say ``text`` as the assistant in the chat; the status line repeats it (or says ``status``)."""
        self.chat.append({"role": "assistant", "content": text})
        self.status = status if status is not None else status_line(text)


@dataclass(frozen=True)
class Example:
    """A bundled synthetic pair, generated at start-up (no data files ship with the project)."""

    label: str
    name: str
    t1: Path
    t2: Path
    mask: Path


class ChangePage:
    """Callbacks of the page. Each takes the session and returns a new one; nothing here needs a browser."""

    def __init__(
        self,
        agent: Agent,
        *,
        work_dir: str | Path | None = None,
        max_file_mb: float = DEFAULT_MAX_FILE_MB,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        example_seeds: Sequence[int] = EXAMPLE_SEEDS,
    ) -> None:
        self.agent = agent
        if work_dir is None:
            work_dir = tempfile.mkdtemp(prefix="changeagent-page-")
            atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
        self.work_dir = Path(work_dir).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.max_file_mb = max_file_mb
        self.max_pixels = max_pixels
        self.examples = self._write_examples(example_seeds)
        self._pairs: OrderedDict[tuple[str | None, ...], ImagePair] = OrderedDict()
        self._pairs_lock = threading.Lock()
        self._agent_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ set-up

    def _write_examples(self, seeds: Sequence[int]) -> dict[str, Example]:
        from deltavlm.synthetic import write_example

        examples = {}
        for seed in seeds:
            paths = write_example(self.work_dir / "examples" / f"seed{seed}", seed=seed)
            label = f"Synthetic suburb, seed {seed} (GeoTIFF, UTM 14N, 0.5 m)"
            examples[label] = Example(
                label=label, name=f"synthetic-seed{seed}", t1=paths.t1, t2=paths.t2, mask=paths.mask
            )
        return examples

    @property
    def perception(self) -> str:
        """Which perception answers, in words, for the page header."""
        return self.agent.perception

    def config_help(self) -> str:
        """How to switch the model on or off; the page shows it next to the active perception."""
        return (
            "DeltaVLM is configured when the page is started (visitors cannot change it):\n\n"
            "- `python app.py` — verifier-only: OpenCV rules on the change mask (your mask, or the classical "
            "detector's), no model.\n"
            "- `python app.py --model-config tiny` — DeltaVLM in this process with the tiny test config "
            "(random weights: shows the code path, not real answers).\n"
            "- `python app.py --model-config full --checkpoint PATH` — DeltaVLM in this process with real "
            "weights (a GPU machine).\n"
            "- `python app.py --endpoint http://GPU-HOST:PORT` — a running DeltaVLM server; the bearer token "
            "is read from `$CHANGEAGENT_TOKEN`.\n\n"
            "Whatever the model says is checked against the verifiers; disagreements are listed under "
            "*Conflicts* in the evidence."
        )

    def limits_text(self) -> str:
        """The upload limits, stated up front so a refused file is no surprise."""
        return (
            f"Up to {self.max_file_mb:g} MB per file and {self.max_pixels / 1e6:g} megapixels per date. "
            "Both dates must have the same size (and the same CRS and pixel grid when georeferenced). "
            "Masks: LEVIR-MCI values (0 / 128 road / 255 building), class indices, or binary; a binary mask "
            f"(LEVIR-CD, DSIFN) cannot say what changed: {category_hint()} when it marks buildings."
        )

    # --------------------------------------------------------------------------------------- pairs

    def _check_file(self, path: str, role: str) -> None:
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        if size > self.max_file_mb * 1024 * 1024:
            raise InputError(words.too_big(file_label(role, path), size / 1024 / 1024, self.max_file_mb))

    def _pair(self, ref: PairRef) -> ImagePair:
        key = (ref.t1, ref.t2, ref.bounds, ref.place_crs)
        with self._pairs_lock:
            if key in self._pairs:
                self._pairs.move_to_end(key)
                return self._pairs[key]
        pair = load_placed_pair(ref.t1, ref.t2, max_pixels=self.max_pixels, bounds=ref.bounds, crs=ref.place_crs)
        with self._pairs_lock:
            self._pairs[key] = pair
            while len(self._pairs) > PAIR_CACHE_SIZE:
                self._pairs.popitem(last=False)
        return pair

    def _session_dir(self, session: Session) -> Path:
        folder = self.work_dir / "sessions" / session.thread_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @staticmethod
    def _labels(ref: PairRef | dict[str, str | None]) -> dict[str | None, str]:
        files = ref if isinstance(ref, dict) else {"before (t1)": ref.t1, "after (t2)": ref.t2, "mask": ref.mask}
        return {path: file_label(role, path) for role, path in files.items() if path}

    def load_files(
        self,
        session: Session,
        t1: str | None,
        t2: str | None,
        mask: str | None = None,
        mask_kind: str = "auto",
        mask_category: str | None = None,
        progress: ProgressFn = _no_progress,
        name: str | None = None,
        *,
        bounds: str | None = None,
        crs: str | None = None,
        gsd_m: float | None = None,
    ) -> Session:
        """Check and load a pair (and its optional mask); a new pair or mask starts a new conversation.

        A pair that cannot be loaded leaves the loaded one and its conversation as they were, and says why in
        the chat. ``name`` labels the pair in the page and in the GeoJSON (default: the before file's name);
        ``bounds`` and ``crs`` place a plain pair on the map, ``gsd_m`` gives its metres per pixel.
        """
        if not t1 or not t2:
            fresh = session.fresh()
            fresh.status = words.status(
                ("upload_t1" if not t1 else "upload_t2") if (t1 or t2) else "welcome", fresh.language
            )
            return fresh
        category = None if mask_category in (None, "", NO_CATEGORY) else mask_category
        kind: MaskKind = mask_kind if mask_kind in MASK_KINDS else "auto"  # type: ignore[assignment]
        ref_files = {"before (t1)": t1, "after (t2)": t2, "mask": mask}
        fresh = session.fresh(fine_grid=session.fine_grid, show_changes=session.show_changes)
        try:
            progress(0.1, desc="checking the files")
            for role, path in ref_files.items():
                if path:
                    self._check_file(path, role)
            ref = PairRef(
                t1=t1,
                t2=t2,
                mask=mask or None,
                mask_kind=kind,
                mask_category=category,
                bounds=(bounds or "").strip() or None,
                place_crs=(crs or "").strip() or None,
                gsd_m=gsd_m or None,
                aoi=session.pair.aoi if session.pair and (t1, t2) == (session.pair.t1, session.pair.t2) else None,
                name=name or Path(t1).stem,
                pair_id="",
                width=0,
                height=0,
            )
            progress(0.3, desc="reading the pair")
            pair = self._pair(ref)
            uncategorised = False
            if mask:
                progress(0.6, desc="reading the change mask")
                read = UserMaskProvider(mask, kind=kind, binary_category=category).provide(pair)
                uncategorised = kind == "auto" and category is None and not read.source.categorical
            progress(0.8, desc="drawing the before/after view")
            dates = date_pictures(pair, self._session_dir(fresh))
        except InputError as exc:
            return self._load_failed(session, scrub(str(exc), self._labels(ref_files)))
        except Exception as exc:  # a reader bug must not take the page down: log it, say it in one line
            log.exception("loading the pair failed")
            return self._load_failed(session, words.crash_detail(exc, scrub(str(exc), self._labels(ref_files))))
        fresh.pair = ref.model_copy(
            update={
                "pair_id": pair.pair_id,
                "width": pair.shape[1],
                "height": pair.shape[0],
                "crs": crs_text(pair.georef.crs) if pair.georef else None,
                "unplaced": unplaced_hint(pair),
            }
        )
        fresh.before, fresh.after, fresh.date_files = dates.before, dates.after, dates.full_size
        fresh.full_size = list(dates.full_size)
        fresh.pair_summary = self._pair_summary(fresh.pair, fresh.language)
        fresh.status = words.pair_loaded(session.pair is not None, fresh.language)
        if uncategorised:  # said now, not when a count question comes back with "regions" instead of buildings
            fresh.reply(words.mask_kind_hint(Path(mask or "").name, fresh.language), status=fresh.status)
        return fresh

    def _load_failed(self, session: Session, message: str) -> Session:
        """The failed load is said in the chat and the status line; what was loaded before stays loaded."""
        kept = session.model_copy(deep=True)
        kept.load_error = message
        kept.reply(words.load_problem(message, kept.pair.name if kept.pair else None, kept.language))
        return kept

    @staticmethod
    def _pair_summary(ref: PairRef, lang: str) -> str:
        return words.pair_summary(
            name=ref.name,
            width=ref.width,
            height=ref.height,
            crs=ref.crs,
            from_bounds=bool(ref.bounds),
            gsd_m=ref.gsd_m,
            mask=ref.mask,
            mask_kind=ref.mask_kind,
            mask_category=ref.mask_category,
            lang=lang,
        )

    def example_choices(self) -> list[str]:
        return list(self.examples)

    def load_example(
        self, session: Session, label: str | None, use_mask: bool = True, progress: ProgressFn = _no_progress
    ) -> tuple[Session, str | None, str | None, str | None, str, str]:
        """Load a bundled example; also returns what the upload fields should show (files, mask kind, category)."""
        example = self.examples.get(label or "")
        if example is None:
            failed = self._load_failed(session, words.no_example(label, session.language))
            return failed, None, None, None, "auto", NO_CATEGORY
        mask = str(example.mask) if use_mask else None
        kind = "levir-mci" if use_mask else "auto"
        loaded = self.load_files(
            session, str(example.t1), str(example.t2), mask, kind, None, progress=progress, name=example.name
        )
        return loaded, str(example.t1), str(example.t2), mask, kind, NO_CATEGORY

    # --------------------------------------------------------------------------- settings on a loaded pair

    def reread_mask(self, session: Session, mask_kind: str, mask_category: str | None) -> Session:
        """Read the loaded mask anew as ``mask_kind`` / ``mask_category``; the conversation goes on.

        The agent is told on the next question (the thread keeps its turns, and the new reading's facts replace
        the old ones); the chat says what the mask now shows, and the pictures follow at once.
        """
        session = session.model_copy(deep=True)
        category = None if mask_category in (None, "", NO_CATEGORY) else mask_category
        kind: MaskKind = mask_kind if mask_kind in MASK_KINDS else "auto"  # type: ignore[assignment]
        ref = session.pair
        if ref is None or not ref.mask:
            session.status = words.status("mask_settings_no_mask" if ref else "mask_settings_no_pair", session.language)
            return session
        if (kind, category) == (ref.mask_kind, ref.mask_category):
            return session
        try:
            pair = self._pair(ref)
            mask = UserMaskProvider(ref.mask, kind=kind, binary_category=category).provide(pair)
        except InputError as exc:
            session.reply(words.mask_unreadable(scrub(str(exc), self._labels(ref)), session.language))
            return session
        session.pair = ref.model_copy(update={"mask_kind": kind, "mask_category": category})
        session.pair_summary = self._pair_summary(session.pair, session.language)
        verification = verify(mask, self.agent.settings.rules)
        session.reply(words.mask_reread(Path(ref.mask).name, kind, category, verification, session.language))
        if session.turns:
            self._draw(session, pair, mask, verification)
        return session

    def place(self, session: Session, bounds: str | None, crs: str | None, gsd_m: float | None) -> Session:
        """Give a plain pair bounds and a CRS (and/or metres per pixel); the conversation goes on."""
        session = session.model_copy(deep=True)
        ref = session.pair
        lang = session.language
        if ref is None:
            session.reply(words.not_loaded(session.load_error, lang))
            return session
        placed = ref.model_copy(
            update={
                "bounds": (bounds or "").strip() or None,
                "place_crs": (crs or "").strip() or None,
                "gsd_m": gsd_m or None,
            }
        )
        try:
            pair = self._pair(placed)
        except InputError as exc:
            session.reply(words.place_problem(scrub(str(exc), self._labels(ref)), lang))
            return session
        crs_name = crs_text(pair.georef.crs) if pair.georef else None
        session.pair = placed.model_copy(update={"crs": crs_name, "unplaced": unplaced_hint(pair, lang)})
        session.pair_summary = self._pair_summary(session.pair, lang)
        session.reply(words.placed(crs_name, placed.bounds, placed.gsd_m, session.pair.unplaced, lang))
        return session

    def set_aoi(self, session: Session, path: str | None) -> Session:
        """Areas of interest for the loaded pair: checked now (a vector file of polygons, a pair on a map), then
        kept for the conversation; removing them starts a new conversation, since the thread remembers them."""
        lang = session.language
        if session.pair is None:
            if path:
                session.reply(words.aoi_without_pair(lang))
            return session
        ref = session.pair
        if not path:
            if ref.aoi is None:
                return session
            fresh = self.new_conversation(session.model_copy(update={"pair": ref.model_copy(update={"aoi": None})}))
            fresh.status = words.status("aoi_removed", lang)
            return fresh
        try:
            self._check_file(path, "areas of interest")
            layer = read_aoi(path)
            check_aoi(path, self._pair(ref))
        except InputError as exc:
            session.reply(words.aoi_problem(scrub(str(exc), {}), lang))
            return session
        session.pair = ref.model_copy(update={"aoi": path})
        session.reply(words.aoi_loaded(layer.source, [p.label for p in layer.polygons], lang))
        return session

    def toggle_changes(self, session: Session, show: bool) -> Session:
        session = session.model_copy()
        session.show_changes = bool(show)
        return session

    def set_grid(self, session: Session, fine_grid: int | None) -> Session:
        """Show a finer grid of object shares on the pictures (0: the 3×3 cells only)."""
        session = session.model_copy(deep=True)
        session.fine_grid = int(fine_grid or 0)
        if session.pair is None or not session.turns:
            session.status = words.status("grid_after_answer", session.language)
            return session
        pair = self._pair(session.pair)
        with self._agent_lock:
            mask, verification = self._verified(session.pair, pair)
        self._draw(session, pair, mask, verification)
        size = f"{session.fine_grid}×{session.fine_grid}"
        grid = "grid_fine" if session.fine_grid else "grid_cells"
        session.status = words.status(grid, session.language, size=size)
        return session

    def _verified(self, ref: PairRef, pair: ImagePair) -> tuple[ChangeMask, Verification]:
        """The mask and verdicts the agent uses for this pair and its options (``Agent.verified``)."""
        return self.agent.verified(
            pair, mask=ref.mask, mask_kind=ref.mask_kind, mask_category=ref.mask_category, gsd_m=ref.gsd_m
        )

    def _draw(self, session: Session, pair: ImagePair, mask: ChangeMask, verification: Verification) -> None:
        stem = f"turn{session.turns}_grid{session.fine_grid}_{uuid.uuid4().hex[:6]}"
        pictures = change_pictures(pair, mask, verification, self._session_dir(session), stem, session.fine_grid)
        session.before_changes, session.after_changes = pictures.before, pictures.after
        session.overlay, session.legend = pictures.overlay, pictures.legend
        session.full_size = [*pictures.full_size, *session.date_files]

    # ------------------------------------------------------------------------------------ questions

    def ask(self, session: Session, question: str, progress: ProgressFn = _no_progress) -> Iterator[Session]:
        """Answer one question in the session's thread; yields once with the question shown, then the answer."""
        session = session.model_copy(deep=True)
        question = (question or "").strip()
        lang = session.question_language(question) if question else session.language
        if session.pair is None:
            if question:
                session.chat.append({"role": "user", "content": question})
            session.reply(words.not_loaded(session.load_error, lang))
            session.draft = question
            yield session
            return
        if not question:
            session.status = words.status("type_first", lang)
            yield session
            return
        session.draft = ""
        session.chat.append({"role": "user", "content": question})
        working = {"title": words.status("working", lang), "status": "pending"}
        session.chat.append({"role": "assistant", "content": "", "metadata": working})
        session.status = words.status("answering", lang)
        yield session.model_copy(deep=True)  # a snapshot: the session goes on changing below
        session.chat.pop()
        ref = session.pair
        try:
            progress(0.05, desc="reading the pair")
            pair = self._pair(ref)
            progress(0.2, desc=f"waiting for the agent ({self._perception_short()})")
            with self._agent_lock:
                progress(0.3, desc=f"answering ({self._perception_short()})")
                answer = self.agent.ask(
                    pair,
                    question,
                    thread_id=session.thread_id,
                    mask=ref.mask,
                    mask_kind=ref.mask_kind,
                    mask_category=ref.mask_category,
                    gsd_m=ref.gsd_m,
                    aoi=ref.aoi,
                )
                if answer.mask is not None and answer.verification is not None:
                    mask, verification = answer.mask, answer.verification
                else:  # an answer that needed no facts ("why?", a decline): the pictures still show the change
                    mask, verification = self._verified(ref, pair)
            progress(0.8, desc="drawing the changes")
            turn = session.turns + 1
            session.turns = turn
            self._draw(session, pair, mask, verification)
            # The page writes each turn's GeoJSON itself, named after the pair as the page knows it (an upload's
            # or example's name), whether or not the answer exported one under the agent's name.
            collection = changes_geojson(
                verification,
                mask,
                pair.georef,
                pair_name=ref.name,
                objects=True,
                crs=self.agent.settings.geojson_crs,
                turn=turn,
                gsd_m=ref.gsd_m,
            )
            name = geojson_file_name(ref.name, turn, pair.georef)
            folder = self._session_dir(session)
            geojson = str(write_geojson(collection, folder / name))
            stem = Path(name).stem
            downloads = [
                str(write_vector(collection, folder / f"{stem}.gpkg")[0]),
                str(write_zipped_shapefile(collection, folder / f"{stem}_shapefile.zip")),
                str(write_mask_cog(mask, pair.georef, folder / mask_file_name(ref.name, turn, pair.georef))),
            ]
            if ref.aoi and pair.georef is not None:  # the visitor's layer with each polygon's figures
                layer = read_aoi(ref.aoi)
                figures = aoi_figures(layer, mask, pair.georef, self.agent.settings.rules, gsd_m=ref.gsd_m)
                aoi_layer = aoi_collection(layer, figures, pair.georef, self.agent.settings.geojson_crs)
                downloads.append(str(write_vector(aoi_layer, folder / f"{stem}_areas_of_interest.gpkg")[0]))
        except InputError as exc:
            session.reply(words.question_problem(scrub(str(exc), self._labels(ref)), lang))
            yield session
            return
        except Exception as exc:  # keep serving: log the traceback here, one line in the page
            log.exception("answering %r failed", question)
            session.reply(words.agent_failed(exc, lang))
            yield session
            return
        session.last_request = answer.evidence.route
        lang = answer.evidence.route.language
        session.geojson = geojson
        session.downloads = downloads
        text = words.answer_text(answer, {"geojson": geojson})
        if answer.intent == "count" and answer.counts is None and ref.mask and not verification.source.categorical:
            text += f"\n\n{words.count_hint(lang)}"
        session.chat.append({"role": "assistant", "content": text})
        title = words.evidence_title(answer, lang)
        summary = words.evidence_summary(answer, lang)
        session.chat.append({"role": "assistant", "content": summary, "metadata": {"title": title, "status": "done"}})
        session.evidence = evidence_markdown(answer, list(verification.grid.cells))
        session.status = words.answered(turn, describe_export(collection, lang), lang)
        yield session

    def _perception_short(self) -> str:
        return "verifiers only" if self.agent.vlm is None else self.agent.vlm.name

    def new_conversation(self, session: Session) -> Session:
        """A new thread on the same pair: the agent forgets the earlier turns and their facts."""
        fresh = session.fresh(
            pair=session.pair,
            before=session.before,
            after=session.after,
            date_files=session.date_files,
            full_size=list(session.date_files),
            pair_summary=session.pair_summary,
            show_changes=session.show_changes,
            fine_grid=session.fine_grid,
        )
        fresh.status = words.status("new_conversation" if session.pair is not None else "welcome", fresh.language)
        return fresh
