"""DeltaVLM configuration as data: every size, switch and weight path in one validated object.

The ``full`` and ``tiny`` configs (``deltavlm/configs/*.yaml``) go through the same code path; only
numbers differ. Field defaults are the paper's / release's values, so a YAML file only states what
it changes. Configs are frozen so that a cache key or a saved checkpoint can trust them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

CSRMMode = Literal["release", "paper", "none"]
TextConvention = Literal["release", "paper"]
PromptForm = Literal["eval", "raw"]
TrainingText = Literal["release", "prompt"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VisionConfig(_Frozen):
    """EVA-ViT-g/14 in the LAVIS layout (39 blocks: EVA-CLIP-g without its last block)."""

    image_size: int = 224
    patch_size: int = 14
    hidden_size: int = 1408
    intermediate_size: int = 6144
    num_layers: int = 39
    num_heads: int = 16
    layer_norm_eps: float = 1e-6
    ln_vision_eps: float = Field(1e-5, description="LAVIS builds ln_vision with nn.LayerNorm's default eps.")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid + 1


class QFormerConfig(_Frozen):
    """BERT-base Q-former with instruction tokens (InstructBLIP)."""

    vocab_size: int = 30523
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    cross_attention_frequency: int = 2
    num_query_tokens: int = 32
    max_text_tokens: int = Field(128, description="Instruction tokens kept (left-truncated) for the Q-former.")
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12


class LLMConfig(_Frozen):
    """LLaMA-architecture decoder (Vicuna-7B in the full config)."""

    vocab_size: int = 32001
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    frozen: bool = True


class CSRMConfig(_Frozen):
    """Cross-temporal selective reasoning: ``release`` layout, ``paper`` equations, or ``none`` (ablation)."""

    mode: CSRMMode = "release"
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="On context and gate, training only.")


class MaskHeadConfig(_Frozen):
    """Our change-mask head (background / road / building) on the Bi-VE feature maps."""

    enabled: bool = False
    channels: int = 256
    num_classes: int = 3
    detach_features: bool = Field(True, description="Train the head without moving the VLM's features.")
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    ignore_index: int = 255


class TextConfig(_Frozen):
    """How questions, answers and dialog history become token sequences."""

    convention: TextConvention = "release"
    prompt_form: PromptForm = Field(
        "eval",
        description="Release convention, inference prompts: 'eval' normalises the question as the authors' "
        "evaluation does (lowercase, punctuation to spaces; the paper's numbers come from it), 'raw' passes "
        "it as written, as their infer_subtasks.py does.",
    )
    training_text: TrainingText = Field(
        "release",
        description="Release convention, samples with an answer: 'release' writes the authors' training "
        "text ('q ' before the question, the history's colons stripped, the first max_words words kept); "
        "'prompt' trains on the inference prompt of prompt_form (see docs/TRAINING.md).",
    )
    max_words: int = Field(50, description="Release normalisation keeps the first 50 words.")
    max_prompt_tokens: int = Field(128, description="LLM instruction tokens kept (left-truncated).")
    max_answer_tokens: int = 256
    stop_token: str = Field("</s>", description="What the paper's <STOP> is written as.")


class GenerationDefaults(_Frozen):
    """Decoding settings as evaluated by the release (5 beams, repetition penalty 1.5, no sampling).

    The release calls transformers 4.33's ``generate(inputs_embeds=...)``, whose history starts at the
    LLM's BOS id (1): its ``max_length=256, min_length=1`` are 255 new tokens and no EOS block, and its
    repetition penalty always covers id 1. ``history_start_id`` reproduces that start.
    """

    num_beams: int = 5
    max_new_tokens: int = Field(255, description="The release's max_length=256 less its [bos] start.")
    min_new_tokens: int = Field(0, description="The release's min_length=1 is met by its [bos] start.")
    repetition_penalty: float = 1.5
    history_start_id: int | None = Field(
        1,
        description="Id the generation history starts with, as transformers 4.33 starts it at the LLM's "
        "generation_config bos_token_id (1 in Vicuna): the repetition penalty covers it at every step. "
        "null penalises the generated ids only.",
    )
    length_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int = 50
    use_cache: bool = True


class WeightsConfig(_Frozen):
    """Local weight sources, applied in this order; each later source overrides what it holds."""

    instructblip_dir: str | None = Field(None, description="(a) Hugging Face-format InstructBLIP directory.")
    llm_dir: str | None = Field(None, description="(b) Vicuna/LLaMA directory in Hugging Face format.")
    eva_vit_path: str | None = Field(None, description="(c) LAVIS eva_vit_g.pth.")
    release_checkpoint: str | None = Field(None, description="(d) the authors' checkpoint_best.pth.")
    checkpoint: str | None = Field(None, description="(e) our checkpoint directory (safetensors + JSON).")
    init_seed: int = Field(0, description="Seed of the random init that every missing weight starts from.")


class TokenizerConfig(_Frozen):
    """``tiny`` builds small tokenizers in code; ``local`` loads real ones from directories."""

    kind: Literal["tiny", "local"] = "local"
    llm_dir: str | None = Field(None, description="Defaults to weights.instructblip_dir, then weights.llm_dir.")
    qformer_dir: str | None = Field(None, description="Defaults to <instructblip_dir>/qformer_tokenizer.")


class RuntimeConfig(_Frozen):
    """Device placement and precision; nothing assumes CUDA."""

    device: str = Field("auto", description="'auto' picks cuda when available, else cpu.")
    autocast_dtype: Literal["bfloat16", "float16", "none"] = "bfloat16"
    frozen_llm_dtype: Literal["float16", "bfloat16", "float32"] = Field(
        "bfloat16",
        description="Frozen LLM weights on an accelerator; bf16 matches the default autocast (the release "
        "used fp16 weights with fp16 AMP: set both to float16 to reproduce it).",
    )
    feature_cache_bytes: int = Field(512 * 2**20, description="Memory bound of the per-pair feature cache.")
    feature_cache_entries: int = 256


class DeltaVLMConfig(_Frozen):
    """The whole model, its text conventions, weights and runtime."""

    name: str = "full"
    vision: VisionConfig = VisionConfig()
    qformer: QFormerConfig = QFormerConfig()
    llm: LLMConfig = LLMConfig()
    csrm: CSRMConfig = CSRMConfig()
    finetune_vision_blocks: int = Field(2, ge=0, description="Last Bi-VE blocks trained; 0 = 'w/o Bi-VE FT'.")
    mask_head: MaskHeadConfig = MaskHeadConfig()
    text: TextConfig = TextConfig()
    generation: GenerationDefaults = GenerationDefaults()
    weights: WeightsConfig = WeightsConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @model_validator(mode="after")
    def _check_sizes(self) -> DeltaVLMConfig:
        if self.finetune_vision_blocks > self.vision.num_layers:
            raise ValueError("finetune_vision_blocks exceeds the number of vision blocks")
        if self.vision.image_size % self.vision.patch_size:
            raise ValueError("vision.image_size must be a multiple of vision.patch_size")
        if self.qformer.max_text_tokens > self.qformer.max_position_embeddings:
            raise ValueError("qformer.max_text_tokens exceeds the Q-former's position embeddings")
        return self

    def with_updates(self, **changes: Any) -> DeltaVLMConfig:
        """A copy with nested changes (``{"csrm": {"mode": "paper"}}``), validated like a loaded file."""
        return DeltaVLMConfig.model_validate(_deep_merge(self.model_dump(), changes))

    def fingerprint(self) -> str:
        """Short hash of everything that changes the model's outputs (keys the feature cache)."""
        relevant = self.model_dump(include={"vision", "qformer", "llm", "csrm", "mask_head", "weights"})
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(source: str | Path | DeltaVLMConfig, **overrides: Any) -> DeltaVLMConfig:
    """A config by name (``full``, ``tiny``), YAML/JSON path or object, with nested overrides applied."""
    if isinstance(source, DeltaVLMConfig):
        config = source
    else:
        path = Path(source)
        if not path.suffix and not path.exists():
            path = CONFIG_DIR / f"{source}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
            raise FileNotFoundError(f"no DeltaVLM config {source!r}; known names: {known}")
        raw = yaml.safe_load(path.read_text()) if path.suffix in {".yaml", ".yml", ""} else json.loads(path.read_text())
        config = DeltaVLMConfig.model_validate(raw or {})
    return config.with_updates(**overrides) if overrides else config
