"""Batches: padded text for the LLM and the Q-former, plus the pixel tensors of both dates.

Training pads on the right; generation pads on the left so every prompt ends where decoding begins.
Position ids always follow the attention mask, so padding side never changes a sample's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from deltavlm.config import DeltaVLMConfig
from deltavlm.preprocess import as_rgb_uint8, preprocess_images
from deltavlm.text import IGNORE_INDEX, EncodedTurn, encode_turn
from deltavlm.tokenizers import Tokenizers


@dataclass
class TextBatch:
    """LLM ids (``IMAGE_SLOT`` where the visual tokens go), mask, labels, and the Q-former's text."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    qformer_input_ids: torch.Tensor
    qformer_attention_mask: torch.Tensor

    def to(self, device: torch.device | str) -> TextBatch:
        return TextBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass
class DeltaVLMBatch:
    """Everything one training or evaluation step needs."""

    pixel_t1: torch.Tensor
    pixel_t2: torch.Tensor
    text: TextBatch
    mask_target: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> DeltaVLMBatch:
        target = None if self.mask_target is None else self.mask_target.to(device)
        return replace(
            self,
            pixel_t1=self.pixel_t1.to(device),
            pixel_t2=self.pixel_t2.to(device),
            text=self.text.to(device),
            mask_target=target,
        )


@dataclass
class TrainingExample:
    """One (pair, turn) sample: images as H×W×3 uint8, optional class-index change mask (H×W uint8)."""

    t1: np.ndarray
    t2: np.ndarray
    question: str
    answer: str
    history: Sequence[tuple[str, str]] = ()
    class_mask: np.ndarray | None = None


def _pad(rows: Sequence[Sequence[int]], value: int, left: bool) -> torch.Tensor:
    width = max(len(row) for row in rows)
    padded = [
        ([value] * (width - len(row)) + list(row)) if left else (list(row) + [value] * (width - len(row)))
        for row in rows
    ]
    return torch.tensor(padded, dtype=torch.long)


def collate_text(
    turns: Sequence[EncodedTurn],
    tokenizers: Tokenizers,
    max_qformer_tokens: int,
    padding_side: Literal["left", "right"] = "right",
) -> TextBatch:
    """Pad encoded turns into tensors; the Q-former text is tokenised here, left-truncated."""
    if not turns:
        raise ValueError("no samples to collate")
    left = padding_side == "left"
    pad_id = _pad_id(tokenizers.llm)
    ids = [t.input_ids for t in turns]
    qformer = tokenizers.qformer(
        [t.qformer_text for t in turns],
        padding="longest",
        truncation=True,
        max_length=max_qformer_tokens,
        return_tensors="pt",
    )
    return TextBatch(
        input_ids=_pad(ids, pad_id, left),
        attention_mask=_pad([[1] * len(row) for row in ids], 0, left),
        labels=_pad([t.labels for t in turns], IGNORE_INDEX, left),
        qformer_input_ids=qformer["input_ids"],
        qformer_attention_mask=qformer["attention_mask"],
    )


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    if tokenizer.pad_token_id is None:
        raise ValueError("the LLM tokenizer has no pad token")
    return int(tokenizer.pad_token_id)


def make_batch(config: DeltaVLMConfig, tokenizers: Tokenizers, examples: Sequence[TrainingExample]) -> DeltaVLMBatch:
    """Preprocess images, encode turns with answer-only labels, and pad: one call per training step."""
    turns = [
        encode_turn(tokenizers.llm, config.text, config.qformer.num_query_tokens, ex.question, ex.history, ex.answer)
        for ex in examples
    ]
    text = collate_text(turns, tokenizers, config.qformer.max_text_tokens, padding_side="right")
    size = config.vision.image_size
    masks = [ex.class_mask for ex in examples]
    target = None
    if any(m is not None for m in masks):
        if any(m is None for m in masks):
            raise ValueError("either every example in a batch has a class mask or none has")
        target = _stack_masks([m for m in masks if m is not None], size)
    return DeltaVLMBatch(
        pixel_t1=preprocess_images([as_rgb_uint8(ex.t1) for ex in examples], size),
        pixel_t2=preprocess_images([as_rgb_uint8(ex.t2) for ex in examples], size),
        text=text,
        mask_target=target,
    )


def _stack_masks(masks: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Class-index masks → B×S×S long, nearest-neighbour resized so that class ids stay class ids."""
    resized = []
    for mask in masks:
        if mask.ndim != 2:
            raise ValueError(f"class masks are H×W, got shape {mask.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
        resized.append(torch.nn.functional.interpolate(tensor, size=(size, size), mode="nearest-exact")[0, 0])
    return torch.stack(resized).long()
