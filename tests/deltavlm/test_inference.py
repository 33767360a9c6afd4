"""Generation and the in-process runner: KV cache, EOS stopping, batching, the pair cache, masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deltavlm.checkpoints import save_checkpoint
from deltavlm.feature_cache import PairFeatureCache, pair_key
from deltavlm.inference import AnswerRequest, DeltaVLMRunner
from deltavlm.modeling.batch import collate_text
from deltavlm.modeling.generation import GenerationOptions
from deltavlm.modeling.model import PairFeatures
from deltavlm.preprocess import preprocess_images
from deltavlm.text import encode_turn


@pytest.fixture(scope="module")
def runner() -> DeltaVLMRunner:
    return DeltaVLMRunner.from_config("tiny", mask_head={"enabled": True})


def _pair(seed: int, shape: tuple[int, int] = (64, 80)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
        rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
    )


def _raw_generate(runner: DeltaVLMRunner, seed: int, question: str, eos_id: int, **options: object) -> list[int]:
    t1, t2 = _pair(seed)
    cfg = runner.config
    size = cfg.vision.image_size
    features = runner.model.encode_pair(preprocess_images([t1], size), preprocess_images([t2], size))
    turn = encode_turn(runner.tokenizers.llm, cfg.text, cfg.qformer.num_query_tokens, question)
    text = collate_text([turn], runner.tokenizers, cfg.qformer.max_text_tokens, padding_side="left")
    opts = GenerationOptions.resolve(cfg.generation, **options)
    pad = runner.tokenizers.llm.pad_token_id
    return runner.model.generate(features, text, opts, eos_id=eos_id, pad_id=pad)[0].tolist()


@pytest.mark.parametrize("penalty", [1.0, 1.5])
def test_kv_cache_and_no_cache_agree(runner: DeltaVLMRunner, penalty: float) -> None:
    eos = runner.tokenizers.llm.eos_token_id
    kwargs = {"num_beams": 1, "max_new_tokens": 12, "min_new_tokens": 12, "repetition_penalty": penalty}
    cached = _raw_generate(runner, 0, "what changed?", eos, use_cache=True, **kwargs)
    uncached = _raw_generate(runner, 0, "what changed?", eos, use_cache=False, **kwargs)
    assert len(cached) == 12 and cached == uncached


def test_generation_stops_at_eos(runner: DeltaVLMRunner) -> None:
    free = _raw_generate(
        runner,
        1,
        "describe",
        eos_id=runner.tokenizers.llm.eos_token_id,
        num_beams=1,
        max_new_tokens=10,
        min_new_tokens=10,
    )
    stop_at = next(i for i in range(1, len(free)) if free[i] not in free[:i])
    stopped = _raw_generate(
        runner, 1, "describe", eos_id=free[stop_at], num_beams=1, max_new_tokens=10, min_new_tokens=0
    )
    pad = runner.tokenizers.llm.pad_token_id
    assert stopped[: stop_at + 1] == free[: stop_at + 1]
    assert all(token == pad for token in stopped[stop_at + 1 :])


def test_max_new_tokens_bounds_the_answer(runner: DeltaVLMRunner) -> None:
    tokens = _raw_generate(
        runner,
        2,
        "describe",
        eos_id=runner.tokenizers.llm.eos_token_id,
        num_beams=1,
        max_new_tokens=5,
        min_new_tokens=5,
    )
    assert len(tokens) == 5


def test_beam_and_sampling_run_and_sampling_is_seedable(runner: DeltaVLMRunner) -> None:
    t1, t2 = _pair(3)
    beam = runner.answer(t1, t2, "describe the changes", num_beams=3, max_new_tokens=6)
    assert isinstance(beam, str)
    first = runner.answer(t1, t2, "describe", do_sample=True, temperature=0.8, top_p=0.9, seed=7, max_new_tokens=6)
    again = runner.answer(t1, t2, "describe", do_sample=True, temperature=0.8, top_p=0.9, seed=7, max_new_tokens=6)
    assert first == again
    with pytest.raises(ValueError):
        runner.answer(t1, t2, "describe", beams=3)


def test_batched_answers_equal_single_answers(runner: DeltaVLMRunner) -> None:
    requests = [
        AnswerRequest(*_pair(4), "has it changed?"),
        AnswerRequest(*_pair(5, (40, 40)), "please determine how many roads and buildings have changed?"),
        AnswerRequest(*_pair(4), "where?", history=[("has it changed?", "yes")]),
    ]
    batched = runner.answer_batch(requests, num_beams=1, max_new_tokens=8)
    singles = [runner.answer(r.t1, r.t2, r.question, r.history, num_beams=1, max_new_tokens=8) for r in requests]
    assert batched == singles


def test_five_turn_dialog_encodes_the_pair_once() -> None:
    runner = DeltaVLMRunner.from_config("tiny")
    t1, t2 = _pair(6)
    history: list[tuple[str, str]] = []
    for question in ("has it changed?", "how many roads?", "how many buildings?", "where?", "describe it"):
        answer = runner.answer(t1.copy(), t2.copy(), question, history, max_new_tokens=4)
        history.append((question, answer))
    assert runner.vision_encoder_calls == 1
    stats = runner.cache_stats()
    assert (stats.entries, stats.misses, stats.hits) == (1, 1, 4)
    runner.answer(*_pair(7), "has it changed?", max_new_tokens=2)
    assert runner.vision_encoder_calls == 2


def test_cached_features_equal_fresh_features(runner: DeltaVLMRunner) -> None:
    t1, t2 = _pair(8)
    first = runner.answer(t1, t2, "describe", num_beams=1, max_new_tokens=6)
    runner.cache.clear()
    assert runner.answer(t1, t2, "describe", num_beams=1, max_new_tokens=6) == first


def test_predict_change_mask_at_input_size(runner: DeltaVLMRunner) -> None:
    t1, t2 = _pair(9, (61, 75))
    calls = runner.vision_encoder_calls
    mask = runner.predict_change_mask(t1, t2)
    assert mask.shape == (61, 75) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1, 2}
    runner.answer(t1, t2, "has it changed?", max_new_tokens=2)
    assert runner.vision_encoder_calls == calls + 1  # the mask and the answer share one encoding


def test_predict_change_mask_needs_the_head() -> None:
    with pytest.raises(RuntimeError, match=r"mask_head\.enabled"):
        DeltaVLMRunner.from_config("tiny").predict_change_mask(*_pair(10))


def test_bad_pairs_are_rejected(runner: DeltaVLMRunner) -> None:
    t1, _ = _pair(11)
    with pytest.raises(ValueError, match="differ in size"):
        runner.answer(t1, t1[:32], "has it changed?")
    with pytest.raises(ValueError, match="uint8"):
        runner.answer(t1.astype(np.float32), t1.astype(np.float32), "has it changed?")


def test_runner_from_our_checkpoint(tmp_path: Path, runner: DeltaVLMRunner) -> None:
    with torch.no_grad():
        runner.model.csrm.fuse.bias.add_(0.5)
    runner.cache.clear()
    save_checkpoint(runner.model, tmp_path / "ckpt")
    restored = DeltaVLMRunner.from_checkpoint(tmp_path / "ckpt")
    assert restored.load_reports[-1].format == "deltavlm"
    t1, t2 = _pair(12)
    assert restored.answer(t1, t2, "describe", max_new_tokens=6) == runner.answer(t1, t2, "describe", max_new_tokens=6)


class _Blob:
    def __init__(self, size: int) -> None:
        self.size = size

    def nbytes(self) -> int:
        return self.size


def test_feature_cache_is_bounded_in_bytes_and_entries() -> None:
    cache: PairFeatureCache[_Blob] = PairFeatureCache(max_bytes=100, max_entries=3)
    for index in range(4):
        cache.put(f"k{index}", _Blob(30))
    assert len(cache) == 3 and "k0" not in cache
    assert cache.get("k1") is not None  # k1 becomes most recent
    cache.put("big", _Blob(60))
    assert "k2" not in cache and "k3" not in cache and "k1" in cache
    assert cache.stats().bytes <= 100
    assert not cache.put("huge", _Blob(101)) and "huge" not in cache


def test_pair_key_follows_content() -> None:
    t1, t2 = _pair(13)
    assert pair_key(t1, t2) == pair_key(t1.copy(), t2.copy())
    changed = t2.copy()
    changed[0, 0, 0] ^= 1
    assert pair_key(t1, t2) != pair_key(t1, changed)
    assert pair_key(t1, t2) != pair_key(t2, t1)
    assert pair_key(t1, t2, salt="a") != pair_key(t1, t2, salt="b")


def test_pair_features_select_and_concat() -> None:
    features = PairFeatures(torch.arange(24.0).view(3, 4, 2), (torch.zeros(3, 2, 2), torch.ones(3, 2, 2)))
    picked = PairFeatures.concat([features.select(2), features.select(0)])
    assert torch.equal(picked.tokens, features.tokens[[2, 0]])
    assert picked.maps is not None and picked.nbytes() == 2 * (8 + 4 + 4) * 4
