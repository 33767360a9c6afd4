"""The public Python API: ``Agent().ask(pair, question)``.

An ``Agent`` owns one compiled graph, one checkpointer (memory, or SQLite when
``settings.checkpoint_db`` is set, so threads survive a restart), one pair store and at most one
DeltaVLM tool. A thread is bound to the pair it started with; a follow-up on another pair in the
same thread is refused instead of silently mixing two places.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent.answer import Answer
from agent.answering.catalog import message
from agent.answering.perception import perception_sentence
from agent.planner import LLMPlanner
from agent.providers import default_provider, mask_provider
from agent.reading import MAX_QUESTION_CHARS
from agent.settings import AgentSettings
from agent.thread_lock import ThreadLocks
from agent.turn.nodes import NODES, TurnContext
from agent.turn.state import (
    CHECKPOINTED_TYPES,
    STATE_VERSION,
    MaskSpec,
    TurnRecord,
    TurnState,
    inline_turns,
    last_fact,
    recent_turns,
)
from deltavlm.config import load_config
from deltavlm.errors import ModelLoadError
from deltavlm.serving.schema import GenerationOptions
from graphs.change_graph import compile_graph
from graphs.checkpoints import checkpointer
from graphs.pair_store import PairStore
from graphs.turn_log import TurnLog
from tools.aoi import read_aoi
from tools.gsd import check_gsd
from tools.masks import ChangeMask, MaskKind, MaskProvider
from tools.pairs import ImagePair, as_pair, with_gsd
from tools.raster import InputError
from tools.verify import Verification
from tools.vlm import DeltaVLMTool, HTTPBackend, InProcessBackend, VLMBackend

KEPT_STATES = 1024
"""Threads whose last saved state an Agent keeps in memory (``Agent._start_state``): a turn on one of them reads
the checkpoint's id, not the whole checkpoint, before the graph loads it."""

MAX_THREAD_ID_CHARS = 512
"""As long as a catalog id may be (batch runs one thread per pair, named by its id)."""


def check_text(text: str, what: str) -> str:
    """Text a store can keep: no lone surrogate (half of a UTF-16 pair), which no UTF-8 file or database holds."""
    bad = next((ch for ch in text if "\ud800" <= ch <= "\udfff"), None)
    if bad is not None:
        raise InputError(f"{what} holds a lone surrogate U+{ord(bad):04X}, which is not text; send valid Unicode")
    return text


def check_thread_id(thread_id: object) -> str:
    """A thread id: non-empty single-line text of at most MAX_THREAD_ID_CHARS characters."""
    if not isinstance(thread_id, str) or not thread_id.strip():
        raise InputError(f"a thread id must be non-empty text, not {thread_id!r}")
    if len(thread_id) > MAX_THREAD_ID_CHARS:
        raise InputError(f"the thread id has {len(thread_id)} characters; the limit is {MAX_THREAD_ID_CHARS}")
    check_text(thread_id, "the thread id")
    if any(ord(ch) < 32 or ch in "\x7f\x85\u2028\u2029" for ch in thread_id):
        raise InputError(f"the thread id {thread_id[:60]!r} holds a control or line-breaking character")
    return thread_id


def check_aoi(path: str | Path, pair: ImagePair) -> None:
    """An areas-of-interest file must read as polygons, and the pair must be on a map to place them: an unplaced
    pair with an AOI is an error now, not a silent answer about the whole image."""
    layer = read_aoi(path)
    if pair.georef is None:
        raise InputError(
            f"{pair.name} has no georeference, so the areas of interest in {layer.source} cannot be placed on it. "
            f"{message('unplaced', 'en')}"
        )


class ThreadPairMismatch(InputError):
    """A thread was asked about a different pair than the one it started with."""


class OldThread(InputError):
    """A thread saved by an earlier version of the agent, whose state this version does not read."""


def _backend_from_settings(settings: AgentSettings) -> VLMBackend | None:
    model = settings.model
    if model.backend == "none":
        return None
    if model.backend == "http":
        if not model.endpoint:
            raise InputError("model backend 'http' needs an endpoint URL")
        return HTTPBackend(
            model.endpoint,
            token=model.token,
            timeout_s=model.timeout_s,
            retries=model.retries,
            options=GenerationOptions(max_new_tokens=model.max_new_tokens),
        )
    if not model.config:
        raise InputError("model backend 'in-process' needs a config (tiny, full, or a YAML path)")
    try:  # a config name that names nothing is a typo to fix now; broken model files below are a fallback
        load_config(model.config)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from exc
    try:
        return InProcessBackend(model.config, checkpoint=model.checkpoint, max_new_tokens=model.max_new_tokens)
    except ImportError as exc:  # the default install has no torch
        raise ModelLoadError(
            f"in-process DeltaVLM needs the model extra ({exc.name or exc} is not installed: pip install -e '.[model]')"
        ) from exc


