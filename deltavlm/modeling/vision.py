"""Bi-VE: EVA-ViT-g/14 as transformers' ``InstructBlipVisionModel``, shared by both dates.

The LAVIS EVA-ViT-g (39 pre-norm blocks, qkv with separate q/v biases, no final norm) followed by the
release's trainable ``ln_vision`` is exactly ``InstructBlipVisionModel`` with its ``post_layernorm``
playing ``ln_vision``. We call its parts ourselves so that the frozen prefix runs without autograd:
training then keeps activations only for the trainable last blocks, which is what makes selective
fine-tuning of a 1 B-parameter encoder cheap.
"""

from __future__ import annotations

import torch
from transformers import InstructBlipVisionConfig, InstructBlipVisionModel

from deltavlm.config import VisionConfig


def vision_hf_config(config: VisionConfig) -> InstructBlipVisionConfig:
    """The transformers config describing our EVA-ViT-g (or its tiny twin)."""
    return InstructBlipVisionConfig(
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        image_size=config.image_size,
        patch_size=config.patch_size,
        hidden_act="gelu",
        layer_norm_eps=config.layer_norm_eps,
        attention_dropout=0.0,
        qkv_bias=True,
        initializer_range=0.02,  # transformers' 1e-10 default would start an untrained encoder at zero
    )


def build_vision_model(config: VisionConfig) -> InstructBlipVisionModel:
    """EVA-ViT-g + ``ln_vision``; the post-norm gets LAVIS's eps, which differs from the blocks' norms."""
    model = InstructBlipVisionModel(vision_hf_config(config))
    model.post_layernorm.eps = config.ln_vision_eps
    return model


def encode_bitemporal(
    vision: InstructBlipVisionModel, pixels_t1: torch.Tensor, pixels_t2: torch.Tensor, trainable_blocks: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both dates through the shared encoder in one batched forward → (F_t1, F_t2), each B×(1+N)×D.

    The first ``num_layers - trainable_blocks`` blocks run under ``no_grad``; the last blocks and
    ``ln_vision`` keep autograd when it is enabled.
    """
    if pixels_t1.shape != pixels_t2.shape:
        raise ValueError(f"t1 and t2 batches differ: {tuple(pixels_t1.shape)} vs {tuple(pixels_t2.shape)}")
    layers = vision.encoder.layers
    frozen = len(layers) - trainable_blocks
    pixels = torch.cat([pixels_t1, pixels_t2], dim=0)
    with torch.no_grad():
        hidden = vision.embeddings(pixels)
        for layer in layers[:frozen]:
            hidden = layer(hidden)
    for layer in layers[frozen:]:
        hidden = layer(hidden)
    hidden = vision.post_layernorm(hidden)
    first, second = hidden.chunk(2, dim=0)
    return first, second
