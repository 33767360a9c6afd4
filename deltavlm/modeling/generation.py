"""Decoding: splice the visual tokens into the prompt embeddings and call the LLM's ``generate``.

transformers' ``generate`` gives greedy, beam and sampling search, the repetition penalty, EOS stopping and
the KV cache; we only build ``inputs_embeds`` and translate our options. Prompts are left-padded, so the
output holds only new tokens, one row per prompt.

The release generates with transformers 4.33, whose ``generate(inputs_embeds=...)`` starts its history at
``[bos]`` (the LLM's generation-config BOS, id 1): the returned sequence begins with it, ``max_length`` and
``min_length`` count it, and the repetition penalty covers it at every step. transformers 5 starts from an
empty history. :class:`StartedRepetitionPenalty` puts the start id back in front of the history the penalty
sees (``history_start_id``, 1 by default, ``None`` for generated ids only), and the config's lengths are new
tokens (the release's ``max_length=256, min_length=1`` are ``max_new_tokens=255, min_new_tokens=0``).

The penalty is passed as our own processor rather than through ``GenerationConfig`` for that reason, and
because transformers' built-in wiring would skip each row's first ``padding length`` generated tokens,
making a batched answer differ from the same answer alone. Beam search keeps the release's
``early_stopping=False``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import (
    GenerationConfig,
    LlamaForCausalLM,
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
)

from deltavlm.config import GenerationDefaults
from deltavlm.text import IMAGE_SLOT


class GenerationOptions(BaseModel):
    """Per-call decoding settings; unset fields take the config's defaults (the release's evaluation)."""

    model_config = ConfigDict(extra="forbid")

    num_beams: int = Field(5, ge=1)
    max_new_tokens: int = Field(255, ge=1)
    min_new_tokens: int = Field(0, ge=0)
    repetition_penalty: float = Field(1.5, gt=0)
    history_start_id: int | None = Field(1, ge=0, description="See GenerationDefaults.history_start_id.")
    length_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(0.9, gt=0, le=1)
    top_k: int = Field(50, ge=0)
    use_cache: bool = True
    seed: int | None = Field(None, description="Seeds sampling so that a sampled answer can be reproduced.")

    @classmethod
    def resolve(cls, defaults: GenerationDefaults, **overrides: Any) -> GenerationOptions:
        """Config defaults, then the caller's overrides; unknown option names are an error."""
        return cls.model_validate({**defaults.model_dump(), **overrides})


def splice_visual_tokens(
    language_model: LlamaForCausalLM, input_ids: torch.Tensor, visual: torch.Tensor
) -> torch.Tensor:
    """Token embeddings with every ``IMAGE_SLOT`` run replaced, in order, by that row's visual tokens."""
    slots = input_ids == IMAGE_SLOT
    per_row = slots.sum(dim=1)
    if not bool((per_row == visual.shape[1]).all()):
        raise ValueError(f"each prompt needs {visual.shape[1]} image slots, got {per_row.tolist()}")
    embeddings = language_model.get_input_embeddings()(input_ids.clamp(min=0))
    return embeddings.masked_scatter(slots.unsqueeze(-1), visual.to(embeddings.dtype))


def hf_generation_config(options: GenerationOptions, eos_id: int, pad_id: int, bos_id: int | None) -> GenerationConfig:
    """Our options (except the repetition penalty) as a ``GenerationConfig``, naming only what applies."""
    settings: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "min_new_tokens": options.min_new_tokens,
        "num_beams": options.num_beams,
        "do_sample": options.do_sample,
        "use_cache": options.use_cache,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "bos_token_id": bos_id,
    }
    if options.num_beams > 1:
        settings["length_penalty"] = options.length_penalty
        settings["early_stopping"] = False
    if options.do_sample:
        settings.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
    return GenerationConfig(**settings)


class StartedRepetitionPenalty(LogitsProcessor):
    """transformers' repetition penalty over ``[start_id] + generated ids``, as 4.33 applied it from embeddings."""

    def __init__(self, penalty: float, start_id: int | None) -> None:
        self.inner = RepetitionPenaltyLogitsProcessor(penalty)
        self.start_id = start_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.start_id is not None:
            start = torch.full((input_ids.shape[0], 1), self.start_id, dtype=input_ids.dtype, device=input_ids.device)
            input_ids = torch.cat([start, input_ids], dim=1)
        return self.inner(input_ids, scores)


def generate_tokens(
    language_model: LlamaForCausalLM,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    options: GenerationOptions,
    eos_id: int,
    pad_id: int,
    bos_id: int | None = None,
) -> torch.Tensor:
    """New token ids, B×T (rows padded with ``pad_id`` after their EOS)."""
    processors = LogitsProcessorList()
    if options.repetition_penalty != 1.0:
        processors.append(StartedRepetitionPenalty(float(options.repetition_penalty), options.history_start_id))
    kwargs = {
        "inputs_embeds": inputs_embeds,
        "attention_mask": attention_mask,
        "logits_processor": processors,
        "generation_config": hf_generation_config(options, eos_id, pad_id, bos_id),
    }
    if options.seed is None:
        return language_model.generate(**kwargs)
    device = inputs_embeds.device
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):  # a seeded call leaves the caller's RNG untouched
        torch.manual_seed(options.seed)
        return language_model.generate(**kwargs)
