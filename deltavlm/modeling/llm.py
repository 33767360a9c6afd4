"""The LLM decoder: transformers' ``LlamaForCausalLM`` (Vicuna-7B in the full config), frozen by default."""

from __future__ import annotations

from transformers import LlamaConfig, LlamaForCausalLM

from deltavlm.config import LLMConfig


def llm_hf_config(config: LLMConfig) -> LlamaConfig:
    """The transformers config of our LLaMA decoder; the vocabulary includes the release's added [PAD]."""
    return LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        rms_norm_eps=config.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


def build_language_model(config: LLMConfig) -> LlamaForCausalLM:
    """A randomly initialised decoder whose weights the checkpoint loaders fill in."""
    return LlamaForCausalLM(llm_hf_config(config))
