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

from agent.api import Agent
from agent.mask_options import MASK_KINDS
from agent.page.evidence import answer_text, evidence_markdown, evidence_summary, preview, scrub
from tools.geojson import changes_geojson, write_geojson
from tools.masks import MaskKind, UserMaskProvider
from tools.naming import file_safe_name
from tools.overlay import render_comparison, render_overlay, save_png
from tools.pairs import ImagePair, load_pair
from tools.raster import DEFAULT_MAX_PIXELS, InputError

log = logging.getLogger(__name__)

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
MASK_CATEGORIES = ("none", "road", "building")
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
            comparison = save_png(preview(render_comparison(pair)), self._session_dir(fresh) / "comparison.png")
        except InputError as exc:
            fresh.status = _problem(scrub(str(exc), files.values()))
            return fresh
        except Exception as exc:  # a reader bug must not take the page down: log it, say it in one line
            log.exception("loading the pair failed")
            fresh.status = _problem(
                f"could not load the pair ({type(exc).__name__}: {scrub(str(exc), files.values())})"
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
            overlay = save_png(preview(render_overlay(pair, mask, verification)), folder / f"turn{turn}_overlay.png")
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
            message = scrub(str(exc), [ref.t1, ref.t2, ref.mask])
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
        session.chat.append({"role": "assistant", "content": answer_text(answer)})
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
