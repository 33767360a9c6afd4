"""What the page says in its chat and status line, in the visitor's language: problems, confirmations, hints.

Every problem is said twice, as the assistant's reply in the chat (where the visitor is looking) and in the
status line; both come from here so they cannot drift apart. The words are the catalogs' ``page:`` entries.

Which language: a reply to a question is in the question's language (the reader decides it); anything else the
page says (a pair loaded or refused, a placing, areas of interest) is in :func:`visitor_language`: the browser's
Accept-Language when it names one of the catalogs' languages, else the language of the visitor's last question,
else English. A tool's error detail (an ``InputError`` naming the file and the problem) is quoted as the tool wrote
it, in English: it is a fact about the file, and the advice picked from it relies on its words.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agent.answer import Answer
from agent.answering.catalog import LANGUAGES, SOURCE
from agent.answering.numbers import decimal, integer, percent, plural, significant
from agent.answering.wording import join, noun, say
from agent.mask_options import MASK_CATEGORY_LABEL, MASK_KIND_LABEL
from tools.verify import Verification

# Markers at the head of page messages: glyphs every text font family has (DejaVu Sans, Liberation, Noto Sans),
# never emoji, so a browser without an emoji font shows them instead of empty boxes.
MARK_OK = "✓"
MARK_PROBLEM = "⚠"  # U+26A0 without the emoji variation selector: drawn as text
MARK_AGAIN = "↻"
MARK_PLACE = "◎"
MARKS = (MARK_OK, MARK_PROBLEM, MARK_AGAIN, MARK_PLACE)

_ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("differ in size", "different pixel grids", "different CRS", "is georeferenced", "world file"), "grid"),
    (("over this page's limit", "over the limit of"), "limit"),
    (("characters; the limit is",), "question"),
    (("not a readable image", "could not be read", "no bands", "not found"), "unreadable"),
    (("bounds", "CRS"), "bounds"),
    (("mask",), "mask"),
)
"""What to do about a tool's problem, picked by the words of its (English) detail: needles → ``page:advice:`` key."""


# ------------------------------------------------------------------------------------------------ language


def accepted_language(header: str | None) -> str | None:
    """The catalogs' language the browser prefers most (Accept-Language, q-values honoured), or None."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        lang = tag.strip().lower().replace("_", "-").split("-")[0]
        if lang in LANGUAGES and weight > 0:
            ranked.append((-weight, position, lang))
    return min(ranked)[2] if ranked else None


def visitor_language(browser: str | None, last_question: str | None) -> str:
    """The language of what the page says outside a question's reply: the browser's, the last question's, English."""
    for lang in (browser, last_question):
        if lang in LANGUAGES:
            return lang
    return SOURCE


# ------------------------------------------------------------------------------------------------ problems


def file_label(role: str, path: str | None) -> str:
    """How an error detail names a file: its role and its name (dates of a LEVIR pair share one file name).

    English, like the tools' error details it is substituted into."""
    return f"the {role} file {Path(path).name}" if path else f"the {role} file"


def too_big(label: str, size_mb: float, limit_mb: float) -> str:
    """The page's own size check, worded like the tools' error details (English, naming the file)."""
    return f"{label} is {size_mb:.1f} MB, over this page's limit of {limit_mb:g} MB"


def advice(detail: str, lang: str, *, fallback: bool = True) -> str | None:
    """What to do about a problem, picked by what its detail says (None when nothing fits and no fallback)."""
    for needles, key in _ADVICE:
        if any(needle in detail for needle in needles):
            return say(f"page:advice:{key}", lang, kind_label=MASK_KIND_LABEL, category_label=MASK_CATEGORY_LABEL)
    return say("page:advice:other", lang) if fallback else None


def _problem(frame: str, detail: str, lang: str, *, fallback: bool = True) -> str:
    what = advice(detail, lang, fallback=fallback)
    head = f"{MARK_PROBLEM} {say(frame, lang)} {_sentence(detail)}"
    return head + (f"\n\n{say('page:what_to_do', lang, advice=what)}" if what else "")


def load_problem(detail: str, kept: str | None, lang: str) -> str:
    """The chat reply for a pair that could not be loaded; ``kept`` names the pair that stays loaded, if any."""
    still = say("page:still_loaded", lang, name=kept) if kept else say("page:nothing_loaded", lang)
    return f"{_problem('page:load_failed', detail, lang)}\n\n{still}"


def crash_detail(error: BaseException, text: str) -> str:
    """An unexpected failure's detail: its type and message, as logged (no sentence of ours around it)."""
    return f"{type(error).__name__}: {text}"


def no_example(label: str | None, lang: str) -> str:
    return say("page:no_example", lang, label=repr(label))


