"""Text conventions: instruction wording, normalisation, prompt layout, and answer-only loss masks.

Two conventions share one encoder (:func:`encode_turn`):

``release`` (compatibility with the authors' weights)
    The LLM sees ``[visual][</s>][instruction][answer][</s>]`` (BOS = EOS = ``</s>``) and the Q-former
    reads the same instruction. The authors write the instruction three ways, and so do we:

    * evaluation prompt (``TextConfig.prompt_form: eval``, the default, where the paper's numbers come
      from): their ``BlipCaptionProcessor`` normalisation of the question: lowercased,
      ``. ! " ( ) * # : ; ~`` to spaces, whitespace collapsed, the first 50 words kept;
    * raw prompt (``prompt_form: raw``): the question as written, ``<image>`` tags removed and stripped, as
      their ``infer_subtasks.py`` passes it;
    * training text (``TextConfig.training_text: release``, used for samples with an answer): their
      dataset writes ``q: Q`` (first turn) or ``q: Q1 a: A1  q: Q2`` and normalises the whole string, so
      the text reads ``q please … `` with the history's colons gone and only its first 50 words kept.
      ``training_text: prompt`` trains on the inference prompt instead (docs/TRAINING.md says when).

    Their evaluation has no dialog; a prompt with history is written in the training layout, normalised
    (``eval``) or as written (``raw``), without the 50-word cut so the current question stays. Answers
    are normalised in every form.

``paper`` (the paper's Eq. layout)
    ``Human: <t1><t2> Q <STOP> Assistant: A <STOP>``, chained turn after turn with the images only in the
    first turn; ``<STOP>`` is ``TextConfig.stop_token`` (EOS by default, so generation stops on it). Text is
    kept as written. The Q-former reads the current question.

In both, labels cover the current answer's tokens and the final stop token only; every other position is
``IGNORE_INDEX``. The visual tokens are ``IMAGE_SLOT`` ids that the model replaces by the Q-former output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from deltavlm.config import PromptForm, TextConfig

IGNORE_INDEX = -100
IMAGE_SLOT = -200
"""Placeholder id of one visual token in ``input_ids``; never a real vocabulary id."""

RELEASE_INSTRUCTIONS: dict[str, str] = {
    "caption": "Please briefly describe the changes in these two images.",
    "binary": "Please judge whether these two images have changed. Please answer yes or no.",
    "count": "Please determine how many roads and buildings have changed?",
    "localisation": (
        "Please indicate the locations where changes have occurred in the buildings and roads, using a 3x3 "
        "grid (namely, 'top', 'center', and 'bottom' vertically and 'left', 'center', 'right' horizontally)."
    ),
    "dialog_count": "If changes have occurred, count the number of road and building changes separately.",
    "dialog_caption": ("Based on the above analysis, please describe the changes of these two images in detail."),
}
"""Instruction wording of the ChangeChat-105k release (REFERENCE.md)."""

PAPER_INSTRUCTIONS: dict[str, str] = {
    "caption": "Please briefly describe the changes in these two images.",
    "binary": "Please judge whether these two images have changed or not. Answer yes or no.",
}
"""The fixed instructions as printed in the paper, where they differ from the release."""

NO_CHANGE_CAPTIONS: tuple[str, ...] = (
    "there is no difference",
    "the two scenes seem identical",
    "the scene is the same as before",
    "no change has occurred",
    "almost nothing has changed",
)
"""LEVIR-CC's no-change captions; the release derives 'unchanged' from a caption equal to one of them."""

_RELEASE_PUNCT = re.compile(r"([.!\"()*#:;~])")
_SPACES = re.compile(r"\s{2,}")


class TextTokenizer(Protocol):
    """The part of a Hugging Face tokenizer this module needs."""

    bos_token_id: int | None
    eos_token_id: int | None

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def convert_tokens_to_ids(self, tokens: str) -> int: ...


def normalize_release_text(text: str, max_words: int | None = 50) -> str:
    """Normalise as the release's text processor does; ``max_words=None`` keeps every word."""
    text = _RELEASE_PUNCT.sub(" ", text.lower())
    text = _SPACES.sub(" ", text).rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if max_words is not None and len(words) > max_words else text


def _without_image_tags(text: str) -> str:
    return text.replace("<image>", "").strip()