def _open_db(path: Path) -> sqlite3.Connection:
    """The conversation store, or an InputError naming the file when it cannot be one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        connection.execute("PRAGMA schema_version").fetchone()  # fails here on a file that is not SQLite
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"conversation store {path} cannot be opened as SQLite: {exc}") from exc
    return connection


class Agent:
    """Answers questions about image pairs, with evidence, across the turns of a conversation.

    ``vlm_backend`` overrides ``settings.model``; ``mask_provider`` replaces the classical mask for pairs
    without a user mask; ``planner_model`` (any LangChain chat model with tool calling) reads the questions
    instead of the default reader.
    """

    def __init__(
        self,
        settings: AgentSettings | None = None,
        *,
        vlm_backend: VLMBackend | None = None,
        mask_provider: MaskProvider | None = None,
        planner_model: BaseChatModel | None = None,
    ) -> None:
        self.settings = settings or AgentSettings()
        self.model_problem: str | None = None
        try:
            backend = vlm_backend if vlm_backend is not None else _backend_from_settings(self.settings)
        except ModelLoadError as exc:  # a broken or incomplete model folder: answer from the verifiers, say why
            backend, self.model_problem = None, f"DeltaVLM could not be loaded ({exc})"
        self.vlm = DeltaVLMTool(backend, timeout_s=self.settings.model.timeout_s) if backend else None
        self.default_provider = mask_provider or default_provider(self.settings)
        self.store = PairStore(self.settings.pair_cache_size)
        self.planner = LLMPlanner(planner_model) if planner_model is not None else None
        self._connection: sqlite3.Connection | None = None
        if self.settings.checkpoint_db:
            self._connection = _open_db(Path(self.settings.checkpoint_db))
        self.checkpointer = checkpointer(self._connection, CHECKPOINTED_TYPES)
        self.turn_log = TurnLog(self.checkpointer)
        self.locks = ThreadLocks(self.settings.checkpoint_db)
        self.graph = compile_graph(NODES, TurnState, TurnContext, self.checkpointer, with_model=self.vlm is not None)
        self._saved: OrderedDict[str, tuple[str, TurnState]] = OrderedDict()
        """Per thread: the id of the checkpoint this Agent saved last, and the state it holds."""
        self._saved_guard = threading.Lock()

    @property
    def perception(self) -> str:
        """Which perception is active, in words (shown by the CLI and the page)."""
        return perception_sentence(self.model_problem, self.vlm.name if self.vlm else None)

    def _context(self) -> TurnContext:
        return TurnContext(
            store=self.store,
            rules=self.settings.rules,
            artefact_dir=self.settings.artefact_dir,
            geojson_crs=self.settings.geojson_crs,
            vlm=self.vlm,
            settings=self.settings,
            planner=self.planner,
            model_problem=self.model_problem,
            turn_log=self.turn_log,
        )

    def thread_state(self, thread_id: str) -> TurnState:
        """The checkpointed state of a thread (empty for a new one); an older version's thread is refused."""
        return self._load(thread_id)[0]

    def _load(self, thread_id: str) -> tuple[TurnState, list[TurnRecord]]:
        """The thread's state with its recent window (from the turn log), and the turns a version-2 checkpoint
        still holds in itself (moved to the turn log on the thread's next turn; none for a current thread)."""
        config = {"configurable": {"thread_id": thread_id}}
        values: dict[str, Any] = dict(self.graph.get_state(config).values or {})
        if not values:
            return TurnState(), []
        records: list[TurnRecord] = []
        if values.get("version") == 2:  # the graph no longer has a "turns" channel: read it from the checkpoint
            saved = self.checkpointer.get_tuple(config)
            records, fields = inline_turns(saved.checkpoint["channel_values"].get("turns", []) if saved else [])
            values.update(fields)
        elif values.get("version") == 3:  # every turn is in the log; which one stated facts last is not saved
            logged = self.turn_log.read(thread_id, values.get("turns_done", 0)).values()
            fact = last_fact([TurnRecord.model_validate_json(r) for r in logged])
            values |= {"version": STATE_VERSION, "fact_turn": fact.turn if fact is not None else None}
        if values.get("version") != STATE_VERSION:
            raise OldThread(
                f"thread {thread_id} was saved by an earlier version of changeagent (state version "
                f"{values.get('version', 1)}, this one reads {STATE_VERSION}); start a new thread"
            )
        state = TurnState.model_validate(values)
        if records:
            return state, records
        wanted = recent_turns(state.turns_done, state.fact_turn)
        logged = self.turn_log.read(thread_id, state.turns_done, wanted)
        recent = [TurnRecord.model_validate_json(logged[t]) for t in wanted if t in logged]
        return state.model_copy(update={"recent": recent}), []

    def _start_state(self, thread_id: str) -> tuple[TurnState, list[TurnRecord]]:
        """The state a turn starts from: the one this Agent saved last when it is still the thread's newest
        checkpoint (another process, or a failed save, makes a new one and the checkpoint is loaded), so a turn
        deserialises its checkpoint once (in the graph) instead of twice. Only the thread's binding (pair, mask,
        GSD, areas of interest) is read from it."""
        with self._saved_guard:
            kept = self._saved.get(thread_id)
        if kept is not None and kept[0] == self.turn_log.newest(thread_id):
            return kept[1], []
        return self._load(thread_id)

    def _keep_saved(self, thread_id: str, checkpoint_id: str | None, values: dict[str, Any]) -> None:
        with self._saved_guard:
            self._saved.pop(thread_id, None)
            if checkpoint_id is not None:
                self._saved[thread_id] = (checkpoint_id, TurnState.model_validate(values).between_turns())
                while len(self._saved) > KEPT_STATES:
                    self._saved.popitem(last=False)

    def ask(
        self,
        pair: ImagePair | Sequence,
        question: str,
        *,
        thread_id: str | None = None,
        mask: str | Path | None = None,
        mask_kind: MaskKind = "auto",
        mask_category: str | None = None,
        gsd_m: float | None = None,
        aoi: str | Path | None = None,
    ) -> Answer:
        """Answer ``question`` about ``pair`` (an ImagePair, two paths or two arrays).

        ``thread_id`` continues a conversation; ``mask`` is a change-mask file for this pair, kept for
        the rest of the thread, read as ``mask_kind`` (binary masks: ``mask_category`` names their category).
        ``gsd_m`` is the ground sampling distance in metres per pixel of a plain pair (kept for the thread): the
        computed mask's scale and stated confidence and the areas follow it; a georeferenced pair's own pixel
        size wins over it, and the answer says when they disagree. ``aoi`` is a vector file of areas of interest
        (GeoJSON, GeoPackage, Shapefile; any CRS), kept for the thread: questions about "the parcels", "plot 12" or
        "which fields changed?" are answered per polygon (``tools.aoi``). The pair must be placed on a map.
        """
        if not isinstance(question, str):
            raise InputError(f"the question must be text, not {type(question).__name__}")
        if not question.strip():
            raise InputError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        check_text(question, "the question")
        if gsd_m is not None:
            gsd_m = check_gsd(gsd_m)
        image_pair = as_pair(pair)
        thread_id = check_thread_id(thread_id) if thread_id else uuid.uuid4().hex
        with self.locks.hold(thread_id):  # one turn at a time per thread, across processes: no lost turn
            return self._ask_locked(image_pair, question, thread_id, mask, mask_kind, mask_category, gsd_m, aoi)

    def _ask_locked(
        self,
        image_pair: ImagePair,
        question: str,
        thread_id: str,
        mask: str | Path | None,
        mask_kind: MaskKind,
        mask_category: str | None,
        gsd_m: float | None,
        aoi: str | Path | None = None,
    ) -> Answer:
        state, inline = self._start_state(thread_id)
        if state.pair_id and state.pair_id != image_pair.pair_id:
            raise ThreadPairMismatch(
                f"thread {thread_id} is about pair {state.pair_name} ({state.pair_id[:12]}); "
                "start a new thread for another pair"
            )
        mask_spec = MaskSpec(path=str(mask), kind=mask_kind, category=mask_category) if mask is not None else state.mask
        gsd_m = float(gsd_m) if gsd_m is not None else state.gsd_m
        image_pair = with_gsd(image_pair, gsd_m)
        aoi_path = str(Path(aoi).resolve()) if aoi is not None else state.aoi
        if aoi is not None:
            check_aoi(aoi, image_pair)
        store_key = self.store.put(image_pair, self._provider(mask_spec))
        paths = [str(image_pair.t1_path), str(image_pair.t2_path)] if image_pair.t1_path else None
        moved: dict[str, object] = {}
        if inline:  # a version-2 thread: its turns go to the turn log, its state takes the recent window
            for record in inline:
                self.turn_log.write(thread_id, record.turn, record.model_dump_json())
            moved = {"turns_done": state.turns_done, "said": state.said}
        binding = {
            "pair_id": image_pair.pair_id,
            "pair_name": image_pair.name,
            "pair_paths": paths,
            "store_key": store_key,
            "mask": mask_spec,
            "gsd_m": gsd_m,
            "aoi": aoi_path,
        }
        # Only what differs from the saved state is written: an unchanged field keeps its checkpointed value
        changed = {name: value for name, value in binding.items() if getattr(state, name) != value}
        # fact_turn always: a migrated thread's checkpoint lacks it, and the window a restart rebuilds depends on it
        start = {**moved, **changed, "version": STATE_VERSION, "fact_turn": state.fact_turn, "recent": state.recent}
        start["question"] = question
        result = self._invoke(start, thread_id)
        answer: Answer = result["answer"]
        mask_used = self.store.get(store_key).mask if answer.verification is not None else None
        return answer.model_copy(update={"thread_id": thread_id, "mask": mask_used})

    def _invoke(self, start: dict[str, object], thread_id: str) -> dict[str, Any]:
        """Run one turn; a store that cannot take its checkpoint (a full disk, a read-only file) is one named
        error, and the thread keeps its last saved turn."""
        try:
            # One checkpoint per turn, written when the turn ends: a turn is the unit a thread keeps (a crash in the
            # middle of one leaves the thread at its last whole turn), and the steps between need no copy each.
            result = self.graph.invoke(
                start, config={"configurable": {"thread_id": thread_id}}, context=self._context(), durability="exit"
            )
            newest = self.turn_log.prune(thread_id)  # the newest checkpoint is all a restart needs
            self._keep_saved(thread_id, newest, result)
            return result
        except sqlite3.OperationalError as exc:
            where = self.settings.checkpoint_db or "the conversation store"
            raise InputError(
                f"could not save the turn of thread {thread_id} in {where}: {exc}; the thread keeps its earlier "
                "turns (free some disk space, or pass another --db)"
            ) from exc

    def _provider(self, mask: MaskSpec | None) -> MaskProvider:
        """The user's mask file when there is one, else the agent's default provider; on the pair's valid data."""
        if mask is None:
            return mask_provider(self.settings, default=self.default_provider)
        return mask_provider(self.settings, mask.path, mask.kind, mask.category)

    def verified(
        self,
        pair: ImagePair | Sequence,
        *,
        mask: str | Path | None = None,
        mask_kind: MaskKind = "auto",
        mask_category: str | None = None,
        gsd_m: float | None = None,
    ) -> tuple[ChangeMask, Verification]:
        """The mask and verdicts ``ask`` uses for ``pair`` with these options, without a question (made once)."""
        spec = MaskSpec(path=str(mask), kind=mask_kind, category=mask_category) if mask is not None else None
        image_pair = with_gsd(as_pair(pair), float(gsd_m) if gsd_m is not None else None)
        key = self.store.put(image_pair, self._provider(spec))
        return self.store.verified(key, self.settings.rules)

    def adopt(
        self,
        pair: ImagePair,
        mask: ChangeMask,
        verification: Verification,
        *,
        mask_file: str | Path | None = None,
        mask_kind: MaskKind = "auto",
        mask_category: str | None = None,
    ) -> None:
        """Take a mask and verdict computed elsewhere (a batch worker) for ``pair`` read as ``ask`` would read it
        (``mask_file`` or the default provider), so the questions that follow do not compute them again."""
        spec = MaskSpec(path=str(mask_file), kind=mask_kind, category=mask_category) if mask_file is not None else None
        self.store.seed(pair, self._provider(spec), mask, verification)

    def history(self, thread_id: str) -> list[TurnRecord]:
        """Finished turns of a thread: question, the request it was read as, the answer.

        From the turn log (a turn writes its record there before its checkpoint is saved).
        """
        thread_id = check_thread_id(thread_id)
        state, inline = self._load(thread_id)
        if inline:
            return inline
        return [TurnRecord.model_validate_json(r) for r in self.turn_log.read(thread_id, state.turns_done).values()]

    def end_thread(self, thread_id: str) -> None:
        """Forget a conversation (its checkpoints and turn records); batch runs end each pair's thread when done."""
        with self.locks.hold(thread_id):
            self.turn_log.forget(thread_id)
            self._keep_saved(thread_id, None, {})

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
