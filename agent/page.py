"""The Gradio chat page over the Agent API: pick or upload a pair, chat, see the evidence and the overlay.

The page logic (:class:`ChangePage`) is plain Python that returns a :class:`Session` per callback, so
it can be tested without a browser or a server; :func:`build_blocks` only lays out components and wires
them to those callbacks. One :class:`agent.api.Agent` serves every visitor: each browser session gets its
own conversation thread, and a lock keeps two answers from running inside the agent at once (its pair
store and graph are not meant for concurrent use), while Gradio's queue keeps the page responsive and
shows waiting visitors their place.

Everything a user can get wrong (sizes that differ, a file that is not an image, a file over the size
limit, a mask of the wrong size) becomes a message in the page's status box, never a traceback; an
unexpected failure is logged with its traceback on the server and reported in one line on the page.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import cv2
import gradio as gr
import numpy as np
from pydantic import BaseModel, Field

from agent.answer import Answer
from agent.api import Agent
from agent.nodes import file_safe_name
from agent.settings import AgentSettings, ModelSettings
from deltavlm.rules import CELL_IDS
from tools.geojson import changes_geojson, write_geojson
from tools.masks import MaskKind, UserMaskProvider
from tools.overlay import render_comparison, render_overlay, save_png
from tools.pairs import ImagePair, load_pair
from tools.raster import DEFAULT_MAX_PIXELS, InputError

log = logging.getLogger(__name__)

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
MASK_KINDS: tuple[str, ...] = get_args(MaskKind)
MASK_CATEGORIES = ("none", "road", "building")
DEFAULT_MAX_FILE_MB = 200
"""Largest upload the page accepts, per file; Gradio refuses bigger uploads before they reach Python."""
EXAMPLE_SEEDS: tuple[int, ...] = (7, 11, 23)
PREVIEW_MAX_SIDE = 2048
"""Pictures sent to the browser are shrunk to this side so a scene-sized pair does not stall the page."""
PAIR_CACHE_SIZE = 8
QUESTION_EXAMPLES = (
    "Has anything changed?",
    "How many new buildings are there?",
    "and where?",
    "Describe the changes.",
    "Export the changed cells as GeoJSON",
)
WELCOME = "Load a pair to begin: upload a before and an after image, or pick a synthetic example."
NO_EVIDENCE = "_Ask a question: the evidence behind each answer appears here._"

ProgressFn = Callable[..., Any]


def _no_progress(*_args: Any, **_kwargs: Any) -> None:
    """Progress sink for callers outside a Gradio event (tests, scripts)."""


def _problem(message: str) -> str:
    return f"⚠️ **Problem:** {message}"


class PairRef(BaseModel):
    """What a session needs to find its pair again: the files, the mask choice, and a short description."""

    t1: str
    t2: str
    mask: str | None = None
    mask_kind: MaskKind = "auto"
    mask_category: str | None = None
    name: str
    pair_id: str
    width: int
    height: int
    crs: str | None = None


class Session(BaseModel):
    """One browser session's view: its pair, conversation thread, chat and the latest pictures.

    The session, not the browser, is the source of truth for the chat, so a page that was reloaded or a
    client that sends a stale history cannot desynchronise the chat from the agent's thread.
    """

    pair: PairRef | None = None
    thread_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    chat: list[dict[str, Any]] = Field(default_factory=list)
    turns: int = 0
    comparison: str | None = None
    overlay: str | None = None
    geojson: str | None = None
    evidence: str = NO_EVIDENCE
    status: str = WELCOME
    pair_summary: str = Field("", description="What is loaded, shown above the latest status line.")
    draft: str = Field("", description="Text left in the question box (kept when a question was refused).")


@dataclass(frozen=True)
class Example:
    """A bundled synthetic pair, generated at start-up (no data files ship with the project)."""

    label: str
    name: str
    t1: Path
    t2: Path
    mask: Path


def model_settings(
    model_config: str | None = None,
    checkpoint: str | Path | None = None,
    endpoint: str | None = None,
    timeout_s: float = 60.0,
) -> ModelSettings:
    """Map the page's command-line flags to ``ModelSettings``; an endpoint wins over an in-process config."""
    if endpoint:
        return ModelSettings(
            backend="http", endpoint=endpoint, token=os.environ.get("CHANGEAGENT_TOKEN"), timeout_s=timeout_s
        )
    if model_config:
        return ModelSettings(
            backend="in-process",
            config=model_config,
            checkpoint=Path(checkpoint) if checkpoint else None,
            timeout_s=timeout_s,
        )
    return ModelSettings(timeout_s=timeout_s)


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
        self._pairs: OrderedDict[tuple[str, str], ImagePair] = OrderedDict()
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
            "Masks: LEVIR-MCI values (0 / 128 road / 255 building), class indices, or binary."
        )

    # --------------------------------------------------------------------------------------- pairs

    def _check_file(self, path: str, role: str) -> None:
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        if size > self.max_file_mb * 1024 * 1024:
            raise InputError(
                f"the {role} file {Path(path).name} is {size / 1024 / 1024:.1f} MB, over this page's limit of "
                f"{self.max_file_mb:g} MB; analyse big scenes with the batch runner"
            )

    def _pair(self, t1: str, t2: str) -> ImagePair:
        key = (t1, t2)
        with self._pairs_lock:
            if key in self._pairs:
                self._pairs.move_to_end(key)
                return self._pairs[key]
        pair = load_pair(t1, t2, max_pixels=self.max_pixels)
        with self._pairs_lock:
            self._pairs[key] = pair
            while len(self._pairs) > PAIR_CACHE_SIZE:
                self._pairs.popitem(last=False)
        return pair

    def _session_dir(self, session: Session) -> Path:
        folder = self.work_dir / "sessions" / session.thread_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

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
    ) -> Session:
        """Check and load a pair (and its optional mask); a new pair or mask starts a new conversation.

        ``name`` labels the pair in the page and in the GeoJSON (default: the before file's name).
        """
        fresh = Session()
        if not t1 or not t2:
            missing = "before (t1)" if not t1 else "after (t2)"
            fresh.status = f"Now upload the {missing} image." if (t1 or t2) else WELCOME
            return fresh
        category = None if mask_category in (None, "", "none") else mask_category
        kind: MaskKind = mask_kind if mask_kind in MASK_KINDS else "auto"  # type: ignore[assignment]
        files = {"before (t1)": t1, "after (t2)": t2, "mask": mask}
        try:
            progress(0.1, desc="checking the files")
            for role, path in files.items():
                if path:
                    self._check_file(path, role)
            progress(0.3, desc="reading the pair")
            pair = self._pair(t1, t2)
            if mask:
                progress(0.6, desc="reading the change mask")
                UserMaskProvider(mask, kind=kind, binary_category=category).provide(pair)
            progress(0.8, desc="rendering the before/after comparison")
            comparison = save_png(_preview(render_comparison(pair)), self._session_dir(fresh) / "comparison.png")
        except InputError as exc:
            fresh.status = _problem(_scrub(str(exc), files.values()))
            return fresh
        except Exception as exc:  # a reader bug must not take the page down: log it, say it in one line
            log.exception("loading the pair failed")
            fresh.status = _problem(
                f"could not load the pair ({type(exc).__name__}: {_scrub(str(exc), files.values())})"
            )
            return fresh
        fresh.pair = PairRef(
            t1=t1,
            t2=t2,
            mask=mask or None,
            mask_kind=kind,
            mask_category=category,
            name=name or Path(t1).stem,
            pair_id=pair.pair_id,
            width=pair.shape[1],
            height=pair.shape[0],
            crs=pair.georef.crs if pair.georef else None,
        )
        fresh.comparison = str(comparison)
        fresh.pair_summary = self._pair_summary(fresh.pair)
        fresh.status = (
            "✅ Pair loaded; a new conversation started." if session.pair is not None else "✅ Pair loaded."
        ) + " Ask a question."
        return fresh

    def _pair_summary(self, ref: PairRef) -> str:
        where = f"georeferenced ({ref.crs})" if ref.crs else "no georeference (GeoJSON in pixel coordinates)"
        if ref.mask:
            detail = f" as {ref.mask_category} change" if ref.mask_category else ""
            mask = f"your mask `{Path(ref.mask).name}` ({ref.mask_kind}{detail}), taken as ground truth"
        else:
            mask = "none uploaded, so the classical detector finds changes (it cannot tell roads from buildings)"
        return f"**Pair:** {ref.name}, {ref.width}×{ref.height} px, {where}.  \n**Change mask:** {mask}."

    def example_choices(self) -> list[str]:
        return list(self.examples)

    def load_example(
        self, session: Session, label: str | None, use_mask: bool = True, progress: ProgressFn = _no_progress
    ) -> tuple[Session, str | None, str | None, str | None, str, str]:
        """Load a bundled example; also returns what the upload fields should show (files, mask kind, category)."""
        example = self.examples.get(label or "")
        if example is None:
            fresh = Session()
            fresh.status = _problem(f"unknown example {label!r}; choose one from the list")
            return fresh, None, None, None, "auto", "none"
        mask = str(example.mask) if use_mask else None
        kind = "levir-mci" if use_mask else "auto"
        loaded = self.load_files(
            session, str(example.t1), str(example.t2), mask, kind, None, progress=progress, name=example.name
        )
        return loaded, str(example.t1), str(example.t2), mask, kind, "none"

    # ------------------------------------------------------------------------------------ questions

    def ask(self, session: Session, question: str, progress: ProgressFn = _no_progress) -> Iterator[Session]:
        """Answer one question in the session's thread; yields once with the question shown, then the answer."""
        session = session.model_copy(deep=True)
        question = (question or "").strip()
        if session.pair is None:
            session.status = _problem("load a pair first (upload two images or pick an example), then ask.")
            session.draft = question
            yield session
            return
        if not question:
            session.status = "Type a question first, e.g. “Has anything changed?”"
            yield session
            return
        session.draft = ""
        session.chat.append({"role": "user", "content": question})
        session.chat.append(
            {"role": "assistant", "content": "", "metadata": {"title": "Working on it…", "status": "pending"}}
        )
        session.status = "Answering…"
        yield session.model_copy(deep=True)  # a snapshot: the session goes on changing below
        session.chat.pop()
        ref = session.pair
        try:
            progress(0.05, desc="reading the pair")
            pair = self._pair(ref.t1, ref.t2)
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
                )
                mask, verification = self.agent.store.verified(pair.pair_id, self.agent.settings)
            progress(0.8, desc="drawing the overlay")
            folder = self._session_dir(session)
            turn = session.turns + 1
            overlay = save_png(_preview(render_overlay(pair, mask, verification)), folder / f"turn{turn}_overlay.png")
            geojson = answer.artefacts.get("geojson")
            if not geojson:
                collection = changes_geojson(
                    verification,
                    mask,
                    pair.georef,
                    pair_name=ref.name,
                    objects=True,
                    crs=self.agent.settings.geojson_crs,
                )
                geojson = str(
                    write_geojson(collection, folder / f"{file_safe_name(ref.name, 'pair')}_turn{turn}_changes.geojson")
                )
        except InputError as exc:
            message = _scrub(str(exc), [ref.t1, ref.t2, ref.mask])
            session.chat.append({"role": "assistant", "content": f"⚠️ {message}"})
            session.status = _problem(message)
            yield session
            return
        except Exception as exc:  # keep serving: log the traceback here, one line in the page
            log.exception("answering %r failed", question)
            message = f"the agent failed on this question ({type(exc).__name__}: {exc}); the error is logged"
            session.chat.append({"role": "assistant", "content": f"⚠️ {message}"})
            session.status = _problem(message)
            yield session
            return
        session.turns = turn
        session.overlay = str(overlay)
        session.geojson = geojson
        cells_shown = list(verification.grid.cells)
        session.chat.append({"role": "assistant", "content": _answer_text(answer)})
        session.chat.append(
            {
                "role": "assistant",
                "content": evidence_summary(answer),
                "metadata": {
                    "title": f"Evidence · {answer.intent} · confidence {answer.confidence:.2f}",
                    "status": "done",
                },
            }
        )
        session.evidence = evidence_markdown(answer, cells_shown)
        session.status = f"Answered turn {turn}. The overlay and the GeoJSON below are updated."
        yield session

    def _perception_short(self) -> str:
        return "verifiers only" if self.agent.vlm is None else self.agent.vlm.name

    def new_conversation(self, session: Session) -> Session:
        """A new thread on the same pair: the agent forgets the earlier turns and their facts."""
        fresh = Session(pair=session.pair, comparison=session.comparison, pair_summary=session.pair_summary)
        fresh.status = "New conversation started on the same pair." if session.pair is not None else WELCOME
        return fresh


