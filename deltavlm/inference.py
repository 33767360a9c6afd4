"""The in-process runner the agent's DeltaVLM tool calls: images and questions in, answer text out.

It owns the model, its tokenizers and the per-pair feature cache, so a conversation encodes each image
pair once (:attr:`DeltaVLMRunner.vision_encoder_calls` counts the encoder's batched forwards). Requests are
answered in batches: new pairs are encoded together in one forward, then every (pair, question) row is
decoded in one ``generate`` call, which is also what a serving layer needs.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from deltavlm.checkpoints import LoadReport, checkpoint_config, load_any, load_weights
from deltavlm.config import DeltaVLMConfig, load_config
from deltavlm.errors import ModelLoadError
from deltavlm.feature_cache import CacheStats, PairFeatureCache, pair_key
from deltavlm.modeling.batch import collate_text
from deltavlm.modeling.generation import GenerationOptions
from deltavlm.modeling.model import DeltaVLM, PairFeatures
from deltavlm.preprocess import as_rgb_uint8, preprocess_images
from deltavlm.text import EncodedTurn, encode_turn
from deltavlm.tokenizers import Tokenizers, load_tokenizers


@dataclass
class AnswerRequest:
    """One question about one pair (H×W×3 uint8 each), with the conversation so far as (question, answer)."""

    t1: np.ndarray
    t2: np.ndarray
    question: str
    history: Sequence[tuple[str, str]] = ()


LOAD_ERRORS = (OSError, ValueError, KeyError, ImportError, pickle.UnpicklingError)
"""What reading a config, tokenizer or weight file raises (``CheckpointError`` and pydantic's are ValueErrors)."""


def _load_error(source: str, error: BaseException) -> ModelLoadError:
    reason = " ".join(str(error).split()) or type(error).__name__
    return ModelLoadError(f"cannot load DeltaVLM ({source}): {reason}")


class DeltaVLMRunner:
    """A built model plus what it needs to answer; thread-compatible for one caller at a time."""

    def __init__(self, model: DeltaVLM, tokenizers: Tokenizers, cache: PairFeatureCache[PairFeatures] | None = None):
        self.model = model.eval()
        self.tokenizers = tokenizers
        runtime = model.config.runtime
        self.cache = (
            cache if cache is not None else PairFeatureCache(runtime.feature_cache_bytes, runtime.feature_cache_entries)
        )
        self.load_reports: list[LoadReport] = []

    @classmethod
    def from_config(
        cls,
        config: str | Path | DeltaVLMConfig = "tiny",
        checkpoint: str | Path | None = None,
        device: str | torch.device | None = None,
        **overrides: Any,
    ) -> DeltaVLMRunner:
        """Build from a config (name, file or object), load its configured weights, then ``checkpoint``.

        Raises :class:`ModelLoadError` (one line naming the file and the problem) when the config, a
        tokenizer folder or a weight file is missing, unreadable or does not fit.
        """
        try:
            cfg = load_config(config, **overrides)
            tokenizers = load_tokenizers(cfg)
            model = DeltaVLM.from_config(cfg, device=device)
            runner = cls(model, tokenizers)
            runner.load_reports = load_weights(model, cfg.weights)
            if checkpoint is not None:
                runner.load(checkpoint)
        except ModelLoadError:
            raise
        except LOAD_ERRORS as error:
            raise _load_error(config.name if isinstance(config, DeltaVLMConfig) else str(config), error) from error
        return runner

    @classmethod
    def from_checkpoint(cls, directory: str | Path, device: str | torch.device | None = None, **overrides: Any):
        """Rebuild the exact model one of our checkpoints was saved from, and load it (or :class:`ModelLoadError`)."""
        try:
            config = checkpoint_config(directory)
        except LOAD_ERRORS as error:
            raise _load_error(str(directory), error) from error
        return cls.from_config(config, checkpoint=directory, device=device, **overrides)

    @property
    def config(self) -> DeltaVLMConfig:
        return self.model.config

    @property
    def vision_encoder_calls(self) -> int:
        """Batched Bi-VE forwards so far (one per batch of new pairs, none on a cache hit)."""
        return self.model.vision_encoder_calls

    @property
    def mask_enabled(self) -> bool:
        return self.model.mask_head is not None

    def load(self, path: str | Path) -> LoadReport:
        """Load more weights (any format); cached features of the old weights are discarded."""
        report = load_any(self.model, path)
        self.load_reports.append(report)
        self.cache.clear()
        return report

    def cache_stats(self) -> CacheStats:
        return self.cache.stats()

    # --- features -------------------------------------------------------------------------------

    def _key(self, t1: np.ndarray, t2: np.ndarray) -> str:
        return pair_key(t1, t2, salt=self.config.fingerprint())

    @torch.no_grad()
    def encode_pairs(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[PairFeatures]:
        """Features per pair, encoding every uncached pair together in one forward."""
        checked = []
        for t1, t2 in pairs:
            first, second = as_rgb_uint8(t1), as_rgb_uint8(t2)
            if first.shape != second.shape:
                raise ValueError(f"t1 and t2 differ in size: {first.shape} vs {second.shape}")
            checked.append((first, second))
        keys = [self._key(t1, t2) for t1, t2 in checked]
        found: dict[str, PairFeatures] = {}
        for key in dict.fromkeys(keys):
            cached = self.cache.get(key)
            if cached is not None:
                found[key] = cached
        first_index: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key not in found:
                first_index.setdefault(key, index)
        if first_index:
            size = self.config.vision.image_size
            encoded = self.model.encode_pair(
                preprocess_images([checked[i][0] for i in first_index.values()], size),
                preprocess_images([checked[i][1] for i in first_index.values()], size),
            ).detach()
            for row, key in enumerate(first_index):
                found[key] = encoded.select(row)
                self.cache.put(key, found[key])
        return [found[key] for key in keys]

    # --- answers ----------------------------------------------------------------------------------

    def answer(
        self,
        t1: np.ndarray,
        t2: np.ndarray,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        **gen_opts: Any,
    ) -> str:
        """One answer; ``gen_opts`` are :class:`GenerationOptions` fields (num_beams, max_new_tokens, …)."""
        return self.answer_batch([AnswerRequest(t1, t2, question, history)], **gen_opts)[0]

    def answer_batch(self, requests: Sequence[AnswerRequest], **gen_opts: Any) -> list[str]:
        """Answers for several (pair, question) rows, decoded together."""
        if not requests:
            return []
        return decode_answers(self.tokenizers.llm, self.generate_ids(requests, **gen_opts))

    def prompt_turns(self, requests: Sequence[AnswerRequest]) -> list[EncodedTurn]:
        """The encoded prompt of each row, as the config's text convention and prompt form write it."""
        config = self.config
        return [
            encode_turn(self.tokenizers.llm, config.text, config.qformer.num_query_tokens, r.question, r.history)
            for r in requests
        ]

    def generate_ids(self, requests: Sequence[AnswerRequest], **gen_opts: Any) -> torch.Tensor:
        """New token ids per row, B×T, rows that stopped early padded with the pad id after their EOS."""
        options = GenerationOptions.resolve(self.config.generation, **gen_opts)
        features = PairFeatures.concat(self.encode_pairs([(r.t1, r.t2) for r in requests]))
        text = collate_text(
            self.prompt_turns(requests), self.tokenizers, self.config.qformer.max_text_tokens, padding_side="left"
        )
        llm_tokenizer = self.tokenizers.llm
        return self.model.generate(
            features,
            text,
            options,
            eos_id=_token_id(llm_tokenizer.eos_token_id, "EOS"),
            pad_id=_token_id(llm_tokenizer.pad_token_id, "pad"),
            bos_id=llm_tokenizer.bos_token_id,
        )

    # --- masks ------------------------------------------------------------------------------------

    def predict_change_mask(self, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
        """H×W uint8 class indices at the input size (0 background, 1 road, 2 building).

        Raises ``RuntimeError`` when the config has no mask head (``mask_head.enabled: false``).
        """
        if not self.mask_enabled:
            raise RuntimeError("this DeltaVLM config has no change-mask head (mask_head.enabled: false)")
        features = self.encode_pairs([(t1, t2)])[0]
        height, width = as_rgb_uint8(t1).shape[:2]
        classes = self.model.predict_mask(features, (height, width))[0]
        return classes.to(torch.uint8).cpu().numpy()


def decode_answers(tokenizer: PreTrainedTokenizerBase, tokens: torch.Tensor) -> list[str]:
    """Answer text as the release decodes it: id 0 (LLaMA's ``<unk>``) becomes EOS, specials are skipped."""
    eos = _token_id(tokenizer.eos_token_id, "EOS")
    tokens = torch.where(tokens == 0, torch.full_like(tokens, eos), tokens)
    return [answer.strip() for answer in tokenizer.batch_decode(tokens, skip_special_tokens=True)]


def _token_id(value: int | None, what: str) -> int:
    if value is None:
        raise ValueError(f"the LLM tokenizer has no {what} token")
    return int(value)
