"""The tiny model: shapes through every stage, CSRM variants, frozen sets, loss masks, mask head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deltavlm.config import DeltaVLMConfig, MaskHeadConfig, load_config
from deltavlm.modeling import DeltaVLM, TrainingExample, make_batch
from deltavlm.modeling.csrm import NoCSRM, PaperCSRM, ReleaseCSRM
from deltavlm.modeling.mask_head import mask_loss, soft_dice_loss
from deltavlm.modeling.qformer import query_states
from deltavlm.modeling.vision import encode_bitemporal
from deltavlm.text import IGNORE_INDEX
from deltavlm.tokenizers import Tokenizers, load_tokenizers


@pytest.fixture(scope="module")
def cfg() -> DeltaVLMConfig:
    return load_config("tiny")


@pytest.fixture(scope="module")
def tokenizers(cfg: DeltaVLMConfig) -> Tokenizers:
    return load_tokenizers(cfg)


def _examples(n: int = 2, seed: int = 0, masks: bool = False) -> list[TrainingExample]:
    rng = np.random.default_rng(seed)
    qa = [
        ("Please judge whether these two images have changed. Please answer yes or no.", "yes"),
        ("Please determine how many roads and buildings have changed?", "3 new roads and 5 new buildings"),
    ]
    return [
        TrainingExample(
            t1=rng.integers(0, 256, (70, 90, 3), dtype=np.uint8),
            t2=rng.integers(0, 256, (70, 90, 3), dtype=np.uint8),
            question=qa[i % 2][0],
            answer=qa[i % 2][1],
            class_mask=rng.integers(0, 3, (70, 90)).astype(np.uint8) if masks else None,
        )
        for i in range(n)
    ]


def test_shapes_through_every_stage(cfg: DeltaVLMConfig, tokenizers: Tokenizers) -> None:
    model = DeltaVLM.from_config(cfg.with_updates(mask_head={"enabled": True})).eval()
    batch = make_batch(model.config, tokenizers, _examples(3, masks=True))
    v, q, llm = cfg.vision, cfg.qformer, cfg.llm
    assert batch.pixel_t1.shape == (3, 3, v.image_size, v.image_size)
    with torch.no_grad():
        f1, f2 = encode_bitemporal(model.vision_model, batch.pixel_t1, batch.pixel_t2, 2)
        assert f1.shape == f2.shape == (3, v.num_tokens, v.hidden_size)
        tokens = model.csrm(f1, f2)
        assert tokens.shape == (3, 2 * v.num_tokens, v.hidden_size)
        states = query_states(
            model.qformer,
            model.query_tokens,
            batch.text.qformer_input_ids,
            batch.text.qformer_attention_mask,
            tokens,
        )
        assert states.shape == (3, q.num_query_tokens, q.hidden_size)
        assert model.language_projection(states).shape == (3, q.num_query_tokens, llm.hidden_size)
        out = model(batch)
    assert out.logits.shape == (*batch.text.input_ids.shape, llm.vocab_size)
    assert out.mask_logits is not None and out.mask_logits.shape == (3, 3, v.image_size, v.image_size)
    assert out.lm_loss is not None and out.mask_loss is not None
    torch.testing.assert_close(out.loss, out.lm_loss + out.mask_loss)


def test_full_config_token_counts() -> None:
    full = load_config("full")
    assert full.vision.num_tokens == 257 and 2 * full.vision.num_tokens == 514
    assert full.qformer.num_query_tokens == 32 and full.csrm.mode == "release"


def _features(seed: int, dim: int = 8, tokens: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, tokens, dim, generator=generator), torch.randn(2, tokens, dim, generator=generator)


def test_release_csrm_equations() -> None:
    torch.manual_seed(0)
    csrm = ReleaseCSRM(8, dropout=0.5).eval()
    f1, f2 = _features(1)
    diff = f2 - f1
    expected = []
    for f in (f1, f2):  # shared weights for both dates
        joint = torch.cat([diff, f], -1)
        c = torch.tanh(joint @ csrm.context.weight.T + csrm.context.bias)
        g = torch.sigmoid(joint @ csrm.gate.weight.T + csrm.gate.bias)
        expected.append(torch.cat([f, diff, g * c], -1) @ csrm.fuse.weight.T + csrm.fuse.bias)
    with torch.no_grad():
        torch.testing.assert_close(csrm(f1, f2), torch.cat(expected, dim=1))
    assert sum(p.numel() for p in ReleaseCSRM(1408, 0.5).parameters()) == 13_881_472  # REFERENCE: 13.88 M


def test_paper_csrm_equations() -> None:
    torch.manual_seed(0)
    csrm = PaperCSRM(8, dropout=0.5).eval()
    f1, f2 = _features(2)
    diff = f2 - f1
    expected = []
    for t, f in enumerate((f1, f2)):  # separate weights per date, F'_t passed on directly
        joint = torch.cat([diff, f], -1)
        c = torch.tanh(joint @ csrm.context[t].weight.T + csrm.context[t].bias)
        g = torch.sigmoid(joint @ csrm.gate[t].weight.T + csrm.gate[t].bias)
        expected.append(g * c)
    with torch.no_grad():
        torch.testing.assert_close(csrm(f1, f2), torch.cat(expected, dim=1))
    assert not torch.equal(csrm.context[0].weight, csrm.context[1].weight)


def test_no_csrm_is_raw_concatenation() -> None:
    f1, f2 = _features(3)
    assert torch.equal(NoCSRM()(f1, f2), torch.cat([f1, f2], dim=1))


def test_csrm_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    csrm = ReleaseCSRM(8, dropout=0.5)
    f1, f2 = _features(4)
    csrm.eval()
    assert torch.equal(csrm(f1, f2), csrm(f1, f2))
    csrm.train()
    assert not torch.equal(csrm(f1, f2), csrm(f1, f2))


@pytest.mark.parametrize("blocks", [0, 2])
def test_frozen_and_trainable_sets(cfg: DeltaVLMConfig, tokenizers: Tokenizers, blocks: int) -> None:
    model = DeltaVLM.from_config(cfg.with_updates(finetune_vision_blocks=blocks))
    trainable = {name for name, _ in model.trainable_parameters()}
    layers = cfg.vision.num_layers
    for index in range(layers):
        names = {
            f"vision_model.encoder.layers.{index}.{n}"
            for n, _ in model.vision_model.encoder.layers[index].named_parameters()
        }
        assert (names <= trainable) == (index >= layers - blocks)
        assert names & trainable in (set(), names)
    assert {
        "vision_model.post_layernorm.weight",
        "query_tokens",
        "language_projection.weight",
        "csrm.fuse.weight",
        "qformer.embeddings.word_embeddings.weight",
    } <= trainable
    assert not any(name.startswith(("language_model.", "vision_model.embeddings.")) for name in trainable)
    model.train()
    assert not model.language_model.training and model.qformer.training
    model(make_batch(cfg, tokenizers, _examples(2))).loss.backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None) == (name in trainable), name


def test_loss_covers_answer_tokens_and_eos_only(cfg: DeltaVLMConfig, tokenizers: Tokenizers) -> None:
    model = DeltaVLM.from_config(cfg).eval()
    examples = _examples(2)
    batch = make_batch(cfg, tokenizers, examples)
    eos = tokenizers.llm.eos_token_id
    for row, example in enumerate(examples):
        labels = batch.text.labels[row]
        supervised = labels[labels != IGNORE_INDEX].tolist()
        assert supervised == [*tokenizers.llm.encode(example.answer.lower(), add_special_tokens=False), eos]
    with torch.no_grad():
        out = model(batch)
    shifted_logits = out.logits[:, :-1].reshape(-1, cfg.llm.vocab_size)
    shifted_labels = batch.text.labels[:, 1:].reshape(-1)
    manual = F.cross_entropy(shifted_logits, shifted_labels, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.lm_loss, manual)


def test_padding_does_not_change_a_sample(cfg: DeltaVLMConfig, tokenizers: Tokenizers) -> None:
    model = DeltaVLM.from_config(cfg).eval()
    examples = _examples(2)
    with torch.no_grad():
        together = model(make_batch(cfg, tokenizers, examples)).logits
        alone = model(make_batch(cfg, tokenizers, examples[:1])).logits
    torch.testing.assert_close(together[0, : alone.shape[1]], alone[0], rtol=1e-4, atol=1e-5)


def test_mask_head_learns_a_fixed_mask(cfg: DeltaVLMConfig, tokenizers: Tokenizers) -> None:
    torch.manual_seed(0)
    model = DeltaVLM.from_config(cfg.with_updates(mask_head={"enabled": True}))
    examples = _examples(2, masks=True)
    for example in examples:  # a learnable target: road on the left, building on the right
        example.class_mask = np.zeros((70, 90), np.uint8)
        example.class_mask[:, :30], example.class_mask[:, 60:] = 1, 2
    batch = make_batch(model.config, tokenizers, examples)
    assert model.mask_head is not None
    optimizer = torch.optim.AdamW(model.mask_head.parameters(), lr=1e-2)
    model.train()
    first = None
    for _ in range(40):
        optimizer.zero_grad()
        out = model(batch)
        assert out.mask_loss is not None
        out.mask_loss.backward()
        optimizer.step()
        first = first if first is not None else out.mask_loss.item()
    assert out.mask_loss.item() < 0.5 * first
    model.eval()
    features = model.encode_pair(batch.pixel_t1, batch.pixel_t2)
    predicted = model.predict_mask(features, (70, 90))
    assert predicted.shape == (2, 70, 90)
    assert (predicted[:, :, :25] == 1).float().mean() > 0.9 and (predicted[:, :, 65:] == 2).float().mean() > 0.9


def test_dice_is_zero_for_a_perfect_prediction() -> None:
    target = torch.tensor([[[0, 1], [2, 2]]])
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 100
    assert soft_dice_loss(logits, target, ignore_index=255).item() < 1e-3


def test_mask_loss_is_zero_not_nan_when_every_pixel_is_ignored() -> None:
    """A crop rotated entirely off the map leaves only ignored pixels: the step must not turn the weights NaN."""
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.full((2, 8, 8), 255, dtype=torch.long)
    loss = mask_loss(logits, target, MaskHeadConfig(enabled=True, ignore_index=255))
    loss.backward()
    assert loss.item() == 0.0
    assert logits.grad is not None and torch.all(logits.grad == 0)


def test_mask_head_disabled_by_default(cfg: DeltaVLMConfig) -> None:
    model = DeltaVLM.from_config(cfg)
    assert model.mask_head is None
    with pytest.raises(RuntimeError, match="mask head is disabled"):
        model.mask_logits(model.encode_pair(torch.zeros(1, 3, 56, 56), torch.zeros(1, 3, 56, 56)), (8, 8))


def test_param_groups_skip_decay_on_biases_and_norms(cfg: DeltaVLMConfig) -> None:
    model = DeltaVLM.from_config(cfg)
    decay, no_decay = model.param_groups(0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    total = sum(p.numel() for _, p in model.trainable_parameters())
    assert sum(p.numel() for p in [*decay["params"], *no_decay["params"]]) == total  # type: ignore[union-attr]
    assert all(p.ndim >= 2 for p in decay["params"])  # type: ignore[union-attr]


def test_init_is_seeded_and_leaves_global_rng_alone(cfg: DeltaVLMConfig) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = DeltaVLM.from_config(cfg), DeltaVLM.from_config(cfg)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    c = DeltaVLM.from_config(cfg.with_updates(weights={"init_seed": 1}))
    assert not torch.equal(a.csrm.fuse.weight, c.csrm.fuse.weight)


def test_place_keeps_cpu_float32(cfg: DeltaVLMConfig) -> None:
    model = DeltaVLM.from_config(cfg, device="cpu")
    assert model.device.type == "cpu"
    assert model.language_model.lm_head.weight.dtype == torch.float32
    with model.autocast():
        assert not torch.is_autocast_enabled("cpu")