def not_loaded(load_error: str | None, lang: str) -> str:
    """The reply to a question asked while no pair is loaded, repeating why the last load failed."""
    if load_error:
        return _problem("page:not_loaded_failed", load_error, lang)
    return f"{MARK_PROBLEM} {say('page:not_loaded', lang)}"


def question_problem(detail: str, lang: str) -> str:
    """The reply when a question cannot be answered because of its input (too long, a file gone bad)."""
    return _problem("page:question_failed", detail, lang, fallback=False)


def agent_failed(error: BaseException, lang: str) -> str:
    return f"{MARK_PROBLEM} {say('page:agent_failed', lang, error=f'{type(error).__name__}: {error}')}"


def place_problem(detail: str, lang: str) -> str:
    return _problem("page:place_failed", detail, lang)


def mask_unreadable(detail: str, lang: str) -> str:
    return f"{MARK_PROBLEM} {say('page:mask_unreadable', lang)} {_sentence(detail)} {say('page:mask_kept', lang)}"


def aoi_problem(detail: str, lang: str) -> str:
    return f"{MARK_PROBLEM} {say('page:aoi_unusable', lang)} {_sentence(detail)}"


def aoi_without_pair(lang: str) -> str:
    return f"{MARK_PROBLEM} {say('page:aoi_no_pair', lang)}"


def status_line(chat_reply: str) -> str:
    """The status line repeats the chat's reply in one paragraph."""
    return " ".join(part.strip() for part in chat_reply.split("\n\n") if part.strip())


def _sentence(text: str) -> str:
    """A detail as a sentence: a capital first letter, a full stop (details are English; ours end in their own)."""
    text = text.strip()
    if text and not any(ch.isdigit() for ch in text.split(" ", 1)[0]):  # "t1 and t2 …" keeps its case
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "。")) else text + "."


# ------------------------------------------------------------------------------------------ loading, placing


def status(key: str, lang: str, **slots: object) -> str:
    """A one-line status of the page (``page:<key>``): welcome, what to upload next, a grid shown, …"""
    return say(f"page:{key}", lang, **slots)


def pair_loaded(new_conversation: bool, lang: str) -> str:
    return f"{MARK_OK} {say('page:loaded_new' if new_conversation else 'page:loaded', lang)}"


def mask_kind_hint(mask_name: str, lang: str) -> str:
    """Said at upload when a two-valued mask (0/255, 0/1) was read as "auto" with no category: its change has no
    category, so counts will be of changed regions, not of buildings or roads, unless the visitor names one."""
    labels = {"kind_label": MASK_KIND_LABEL, "category_label": MASK_CATEGORY_LABEL}
    return f"{MARK_PROBLEM} {say('page:mask_two_values', lang, mask=mask_name, **labels)}"


def aoi_loaded(source: str, labels: list[str], lang: str) -> str:
    """Said when areas of interest are loaded: how many, their names, and what to ask."""
    shown = ", ".join(labels[:8])
    if len(labels) > 8:
        shown = say("page:and_more", lang, shown=shown, n=integer(len(labels) - 8, lang))
    count = integer(len(labels), lang)
    polygons = say(f"page:polygons:{plural(len(labels), lang)}", lang, n=count)
    return f"{MARK_PLACE} {say('page:aoi_loaded', lang, polygons=polygons, source=source, shown=shown)}"


def placed(crs: str | None, bounds: str | None, gsd_m: float | None, unplaced: str, lang: str) -> str:
    """Said when a plain pair was given bounds and a CRS (``crs``), or still has none (``unplaced`` says why)."""
    if crs is not None:
        crs = crs if len(crs) < 40 else say("page:your_crs", lang)
        said = say("page:placed_bounds" if bounds else "page:placed", lang, crs=crs, bounds=bounds)
    else:
        said = say("page:still_unplaced", lang, why=unplaced)
    if gsd_m:
        said += " " + say("page:gsd_given", lang, gsd=significant(gsd_m, lang, 6))
    return f"{MARK_PLACE} {said} {say('page:goes_on_exports', lang)}"


def mask_reread(mask_name: str, kind: str, category: str | None, verification: Verification, lang: str) -> str:
    """Said when the loaded mask is read anew: how it is read now and what it shows."""
    reading = say("page:reading_category", lang, kind=kind, category=category) if category else kind
    facts = _mask_facts(verification, lang)
    return f"{MARK_AGAIN} {say('page:mask_reread', lang, mask=mask_name, reading=reading, facts=facts)}"