# ------------------------------------------------------------------------------------------- text


def _scrub(message: str, paths: Any) -> str:
    """Show uploaded files by name: server paths mean nothing to a visitor and should not leak."""
    for path in paths:
        if path:
            message = message.replace(str(Path(path)), Path(path).name)
    return message


def _answer_text(answer: Answer) -> str:
    """The answer as the agent wrote it, with server paths of artefacts replaced by where to find them."""
    text = answer.text
    for kind, path in answer.artefacts.items():
        where = "the download panel" if kind == "geojson" else "the overlay panel"
        text = text.replace(path, f"{Path(path).name} (see {where})")
    return text


def _mask_line(answer: Answer) -> str:
    source = answer.evidence.mask
    if source is None:
        return "no mask"
    categories = "road/building per pixel" if source.categorical else "changed / unchanged only"
    return f"{source.provider} ({source.kind}; {categories}), confidence {source.confidence:.2f}"


def evidence_summary(answer: Answer) -> str:
    """A few lines under each answer in the chat: tools, mask, model, conflicts."""
    lines = [f"**Tools:** {' → '.join(answer.evidence.tools)}", f"**Mask:** {_mask_line(answer)}"]
    model = answer.evidence.model
    if model is not None:
        said = f"said “{_clip(model.text, 160)}”" if model.ok else f"did not answer ({_clip(model.error, 160)})"
        lines.append(f"**DeltaVLM:** {said}, {model.latency_s:.2f} s")
    if answer.conflicts:
        lines.append(f"**Conflicts:** {len(answer.conflicts)} (see the evidence panel)")
    return "  \n".join(lines)


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def evidence_markdown(answer: Answer, overlay_cells: Sequence[str]) -> str:
    """The full evidence of the latest answer, for a person to check: route, numbers, grid, model, conflicts."""
    ev = answer.evidence
    out = [
        f"**Question (turn {answer.turn + 1}):** {answer.question}",
        f"**Intent:** {answer.intent} — {ev.route.reason}"
        + (" (follow-up)" if ev.route.follow_up else "")
        + f" · **answer confidence** {answer.confidence:.2f} · **model used:** {'yes' if answer.model_used else 'no'}",
        f"**Tools:** {' → '.join(ev.tools)}",
        f"**Change mask:** {_mask_line(answer)}" + (f"  \n_{ev.mask.detail}_" if ev.mask and ev.mask.detail else ""),
    ]
    numbers = ev.verifier or {}
    if numbers:
        out.append("#### Verifier numbers (OpenCV rules on the mask)")
        rows = ["| measure | value |", "|---|---|"]
        if "changed" in numbers:
            rows.append(f"| changed | {_value(numbers['changed'])} |")
        if "changed_pixels" in numbers:
            fraction = numbers.get("changed_fraction", 0.0)
            rows.append(f"| changed pixels | {numbers['changed_pixels']:,} ({fraction:.1%} of the image) |")
        if numbers.get("counts") is not None:
            rows.append(f"| objects per category | {_value(numbers['counts'])} |")
        if numbers.get("changed_regions") is not None:
            rows.append(f"| changed regions | {numbers['changed_regions']} |")
        rows.append(f"| changed cells | {_value(numbers.get('cells') or [])} |")
        out.append("\n".join(rows))
        fractions = numbers.get("cell_fractions") or {}
        if fractions:
            out.append(_grid_table(fractions, set(numbers.get("cells") or [])))
        for name, rule in (numbers.get("rules") or {}).items():
            out.append(f"- _{name} rule:_ {rule}")
    if ev.model is not None:
        model = ev.model
        out.append("#### DeltaVLM")
        out.append(f"- backend: {model.backend}; latency {model.latency_s:.2f} s")
        out.append(f"- instruction: “{_clip(model.instruction, 300)}”")
        out.append(f"- reply: “{_clip(model.text, 500)}”" if model.ok else f"- no answer: {_clip(model.error, 500)}")
        if ev.model_parsed:
            out.append(f"- read from the reply: {_value(ev.model_parsed)}")
    if answer.conflicts:
        out.append("#### Conflicts and how they were resolved")
        for c in answer.conflicts:
            out.append(
                f"- **{c.fact}:** kept {_value(c.kept)} from {c.kept_source} over {_value(c.rejected)} from "
                f"{c.rejected_source} — {c.resolution}"
            )
    else:
        out.append("**Conflicts:** none")
    if ev.facts:
        out.append("#### Facts stated in this answer")
        for fact in ev.facts.values():
            out.append(
                f"- {fact['key']} = {_value(fact['value'])} ({fact['source']}, confidence {fact['confidence']:.2f})"
            )
    if answer.cells is not None and sorted(answer.cells) != sorted(overlay_cells):
        out.append(
            f"_Note: the answer names cells {_value(answer.cells)}; the overlay outlines the mask's cells "
            f"{_value(list(overlay_cells))}._"
        )
    return "\n\n".join(out)


