"""The instruction-aware Q-former: transformers' ``InstructBlipQFormerModel`` and the glue around it.

Learnable queries share self-attention with the instruction tokens and cross-attend (every
``cross_attention_frequency``-th layer) to the CSRM output; only the query states leave the Q-former.
"""

from __future__ import annotations

import torch
from transformers import InstructBlipQFormerConfig, InstructBlipQFormerModel

from deltavlm.config import QFormerConfig


def qformer_hf_config(config: QFormerConfig, encoder_hidden_size: int) -> InstructBlipQFormerConfig:
    """The transformers config of our Q-former (BERT-base with cross-attention in the full config)."""
    return InstructBlipQFormerConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        cross_attention_frequency=config.cross_attention_frequency,
        encoder_hidden_size=encoder_hidden_size,
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        layer_norm_eps=config.layer_norm_eps,
        pad_token_id=0,
    )


def build_qformer(config: QFormerConfig, encoder_hidden_size: int) -> InstructBlipQFormerModel:
    """A randomly initialised Q-former whose weights the checkpoint loaders fill in."""
    return InstructBlipQFormerModel(qformer_hf_config(config, encoder_hidden_size))


def query_states(
    qformer: InstructBlipQFormerModel,
    query_tokens: torch.Tensor,
    text_ids: torch.Tensor,
    text_mask: torch.Tensor,
    image_tokens: torch.Tensor,
) -> torch.Tensor:
    """Run the queries and the instruction together over the image tokens → B×Q×H query states."""
    batch = image_tokens.shape[0]
    queries = query_tokens.expand(batch, -1, -1)
    query_mask = torch.ones(queries.shape[:2], dtype=text_mask.dtype, device=text_mask.device)
    image_mask = torch.ones(image_tokens.shape[:2], dtype=torch.long, device=image_tokens.device)
    output = qformer(
        input_ids=text_ids,
        attention_mask=torch.cat([query_mask, text_mask], dim=1),
        query_embeds=queries,
        encoder_hidden_states=image_tokens,
        encoder_attention_mask=image_mask,
    )
    return output.last_hidden_state[:, : queries.shape[1], :]