def release_dialog_text(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The release's dialog string before normalisation: ``q: Q`` or `` q: Q1 a: A1 … q: Q`` (tags removed)."""
    if not history:
        return _without_image_tags(f"q: {question}")
    context = " ".join(f" q: {q} a: {a}" for q, a in history).strip()
    return _without_image_tags(f"{context}  q: {question}")


def release_prompt(
    question: str, history: Sequence[tuple[str, str]] = (), form: PromptForm = "eval", max_words: int = 50
) -> str:
    """The instruction the release's inference feeds the model, in the evaluation or the raw form."""
    if not history:
        raw = _without_image_tags(question)
        return raw if form == "raw" else normalize_release_text(raw, max_words)
    dialog = release_dialog_text(question, history)
    return dialog if form == "raw" else normalize_release_text(dialog, None)


def release_training_text(question: str, history: Sequence[tuple[str, str]] = (), max_words: int = 50) -> str:
    """The instruction of the release's training samples: the normalised ``q …`` dialog, first words kept."""
    return normalize_release_text(release_dialog_text(question, history), max_words)


@dataclass
class EncodedTurn:
    """One training/inference sample: LLM ids with image slots, labels, and the Q-former's text."""

    input_ids: list[int]
    labels: list[int]
    qformer_text: str
    answer_start: int | None = None


def _ids(tokenizer: TextTokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def _special_id(tokenizer: TextTokenizer, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id < 0:
        raise ValueError(f"the LLM tokenizer has no token {token!r}")
    return int(token_id)


def _require(value: int | None, what: str) -> int:
    if value is None:
        raise ValueError(f"the LLM tokenizer has no {what} token")
    return value


def encode_turn(
    tokenizer: TextTokenizer,
    text_config: TextConfig,
    num_query_tokens: int,
    question: str,
    history: Sequence[tuple[str, str]] = (),
    answer: str | None = None,
) -> EncodedTurn:
    """Token ids for one turn; with ``answer`` the sample is for training, without it a generation prompt."""
    if text_config.convention == "release":
        return _encode_release(tokenizer, text_config, num_query_tokens, question, history, answer)
    return _encode_paper(tokenizer, text_config, num_query_tokens, question, history, answer)


def _answer_ids(tokenizer: TextTokenizer, text_config: TextConfig, answer: str, stop_id: int) -> list[int]:
    ids = _ids(tokenizer, answer)[: max(text_config.max_answer_tokens - 1, 0)]
    return [*ids, stop_id]


def _with_answer(prompt: list[int], answer_ids: list[int] | None, qformer_text: str) -> EncodedTurn:
    if answer_ids is None:
        return EncodedTurn(input_ids=prompt, labels=[IGNORE_INDEX] * len(prompt), qformer_text=qformer_text)
    return EncodedTurn(
        input_ids=prompt + answer_ids,
        labels=[IGNORE_INDEX] * len(prompt) + answer_ids,
        qformer_text=qformer_text,
        answer_start=len(prompt),
    )


def _encode_release(
    tokenizer: TextTokenizer,
    text_config: TextConfig,
    num_query_tokens: int,
    question: str,
    history: Sequence[tuple[str, str]],
    answer: str | None,
) -> EncodedTurn:
    if answer is not None and text_config.training_text == "release":
        instruction = release_training_text(question, history, text_config.max_words)
    else:
        instruction = release_prompt(question, history, text_config.prompt_form, text_config.max_words)
    bos = _require(tokenizer.bos_token_id, "BOS")
    eos = _require(tokenizer.eos_token_id, "EOS")
    text_ids = _ids(tokenizer, instruction)
    keep = max(text_config.max_prompt_tokens - 1, 0)
    text_ids = text_ids[-keep:] if keep else []
    prompt = [IMAGE_SLOT] * num_query_tokens + [bos, *text_ids]
    answer_ids = None
    if answer is not None:
        answer_ids = _answer_ids(tokenizer, text_config, normalize_release_text(answer, text_config.max_words), eos)
    return _with_answer(prompt, answer_ids, instruction)


def _encode_paper(
    tokenizer: TextTokenizer,
    text_config: TextConfig,
    num_query_tokens: int,
    question: str,
    history: Sequence[tuple[str, str]],
    answer: str | None,
) -> EncodedTurn:
    bos = _require(tokenizer.bos_token_id, "BOS")
    stop = _special_id(tokenizer, text_config.stop_token)
    turns = [(q.strip(), a.strip()) for q, a in history]
    question = question.strip()

    def render(kept: Sequence[tuple[str, str]], question_ids: list[int]) -> list[int]:
        ids: list[int] = [bos, *_ids(tokenizer, "Human:"), *([IMAGE_SLOT] * num_query_tokens)]
        for index, (q, a) in enumerate(kept):
            if index:
                ids += _ids(tokenizer, " Human:")
            ids += [
                *_ids(tokenizer, f" {q}"),
                stop,
                *_ids(tokenizer, " Assistant:"),
                *_ids(tokenizer, f" {a}"),
                stop,
            ]
        if kept:
            ids += _ids(tokenizer, " Human:")
        return [*ids, *question_ids, stop, *_ids(tokenizer, " Assistant:")]

    question_ids = _ids(tokenizer, f" {question}")
    prompt = render(turns, question_ids)
    while turns and _text_len(prompt) > text_config.max_prompt_tokens:
        turns = turns[1:]  # the oldest turns go first: the current question matters most
        prompt = render(turns, question_ids)
    overflow = _text_len(prompt) - text_config.max_prompt_tokens
    if overflow > 0:
        prompt = render(turns, question_ids[min(overflow, len(question_ids)) :])
    answer_ids = None if answer is None else _answer_ids(tokenizer, text_config, f" {answer.strip()}", stop)
    return _with_answer(prompt, answer_ids, question)


def _text_len(ids: Sequence[int]) -> int:
    return sum(1 for i in ids if i != IMAGE_SLOT)