def _noun(category: str, n: int, lang: str) -> str:
    """The category's noun for ``n`` things, by the answers' plural rule (:func:`wording.noun`)."""
    try:
        return noun(category, lang, n)
    except KeyError:  # a category the catalogs have no noun for: its own name
        return category


def _mask_facts(verification: Verification, lang: str) -> str:
    summary = verification.summary
    share = percent(summary.changed_fraction, lang)
    if summary.categorical:
        counts = [
            say("page:count_of", lang, n=integer(n, lang), noun=_noun(name, n, lang))
            for name, n in summary.counts.items()
        ]
        return say("page:facts_categorical", lang, share=share, counts=join(counts, lang))
    return say("page:facts_plain", lang, share=share, regions=integer(summary.changed_regions, lang))


def pair_summary(
    *,
    name: str,
    width: int,
    height: int,
    crs: str | None,
    from_bounds: bool,
    gsd_m: float | None,
    mask: str | None,
    mask_kind: str,
    mask_category: str | None,
    lang: str,
) -> str:
    """What is loaded, shown above the status line: the pair, where it lies, which mask the answers rest on."""
    if crs:
        where = say("page:georeferenced_bounds" if from_bounds else "page:georeferenced", lang, crs=crs)
    else:
        where = say("page:no_georeference", lang)
        if gsd_m:
            where = say("page:gsd_yours", lang, where=where, gsd=significant(gsd_m, lang, 6))
    if mask:
        reading = say("page:reading_as", lang, kind=mask_kind, category=mask_category) if mask_category else mask_kind
        said_mask = say("page:your_mask", lang, mask=Path(mask).name, reading=reading)
    else:
        said_mask = say("page:no_mask_uploaded", lang)
    size = f"{width}×{height}"  # as the tools' details write sizes ("64×80"), with no grouping
    pair = say("page:summary_pair", lang, name=name, size=size, where=where)
    return f"{pair}  \n{say('page:summary_mask', lang, mask=said_mask)}"


# ------------------------------------------------------------------------------------------------ answers


def count_hint(lang: str) -> str:
    """Under a count that a mask without categories could not give: how to name the mask's category."""
    return say("page:count_hint", lang, label=MASK_CATEGORY_LABEL)


def answered(turn: int, export: str, lang: str) -> str:
    return say("page:answered", lang, turn=integer(turn, lang), export=export)


def confidence_label(answer: Answer, lang: str = SOURCE) -> str:
    """The answer's confidence, or why there is none: a refusal answers nothing, so it rates nothing."""
    if answer.intent == "count" and answer.counts is None:
        return say("page:no_count", lang)
    return say("page:confidence", lang, value=decimal(answer.confidence, lang, 2))


def evidence_title(answer: Answer, lang: str) -> str:
    return say("page:evidence_title", lang, intent=answer.intent, confidence=confidence_label(answer, lang))


def mask_line(answer: Answer, lang: str = SOURCE) -> str:
    """The mask an answer rests on: who made it, how it is read, how far it is trusted."""
    source = answer.evidence.mask
    if source is None:
        return say("page:no_mask", lang)
    categories = say("page:mask_categorical" if source.categorical else "page:mask_binary", lang)
    confidence = decimal(source.confidence, lang, 2)
    return say(
        "page:mask_line", lang, provider=source.provider, kind=source.kind, categories=categories, confidence=confidence
    )


def evidence_summary(answer: Answer, lang: str) -> str:
    """A few lines under each answer in the chat: tools, mask, model, conflicts."""
    lines = [
        say("page:ev_tools", lang, tools=" → ".join(answer.evidence.tools)),
        say("page:ev_mask", lang, mask=mask_line(answer, lang)),
    ]
    model = answer.evidence.model
    if model is not None:
        latency = decimal(model.latency_s, lang, 2)
        if model.ok:
            lines.append(say("page:ev_model_said", lang, text=clip(model.text, 160), latency=latency))
        else:
            lines.append(say("page:ev_model_failed", lang, error=clip(model.error, 160), latency=latency))
    if answer.conflicts:
        lines.append(say("page:ev_conflicts", lang, count=integer(len(answer.conflicts), lang)))
    return "  \n".join(lines)


def clip(text: str | None, limit: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer_text(answer: Answer, shown: Mapping[str, str] | None = None) -> str:
    """The answer as the agent wrote it, with server paths of artefacts replaced by where to find them.

    ``shown`` maps an artefact kind to the file the page offers instead (named after the page's pair).
    """
    lang = answer.evidence.route.language
    text = answer.text
    for kind, path in answer.artefacts.items():
        where = "page:see_downloads" if kind == "geojson" else "page:see_pictures"
        text = text.replace(path, say(where, lang, file=Path((shown or {}).get(kind, path)).name))
    return text