def _grid_table(fractions: dict[str, float], changed: set[str]) -> str:
    """The 3×3 grid as a table of changed fractions; changed cells (over the threshold) in bold."""
    rows = ["| | left | centre | right |", "|---|---|---|---|"]
    for r, label in enumerate(("top", "centre", "bottom")):
        cells = []
        for cell in CELL_IDS[r * 3 : r * 3 + 3]:
            text = f"{cell} {fractions.get(cell, 0.0):.1%}"
            cells.append(f"**{text} ✔**" if cell in changed else text)
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _preview(image: np.ndarray) -> np.ndarray:
    """Shrink a picture for the browser (area interpolation keeps small changes visible as tints)."""
    longest = max(image.shape[:2])
    if longest <= PREVIEW_MAX_SIDE:
        return image
    factor = PREVIEW_MAX_SIDE / longest
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------------ layout


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
            session.comparison,
            session.overlay,
            session.evidence,
            session.geojson,
        )

    def on_files(
        session: Session,
        t1: str | None,
        t2: str | None,
        mask: str | None,
        kind: str,
        category: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the tracker by this default)
    ) -> tuple[Any, ...]:
        return view(shown(request, page.load_files(session, t1, t2, mask, kind, category, progress=progress)))

    def on_example(
        session: Session,
        label: str,
        use_mask: bool,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        loaded, t1, t2, mask, kind, category = page.load_example(session, label, use_mask, progress=progress)
        return (*view(shown(request, loaded)), t1, t2, mask, kind, category)

    def on_ask(
        session: Session,
        question: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> Iterator[tuple[Any, ...]]:
        for step in page.ask(session, question, progress=progress):
            if latest.superseded(request.session_hash, session.thread_id):
                log.info("dropping an answer for a pair or conversation the tab has left")
                yield tuple(gr.skip() for _ in ask_outputs)
                return
            yield (*view(step), step.draft)

    def on_new(session: Session, request: gr.Request) -> tuple[Any, ...]:
        return view(shown(request, page.new_conversation(session)))

    def shown(request: gr.Request, session: Session) -> Session:
        latest.record(request.session_hash, session.thread_id)
        return session

    def on_close(request: gr.Request) -> None:
        latest.forget(request.session_hash)

    latest = LatestThreads()

    with gr.Blocks(title="changeagent: change analysis", delete_cache=(3600, 86400)) as blocks:
        gr.Markdown(
            "# changeagent — what changed between two images?\n"
            "Load a before/after pair, then ask in plain language: *has anything changed?*, *how many new "
            "buildings?*, *where?*, *describe the changes*, *export the changed cells*. Every answer shows "
            "the evidence it rests on."
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
                    with gr.Row():
                        kind = gr.Dropdown(list(MASK_KINDS), value="auto", label="Mask values", elem_id="mask-kind")
                        category = gr.Dropdown(
                            list(MASK_CATEGORIES), value="none", label="Binary mask shows", elem_id="mask-category"
                        )
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
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("**Changed areas and the 3×3 grid on the after image** (updated with every answer)")
                overlay = gr.Image(
                    label="Overlay",
                    show_label=False,
                    type="filepath",
                    interactive=False,
                    elem_id="overlay",
                    height=560,
                    buttons=["download", "fullscreen"],
                )
            with gr.Column():
                gr.Markdown("**Before / after**")
                comparison = gr.Image(
                    label="Before / after",
                    show_label=False,
                    type="filepath",
                    interactive=False,
                    elem_id="comparison",
                    height=560,
                    buttons=["fullscreen"],
                )
        with gr.Row(equal_height=False):
            with gr.Column(scale=2), gr.Accordion("Evidence for the latest answer", open=True):
                evidence = gr.Markdown(NO_EVIDENCE, elem_id="evidence")
            with gr.Column(scale=1):
                geojson = gr.File(
                    label="GeoJSON of the changed cells and objects", interactive=False, elem_id="geojson"
                )

        outputs = [session, status, chat, comparison, overlay, evidence, geojson]
        file_inputs = [session, t1, t2, mask, kind, category]
        hidden: dict[str, Any] = {"api_visibility": "private"}
        # File events run one at a time, in arrival order, so uploading t1 then t2 quickly cannot end with
        # the t1-only event's "now upload t2" overwriting the loaded pair. Progress shows where the work
        # lands, not over every output, so the status box stays readable.
        loading: dict[str, Any] = {
            "show_progress_on": [comparison],
            "concurrency_limit": 1,
            "concurrency_id": "pair-files",
        }
        # One public endpoint for loading files (for scripts and the gradio_client tests); the rest are private.
        t1.upload(on_files, file_inputs, outputs, api_name="load_pair", **loading)
        t2.upload(on_files, file_inputs, outputs, **hidden, **loading)
        mask.upload(on_files, file_inputs, outputs, **hidden, **loading)
        for component in (t1, t2, mask):
            component.clear(on_files, file_inputs, outputs, **hidden, **loading)
        kind.input(on_files, file_inputs, outputs, **hidden, **loading)
        category.input(on_files, file_inputs, outputs, **hidden, **loading)
        load_example.click(
            on_example,
            [session, example, use_mask],
            [*outputs, t1, t2, mask, kind, category],
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
            "show_progress_on": [chat, overlay],
        }
        send.click(**ask_args, api_name="ask")
        question.submit(**ask_args, **hidden)
        new.click(on_new, [session], outputs, api_name="new_conversation")
        chat.clear(on_new, [session], outputs, **hidden)  # the chat's own bin icon also starts afresh
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
