"""Weight loading in all five formats, on tiny files built here, plus the key-error contract."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration, LlamaForCausalLM

from deltavlm.checkpoints import (
    CheckpointError,
    checkpoint_config,
    detect_format,
    load_any,
    load_checkpoint,
    load_eva_vit,
    load_instructblip_dir,
    load_llm_dir,
    load_release_checkpoint,
    load_weights,
    ours_to_release,
    save_checkpoint,
)
from deltavlm.config import DeltaVLMConfig, load_config
from deltavlm.modeling import DeltaVLM
from deltavlm.modeling.llm import llm_hf_config
from deltavlm.modeling.qformer import qformer_hf_config, query_states
from deltavlm.modeling.vision import encode_bitemporal, vision_hf_config


@pytest.fixture(scope="module")
def cfg() -> DeltaVLMConfig:
    return load_config("tiny")


def _perturb_trainable(model: DeltaVLM, seed: int) -> None:
    """Stand-in for training: every trainable tensor gets new values (the k bias stays zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.trainable_parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
            if name.endswith("self_attn.qkv.bias"):
                param.view(3, -1)[1].zero_()


def _pixels(cfg: DeltaVLMConfig, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    size = cfg.vision.image_size
    return (
        torch.randn(batch, 3, size, size, generator=generator),
        torch.randn(batch, 3, size, size, generator=generator),
    )


def _end_to_end(model: DeltaVLM, cfg: DeltaVLMConfig) -> torch.Tensor:
    """Logits of a fixed prompt through every stage (eval mode)."""
    model.eval()
    from deltavlm.modeling.batch import TextBatch
    from deltavlm.text import IGNORE_INDEX, IMAGE_SLOT

    q = cfg.qformer.num_query_tokens
    ids = torch.tensor([[IMAGE_SLOT] * q + [2, 40, 41, 42], [IMAGE_SLOT] * q + [2, 50, 51, 52]])
    text = TextBatch(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        labels=torch.full_like(ids, IGNORE_INDEX),
        qformer_input_ids=torch.tensor([[2, 30, 31, 3], [2, 32, 33, 3]]),
        qformer_attention_mask=torch.ones(2, 4, dtype=torch.long),
    )
    with torch.no_grad():
        features = model.encode_pair(*_pixels(cfg))
        logits, _ = model.language_forward(features, text)
    return logits


def _assert_same_state(a: DeltaVLM, b: DeltaVLM, prefix: str = "") -> None:
    sa, sb = a.state_dict(), b.state_dict()
    for key in sa:
        if key.startswith(prefix):
            assert torch.equal(sa[key], sb[key]), key


# --- (a) Hugging Face InstructBLIP directory ----------------------------------------------------


def _hf_instructblip(cfg: DeltaVLMConfig, path: Path) -> InstructBlipForConditionalGeneration:
    config = InstructBlipConfig(
        vision_config=vision_hf_config(cfg.vision).to_dict(),
        qformer_config=qformer_hf_config(cfg.qformer, cfg.vision.hidden_size).to_dict(),
        text_config=llm_hf_config(cfg.llm).to_dict(),
        num_query_tokens=cfg.qformer.num_query_tokens,
    )
    torch.manual_seed(7)
    hf = InstructBlipForConditionalGeneration(config).eval()
    with torch.no_grad():
        hf.query_tokens.normal_(std=0.02)
        for layer in hf.vision_model.encoder.layers:  # non-zero q and v biases exercise the layout
            layer.self_attn.qkv.bias.copy_(
                torch.cat(
                    [
                        torch.randn(cfg.vision.hidden_size),
                        torch.zeros(cfg.vision.hidden_size),
                        torch.randn(cfg.vision.hidden_size),
                    ]
                )
                * 0.1
            )
    hf.save_pretrained(path)
    return hf


def test_hf_instructblip_directory_loads_identically(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    # transformers' port builds its post-norm with the blocks' eps; match it to compare outputs bit for bit
    cfg = cfg.with_updates(vision={"ln_vision_eps": 1e-6})
    hf = _hf_instructblip(cfg, tmp_path / "instructblip")
    assert detect_format(tmp_path / "instructblip") == "hf-instructblip"
    model = DeltaVLM.from_config(cfg).eval()
    report = load_instructblip_dir(model, tmp_path / "instructblip")
    assert report.loaded == len([k for k in model.state_dict() if not k.startswith("csrm.")])
    hf_state = hf.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("csrm."):
            assert torch.equal(value, hf_state[key]), key

    t1, t2 = _pixels(cfg)
    with torch.no_grad():
        ours_t1, ours_t2 = encode_bitemporal(model.vision_model, t1, t2, trainable_blocks=2)
        assert torch.equal(ours_t1, hf.vision_model(pixel_values=t1).last_hidden_state)
        assert torch.equal(ours_t2, hf.vision_model(pixel_values=t2).last_hidden_state)
        ids = torch.tensor([[2, 30, 31, 3]])
        ours = query_states(model.qformer, model.query_tokens, ids, torch.ones_like(ids), ours_t1[:1])
        theirs = hf.qformer(
            input_ids=ids,
            attention_mask=torch.ones(1, cfg.qformer.num_query_tokens + 4, dtype=torch.long),
            query_embeds=hf.query_tokens,
            encoder_hidden_states=ours_t1[:1],
        ).last_hidden_state
        assert torch.equal(ours, theirs[:, : cfg.qformer.num_query_tokens])
        tokens = torch.tensor([[2, 40, 41, 42, 43]])
        assert torch.equal(model.language_model(tokens).logits, hf.language_model(tokens).logits)


def test_hf_instructblip_directory_with_missing_key_lists_it(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    _hf_instructblip(cfg, tmp_path / "ib")
    weights = tmp_path / "ib" / "model.safetensors"
    state = load_file(str(weights))
    del state["qformer.encoder.layer.1.output_query.dense.bias"]
    state["qformer.encoder.layer.9.extra.weight"] = torch.zeros(1)
    save_file(state, str(weights))
    with pytest.raises(CheckpointError) as error:
        load_instructblip_dir(DeltaVLM.from_config(cfg), tmp_path / "ib")
    assert "qformer.encoder.layer.1.output_query.dense.bias" in str(error.value)
    assert "qformer.encoder.layer.9.extra.weight" in str(error.value)
    assert error.value.missing == ["qformer.encoder.layer.1.output_query.dense.bias"]


# --- (b) separate LLaMA directory ----------------------------------------------------------------


@pytest.mark.parametrize("vocab_gap", [0, 1])
def test_llama_directory_loads_and_fills_added_pad_row(cfg: DeltaVLMConfig, tmp_path: Path, vocab_gap: int) -> None:
    vocab = cfg.llm.vocab_size - vocab_gap  # gap 1: Vicuna without the release's added [PAD]
    torch.manual_seed(3)
    llama = LlamaForCausalLM(llm_hf_config(cfg.llm.model_copy(update={"vocab_size": vocab}))).eval()
    llama.save_pretrained(tmp_path / "llama")
    model = DeltaVLM.from_config(cfg).eval()
    report = load_any(model, tmp_path / "llama")
    assert report.format == "hf-llama"
    tokens = torch.tensor([[2, 40, 41, 42, vocab - 1]])
    with torch.no_grad():
        hidden = model.language_model.model(tokens).last_hidden_state
        assert torch.equal(hidden, llama.model(tokens).last_hidden_state)
        ours, theirs = model.language_model(tokens).logits, llama(tokens).logits
    # the extra vocabulary row changes the matmul's shape, hence its blocking: equal up to float rounding
    torch.testing.assert_close(ours[..., :vocab], theirs, rtol=1e-6, atol=1e-6)
    embed = model.language_model.model.embed_tokens.weight
    if vocab_gap:
        assert torch.allclose(embed[-1], llama.model.embed_tokens.weight.mean(0))
        assert any("mean embedding" in note for note in report.notes)


def test_llama_directory_with_wrong_shape_lists_it(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    wider = cfg.llm.model_copy(update={"intermediate_size": cfg.llm.intermediate_size * 2})
    LlamaForCausalLM(llm_hf_config(wider)).save_pretrained(tmp_path / "llama")
    with pytest.raises(CheckpointError) as error:
        load_llm_dir(DeltaVLM.from_config(cfg), tmp_path / "llama")
    assert "language_model.model.layers.0.mlp.up_proj.weight: model [128, 64], file [256, 64]" in str(error.value)


# --- (c) LAVIS eva_vit_g.pth -----------------------------------------------------------------------


def _lavis_eva_state(cfg: DeltaVLMConfig, blocks: int, seed: int = 5) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    d, m, p = cfg.vision.hidden_size, cfg.vision.intermediate_size, cfg.vision.patch_size

    def rnd(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    state = {
        "cls_token": rnd(1, 1, d),
        "pos_embed": rnd(1, cfg.vision.num_tokens, d),
        "patch_embed.proj.weight": rnd(d, 3, p, p),
        "patch_embed.proj.bias": rnd(d),
    }
    for i in range(blocks):
        state |= {
            f"blocks.{i}.norm1.weight": 1 + rnd(d),
            f"blocks.{i}.norm1.bias": rnd(d),
            f"blocks.{i}.attn.qkv.weight": rnd(3 * d, d),
            f"blocks.{i}.attn.q_bias": rnd(d),
            f"blocks.{i}.attn.v_bias": rnd(d),
            f"blocks.{i}.attn.proj.weight": rnd(d, d),
            f"blocks.{i}.attn.proj.bias": rnd(d),
            f"blocks.{i}.norm2.weight": 1 + rnd(d),
            f"blocks.{i}.norm2.bias": rnd(d),
            f"blocks.{i}.mlp.fc1.weight": rnd(m, d),
            f"blocks.{i}.mlp.fc1.bias": rnd(m),
            f"blocks.{i}.mlp.fc2.weight": rnd(d, m),
            f"blocks.{i}.mlp.fc2.bias": rnd(d),
        }
    return state


def _lavis_eva_forward(state: dict[str, torch.Tensor], pixels: torch.Tensor, cfg: DeltaVLMConfig) -> torch.Tensor:
    """LAVIS's EVA-ViT computation, written out from its definition (independent of transformers)."""
    heads, eps = cfg.vision.num_heads, cfg.vision.layer_norm_eps
    x = F.conv2d(pixels, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=cfg.vision.patch_size)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + state["pos_embed"]
    for i in range(cfg.vision.num_layers):
        b = f"blocks.{i}."
        h = F.layer_norm(x, x.shape[-1:], state[b + "norm1.weight"], state[b + "norm1.bias"], eps)
        bias = torch.cat(
            [state[b + "attn.q_bias"], torch.zeros_like(state[b + "attn.v_bias"]), state[b + "attn.v_bias"]]
        )
        qkv = F.linear(h, state[b + "attn.qkv.weight"], bias)
        batch, tokens, _ = qkv.shape
        q, k, v = qkv.reshape(batch, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
        attn = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        h = (attn @ v).transpose(1, 2).reshape(batch, tokens, -1)
        x = x + F.linear(h, state[b + "attn.proj.weight"], state[b + "attn.proj.bias"])
        h = F.layer_norm(x, x.shape[-1:], state[b + "norm2.weight"], state[b + "norm2.bias"], eps)
        h = F.linear(
            F.gelu(F.linear(h, state[b + "mlp.fc1.weight"], state[b + "mlp.fc1.bias"])),
            state[b + "mlp.fc2.weight"],
            state[b + "mlp.fc2.bias"],
        )
        x = x + h
    return x


def _release_fp16(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What LAVIS's create_eva_vit_g(precision="fp16") makes of a float32 file: nn.Linear/Conv2d weights and
    biases through fp16 (the patch embedding, qkv weight, attention projection, MLP), all else as stored."""
    linear_or_conv = re.compile(r"^(patch_embed\.proj\.|blocks\.\d+\.(attn\.qkv\.weight|attn\.proj\.|mlp\.fc[12]\.))")
    return {k: v.half().float() if linear_or_conv.match(k) else v for k, v in state.items()}


def test_lavis_eva_vit_loads_and_matches_reference_computation(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    depth = cfg.vision.num_layers
    stored = _lavis_eva_state(cfg, blocks=depth + 1)  # EVA-CLIP-g's extra last block is dropped
    stored["norm.weight"] = torch.ones(cfg.vision.hidden_size)
    torch.save(stored, tmp_path / "eva_vit_g.pth")
    state = _release_fp16(stored)
    assert not torch.equal(state["blocks.1.attn.qkv.weight"], stored["blocks.1.attn.qkv.weight"])
    assert detect_format(tmp_path / "eva_vit_g.pth") == "lavis-eva-vit"
    model = DeltaVLM.from_config(cfg).eval()
    report = load_eva_vit(model, tmp_path / "eva_vit_g.pth")
    assert f"blocks.{depth}.attn.qkv.weight" in report.dropped and "norm.weight" in report.dropped
    layer = model.vision_model.encoder.layers[1].self_attn
    assert torch.equal(layer.qkv.weight, state["blocks.1.attn.qkv.weight"])
    assert torch.equal(layer.qkv.bias.view(3, -1)[0], state["blocks.1.attn.q_bias"])
    assert not layer.qkv.bias.view(3, -1)[1].any()
    assert torch.equal(layer.qkv.bias.view(3, -1)[2], state["blocks.1.attn.v_bias"])

    t1, t2 = _pixels(cfg)
    with torch.no_grad():
        ours_t1, _ = encode_bitemporal(model.vision_model, t1, t2, trainable_blocks=2)
        norm = model.vision_model.post_layernorm
        reference = F.layer_norm(
            _lavis_eva_forward(state, t1, cfg),
            norm.normalized_shape,
            norm.weight,
            norm.bias,
            cfg.vision.ln_vision_eps,
        )
    torch.testing.assert_close(ours_t1, reference, rtol=1e-5, atol=1e-5)


def test_lavis_eva_vit_missing_v_bias_and_unknown_key_are_listed(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    state = _lavis_eva_state(cfg, blocks=cfg.vision.num_layers)
    del state["blocks.2.attn.v_bias"]
    state["blocks.0.attn.relative_position_bias_table"] = torch.zeros(3)
    torch.save(state, tmp_path / "eva.pth")
    with pytest.raises(CheckpointError) as error:
        load_eva_vit(DeltaVLM.from_config(cfg), tmp_path / "eva.pth")
    message = str(error.value)
    assert "blocks.2.attn.v_bias" in message and "blocks.0.attn.relative_position_bias_table" in message


# --- (d) the authors' checkpoint_best.pth ------------------------------------------------------------


def _reference_release_keys(cfg: DeltaVLMConfig) -> set[str]:
    """Every key REFERENCE.md lists for the release's ``model`` dict, for the tiny sizes."""
    keys = {
        "ln_vision.weight",
        "ln_vision.bias",
        "query_tokens",
        "llm_proj.weight",
        "llm_proj.bias",
        "context1.weight",
        "context2.weight",
        "context2.bias",
        "gate1.weight",
        "gate2.weight",
        "gate2.bias",
        "context3.weight",
        "context3.bias",
    }
    n = cfg.vision.num_layers
    for i in range(n - cfg.finetune_vision_blocks, n):
        b = f"visual_encoder.blocks.{i}."
        keys |= {b + s for s in ("attn.qkv.weight", "attn.q_bias", "attn.v_bias")}
        keys |= {
            b + f"{m}.{t}" for m in ("norm1", "norm2", "attn.proj", "mlp.fc1", "mlp.fc2") for t in ("weight", "bias")
        }
    e = "Qformer.bert.embeddings."
    keys |= {
        e + "word_embeddings.weight",
        e + "position_embeddings.weight",
        e + "LayerNorm.weight",
        e + "LayerNorm.bias",
    }
    for i in range(cfg.qformer.num_layers):
        layer = f"Qformer.bert.encoder.layer.{i}."
        blocks = ["attention"] + (["crossattention"] if i % cfg.qformer.cross_attention_frequency == 0 else [])
        for block in blocks:
            for sub in ("self.query", "self.key", "self.value", "output.dense", "output.LayerNorm"):
                keys |= {f"{layer}{block}.{sub}.weight", f"{layer}{block}.{sub}.bias"}
        for sub in (
            "intermediate.dense",
            "intermediate_query.dense",
            "output.dense",
            "output.LayerNorm",
            "output_query.dense",
            "output_query.LayerNorm",
        ):
            keys |= {f"{layer}{sub}.weight", f"{layer}{sub}.bias"}
    return keys


def _release_file(model: DeltaVLM, path: Path) -> dict[str, torch.Tensor]:
    state = ours_to_release(model)
    d = model.config.vision.hidden_size
    extras = {  # keys the release stores and REFERENCE.md says to drop
        "vision_proj.weight": torch.zeros(4, 32),
        "vision_proj.bias": torch.zeros(4),
        "text_proj.weight": torch.zeros(4, 32),
        "text_proj.bias": torch.zeros(4),
        "temp": torch.tensor(0.07),
        "llm_model.model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(8),
        "Qformer.bert.embeddings.position_ids": torch.arange(128)[None],
        "mask_decoder.conv.weight": torch.zeros(1, d, 1, 1),
    }
    checkpoint = {
        "model": {**state, **extras},
        "optimizer": {"state": {}, "param_groups": []},
        "config": {"run": {"lr": 1e-5}},
        "scaler": {"scale": 65536.0},
        "epoch": 12,
    }
    torch.save(checkpoint, path)
    return state


def test_release_key_names_are_exactly_the_documented_ones(cfg: DeltaVLMConfig) -> None:
    assert set(ours_to_release(DeltaVLM.from_config(cfg))) == _reference_release_keys(cfg)


def test_release_checkpoint_loads_identically(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    source = DeltaVLM.from_config(cfg)
    _perturb_trainable(source, seed=11)
    _release_file(source, tmp_path / "checkpoint_best.pth")
    assert detect_format(tmp_path / "checkpoint_best.pth") == "release"
    target = DeltaVLM.from_config(cfg)  # same seed: the frozen weights the release does not carry agree
    assert not torch.equal(_end_to_end(source, cfg), _end_to_end(target, cfg))
    report = load_release_checkpoint(target, tmp_path / "checkpoint_best.pth")
    assert "mask_decoder.conv.weight" in report.dropped and "temp" in report.dropped
    _assert_same_state(source, target)
    assert torch.equal(_end_to_end(source, cfg), _end_to_end(target, cfg))


def test_release_csrm_matches_hand_computation(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    source = DeltaVLM.from_config(cfg)
    _perturb_trainable(source, seed=12)
    state = _release_file(source, tmp_path / "ckpt.pth")
    model = DeltaVLM.from_config(cfg.with_updates(weights={"init_seed": 99})).eval()
    load_release_checkpoint(model, tmp_path / "ckpt.pth")
    generator = torch.Generator().manual_seed(0)
    f1, f2 = (torch.randn(2, cfg.vision.num_tokens, cfg.vision.hidden_size, generator=generator) for _ in range(2))
    diff = f2 - f1
    expected = []
    for f in (f1, f2):  # the release's equations, with its own layer names
        c = torch.tanh(
            F.linear(diff, state["context1.weight"]) + F.linear(f, state["context2.weight"], state["context2.bias"])
        )
        g = torch.sigmoid(
            F.linear(diff, state["gate1.weight"]) + F.linear(f, state["gate2.weight"], state["gate2.bias"])
        )
        expected.append(F.linear(torch.cat([f, diff, g * c], -1), state["context3.weight"], state["context3.bias"]))
    with torch.no_grad():
        torch.testing.assert_close(model.csrm(f1, f2), torch.cat(expected, dim=1), rtol=1e-5, atol=1e-6)


def test_release_checkpoint_key_errors_are_listed(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    model = DeltaVLM.from_config(cfg)
    _release_file(model, tmp_path / "ok.pth")
    checkpoint = torch.load(tmp_path / "ok.pth", weights_only=True)
    del checkpoint["model"]["context3.bias"]
    del checkpoint["model"]["visual_encoder.blocks.2.attn.v_bias"]
    checkpoint["model"]["Qformer.cls.predictions.bias"] = torch.zeros(3)
    checkpoint["model"]["query_tokens"] = torch.zeros(1, 5, cfg.qformer.hidden_size)
    torch.save(checkpoint, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as error:
        load_release_checkpoint(DeltaVLM.from_config(cfg), tmp_path / "bad.pth")
    message = str(error.value)
    assert "csrm.fuse.bias" in error.value.missing
    assert "visual_encoder.blocks.2.attn.v_bias" in error.value.missing
    assert "Qformer.cls.predictions.bias" in error.value.unexpected
    assert "query_tokens: model [1, 8, 32], file [1, 5, 32]" in message


def test_release_checkpoint_into_other_csrm_mode_explains(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    _release_file(DeltaVLM.from_config(cfg), tmp_path / "ckpt.pth")
    with pytest.raises(CheckpointError, match=re.escape("csrm.mode='none'")):
        load_release_checkpoint(DeltaVLM.from_config(cfg.with_updates(csrm={"mode": "none"})), tmp_path / "ckpt.pth")


# --- (e) ours -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trainable_only", [True, False])
def test_our_checkpoint_round_trip(cfg: DeltaVLMConfig, tmp_path: Path, trainable_only: bool) -> None:
    cfg = cfg.with_updates(mask_head={"enabled": True}, csrm={"mode": "paper"})
    source = DeltaVLM.from_config(cfg)
    _perturb_trainable(source, seed=13)
    save_checkpoint(source, tmp_path / "ours", trainable_only=trainable_only)
    saved = load_file(str(tmp_path / "ours" / "model.safetensors"))
    assert set(saved) == ({n for n, _ in source.trainable_parameters()} if trainable_only else set(source.state_dict()))
    assert detect_format(tmp_path / "ours") == "deltavlm"
    assert checkpoint_config(tmp_path / "ours") == cfg
    seed = 0 if trainable_only else 5  # a full checkpoint must not depend on the init
    target = DeltaVLM.from_config(cfg.with_updates(weights={"init_seed": seed}))
    load_checkpoint(target, tmp_path / "ours")
    _assert_same_state(source, target)
    assert torch.equal(_end_to_end(source, cfg), _end_to_end(target, cfg))


def test_our_checkpoint_key_errors(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    save_checkpoint(DeltaVLM.from_config(cfg), tmp_path / "ours")
    weights = tmp_path / "ours" / "model.safetensors"
    state = load_file(str(weights))
    del state["csrm.gate.bias"]
    state["csrm.extra.weight"] = torch.zeros(2)
    state["language_projection.weight"] = torch.zeros(3, 3)
    save_file(state, str(weights))
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(DeltaVLM.from_config(cfg), tmp_path / "ours")
    assert error.value.missing == ["csrm.gate.bias"]
    assert error.value.unexpected == ["csrm.extra.weight"]
    assert error.value.mismatched == ["language_projection.weight: model [64, 32], file [3, 3]"]


def test_our_checkpoint_rejects_other_architecture(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    save_checkpoint(DeltaVLM.from_config(cfg), tmp_path / "ours")
    other = DeltaVLM.from_config(cfg.with_updates(csrm={"mode": "paper"}))
    with pytest.raises(CheckpointError, match=re.escape("csrm.mode: checkpoint 'release', model 'paper'")):
        load_checkpoint(other, tmp_path / "ours")


def test_load_weights_applies_sources_in_order(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    source = DeltaVLM.from_config(cfg)
    _perturb_trainable(source, seed=14)
    _release_file(source, tmp_path / "release.pth")
    torch.manual_seed(1)
    llama = LlamaForCausalLM(llm_hf_config(cfg.llm))
    llama.save_pretrained(tmp_path / "llama")
    configured = cfg.with_updates(
        weights={"release_checkpoint": str(tmp_path / "release.pth"), "llm_dir": str(tmp_path / "llama")}
    )
    model = DeltaVLM.from_config(configured)
    reports = load_weights(model, configured.weights)
    assert [r.format for r in reports] == ["hf-llama", "release"]
    assert torch.equal(model.language_model.lm_head.weight, llama.lm_head.weight)
    assert torch.equal(model.csrm.fuse.weight, source.csrm.fuse.weight)


class _ArbitraryObject:
    """Unpickling this would run code from the file: weights_only must refuse it."""


def test_pickles_are_read_with_weights_only(tmp_path: Path) -> None:
    torch.save({"model": {"x": torch.zeros(1)}, "config": _ArbitraryObject()}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match=r"[Ww]eights only"):
        load_release_checkpoint(DeltaVLM.from_config(load_config("tiny")), tmp_path / "evil.pth")


def test_our_config_json_is_readable(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    save_checkpoint(DeltaVLM.from_config(cfg), tmp_path / "ours")
    meta = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert meta["format"] == "changeagent.deltavlm" and meta["trainable_only"] is True
    assert math.isclose(meta["config"]["csrm"]["dropout"], 0.5)


def test_partial_pretrained_weights_are_reported(
    cfg: DeltaVLMConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _release_file(DeltaVLM.from_config(cfg), tmp_path / "release.pth")
    configured = cfg.with_updates(weights={"release_checkpoint": str(tmp_path / "release.pth")})
    model = DeltaVLM.from_config(configured)
    with caplog.at_level("WARNING"):
        load_weights(model, configured.weights)
    assert "language_model.model" in caplog.text and "vision_model.embeddings" in caplog.text
    with pytest.raises(CheckpointError) as error:
        load_weights(model, configured.weights, strict=True)
    assert "language_model.lm_head.weight" in error.value.missing


def test_instructblip_directory_without_llm_when_llm_dir_is_given(cfg: DeltaVLMConfig, tmp_path: Path) -> None:
    _hf_instructblip(cfg, tmp_path / "ib")
    weights = tmp_path / "ib" / "model.safetensors"
    save_file(
        {k: v for k, v in load_file(str(weights)).items() if not k.startswith("language_model.")},
        str(weights),
    )
    LlamaForCausalLM(llm_hf_config(cfg.llm)).save_pretrained(tmp_path / "llama")
    configured = cfg.with_updates(
        weights={"instructblip_dir": str(tmp_path / "ib"), "llm_dir": str(tmp_path / "llama")}
    )
    model = DeltaVLM.from_config(configured)
    reports = load_weights(model, configured.weights, strict=False)
    assert [r.format for r in reports] == ["hf-instructblip", "hf-llama"]
    with pytest.raises(CheckpointError, match="language_model"):
        load_instructblip_dir(model, tmp_path / "ib")
