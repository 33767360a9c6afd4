"""DeltaVLM: Bi-VE → CSRM → instruction-aware Q-former → projection → LLM, plus the optional mask head.

The submodules keep transformers' InstructBLIP attribute names (``vision_model``, ``query_tokens``,
``qformer``, ``language_projection``, ``language_model``), so a Hugging Face InstructBLIP state dict maps
onto ours by identity; ``csrm`` and ``mask_head`` are ours.

The forward is split where the per-pair cache cuts it: :meth:`DeltaVLM.encode_pair` (Bi-VE + CSRM, once
per image pair) and the per-turn rest (Q-former reads the question, then the LLM).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from deltavlm.config import DeltaVLMConfig, RuntimeConfig
from deltavlm.modeling.batch import DeltaVLMBatch, TextBatch
from deltavlm.modeling.csrm import build_csrm
from deltavlm.modeling.generation import GenerationOptions, generate_tokens, splice_visual_tokens
from deltavlm.modeling.llm import build_language_model
from deltavlm.modeling.mask_head import ChangeMaskHead, mask_loss
from deltavlm.modeling.qformer import build_qformer, query_states
from deltavlm.modeling.vision import build_vision_model, encode_bitemporal

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class PairFeatures:
    """What one pass of Bi-VE + CSRM yields for a batch of pairs; the unit the pair cache stores.

    ``tokens`` (B×2T×D) is the CSRM output the Q-former cross-attends to; ``maps`` holds the two dates'
    ``ln_vision`` outputs (B×T×D each) when the mask head needs them.
    """

    tokens: torch.Tensor
    maps: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def nbytes(self) -> int:
        tensors = [self.tokens, *(self.maps or ())]
        return sum(t.numel() * t.element_size() for t in tensors)

    def select(self, index: int | Sequence[int]) -> PairFeatures:
        rows = [index] if isinstance(index, int) else list(index)
        maps = None if self.maps is None else (self.maps[0][rows], self.maps[1][rows])
        return PairFeatures(self.tokens[rows], maps)

    def detach(self) -> PairFeatures:
        maps = None if self.maps is None else (self.maps[0].detach(), self.maps[1].detach())
        return PairFeatures(self.tokens.detach(), maps)

    @staticmethod
    def concat(parts: Sequence[PairFeatures]) -> PairFeatures:
        if not parts:
            raise ValueError("no features to concatenate")
        tokens = torch.cat([p.tokens for p in parts])
        if any(p.maps is None for p in parts):
            return PairFeatures(tokens)
        maps = (
            torch.cat([p.maps[0] for p in parts if p.maps]),
            torch.cat([p.maps[1] for p in parts if p.maps]),
        )
        return PairFeatures(tokens, maps)


@dataclass
class DeltaVLMOutput:
    """Losses (``loss`` = language loss + mask loss, each present when its targets were given) and logits."""

    loss: torch.Tensor | None
    lm_loss: torch.Tensor | None
    mask_loss: torch.Tensor | None
    logits: torch.Tensor
    mask_logits: torch.Tensor | None = None


def resolve_device(runtime: RuntimeConfig) -> torch.device:
    """``auto`` means CUDA when present, else CPU; any explicit torch device string is taken as is."""
    if runtime.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(runtime.device)


class DeltaVLM(nn.Module):
    """The whole model. Build it with :meth:`from_config` (seeded init, device placement)."""

    def __init__(self, config: DeltaVLMConfig) -> None:
        super().__init__()
        self.config = config
        vision, qformer, llm = config.vision, config.qformer, config.llm
        self.vision_model = build_vision_model(vision)
        self.csrm = build_csrm(config.csrm, vision.hidden_size)
        self.query_tokens = nn.Parameter(torch.zeros(1, qformer.num_query_tokens, qformer.hidden_size))
        nn.init.normal_(self.query_tokens, std=0.02)
        self.qformer = build_qformer(qformer, vision.hidden_size)
        self.language_projection = nn.Linear(qformer.hidden_size, llm.hidden_size)
        self.language_model = build_language_model(llm)
        self.mask_head = (
            ChangeMaskHead(config.mask_head, vision.hidden_size, vision.grid, vision.image_size)
            if config.mask_head.enabled
            else None
        )
        self.vision_encoder_calls = 0
        self.configure_trainable()

    @classmethod
    def from_config(cls, config: DeltaVLMConfig, device: torch.device | str | None = None) -> DeltaVLM:
        """Random init from ``weights.init_seed`` (without touching the caller's RNG), then placement."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.weights.init_seed)
            model = cls(config)
        return model.place(device)

    # --- trainability and placement -------------------------------------------------------------

    def configure_trainable(self) -> None:
        """Freeze per config: the Bi-VE prefix and the LLM stay fixed, everything that adapts trains."""
        self.requires_grad_(False)
        blocks = self.config.finetune_vision_blocks
        if blocks:
            for layer in self.vision_model.encoder.layers[-blocks:]:
                layer.requires_grad_(True)
        for module in (self.vision_model.post_layernorm, self.csrm, self.qformer, self.language_projection):
            module.requires_grad_(True)
        self.query_tokens.requires_grad_(True)
        self.language_model.requires_grad_(not self.config.llm.frozen)
        if self.mask_head is not None:
            self.mask_head.requires_grad_(True)

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` for everything the optimiser should update."""
        return [(name, p) for name, p in self.named_parameters() if p.requires_grad]

    def param_groups(self, weight_decay: float = 0.05) -> list[dict[str, object]]:
        """AdamW groups as released: decay on weight matrices, none on biases, norms and 1-D parameters."""
        decay, no_decay = [], []
        for name, param in self.trainable_parameters():
            (no_decay if param.ndim < 2 or name.endswith(".bias") else decay).append(param)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def train(self, mode: bool = True) -> DeltaVLM:
        """Frozen parts stay in eval mode (no dropout) while the rest trains."""
        super().train(mode)
        if self.config.llm.frozen:
            self.language_model.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.query_tokens.device

    def place(self, device: torch.device | str | None = None) -> DeltaVLM:
        """Move to the configured (or given) device; a frozen LLM off the CPU takes the configured dtype."""
        target = torch.device(device) if device is not None else resolve_device(self.config.runtime)
        self.to(target)
        if target.type != "cpu" and self.config.llm.frozen:
            self.language_model.to(_DTYPES[self.config.runtime.frozen_llm_dtype])
        return self

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """bf16/fp16 autocast on accelerators as configured; a no-op on CPU."""
        dtype = self.config.runtime.autocast_dtype
        device_type = self.device.type
        if device_type == "cpu" or device_type == "meta" or dtype == "none":
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type, dtype=_DTYPES[dtype])

    # --- the forward, in the pieces the cache needs -----------------------------------------------

    def encode_pair(self, pixel_t1: torch.Tensor, pixel_t2: torch.Tensor) -> PairFeatures:
        """Bi-VE (one batched forward for both dates) and CSRM; counts vision-encoder calls."""
        self.vision_encoder_calls += 1
        with self.autocast():
            f_t1, f_t2 = encode_bitemporal(
                self.vision_model,
                pixel_t1.to(self.device),
                pixel_t2.to(self.device),
                self.config.finetune_vision_blocks,
            )
            tokens = self.csrm(f_t1, f_t2)
        return PairFeatures(tokens, (f_t1, f_t2) if self.mask_head is not None else None)

    def visual_tokens(self, features: PairFeatures, text: TextBatch) -> torch.Tensor:
        """Q-former over the pair's tokens with this turn's instruction, projected into the LLM: B×Q×H."""
        with self.autocast():
            states = query_states(
                self.qformer,
                self.query_tokens,
                text.qformer_input_ids,
                text.qformer_attention_mask,
                features.tokens,
            )
            return self.language_projection(states)

    def language_forward(self, features: PairFeatures, text: TextBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """LLM logits and the answer-only loss (labels outside the answer are ignored)."""
        visual = self.visual_tokens(features, text)
        embeds = splice_visual_tokens(self.language_model, text.input_ids, visual)
        positions = (text.attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        has_labels = bool((text.labels != -100).any())
        with self.autocast():
            out = self.language_model(
                inputs_embeds=embeds,
                attention_mask=text.attention_mask,
                position_ids=positions,
                labels=text.labels if has_labels else None,
                use_cache=False,
            )
        return out.logits, out.loss

    def forward(self, batch: DeltaVLMBatch) -> DeltaVLMOutput:
        """One training/evaluation step: answer-only language loss, plus the mask loss when targets exist."""
        batch = batch.to(self.device)
        features = self.encode_pair(batch.pixel_t1, batch.pixel_t2)
        logits, lm_loss = self.language_forward(features, batch.text)
        mask_logits = loss_mask = None
        if self.mask_head is not None and batch.mask_target is not None:
            mask_logits = self.mask_logits(features, tuple(batch.mask_target.shape[-2:]))
            loss_mask = mask_loss(mask_logits, batch.mask_target, self.config.mask_head)
        parts = [loss for loss in (lm_loss, loss_mask) if loss is not None]
        total = torch.stack(parts).sum() if parts else None
        return DeltaVLMOutput(loss=total, lm_loss=lm_loss, mask_loss=loss_mask, logits=logits, mask_logits=mask_logits)

    def mask_logits(self, features: PairFeatures, output_size: tuple[int, int]) -> torch.Tensor:
        """Mask-head logits B×C×H×W at ``output_size``."""
        if self.mask_head is None or features.maps is None:
            raise RuntimeError("the mask head is disabled in this config (mask_head.enabled: false)")
        f_t1, f_t2 = features.maps
        if self.config.mask_head.detach_features:
            f_t1, f_t2 = f_t1.detach(), f_t2.detach()
        with self.autocast():
            return self.mask_head(f_t1, f_t2, output_size).float()

    @torch.no_grad()
    def predict_mask(self, features: PairFeatures, output_size: tuple[int, int]) -> torch.Tensor:
        """Class indices B×H×W (0 background, 1 road, 2 building)."""
        return self.mask_logits(features, output_size).argmax(dim=1)

    @torch.no_grad()
    def generate(
        self,
        features: PairFeatures,
        text: TextBatch,
        options: GenerationOptions,
        eos_id: int,
        pad_id: int,
        bos_id: int | None = None,
    ) -> torch.Tensor:
        """New token ids for each (pair, prompt) row; prompts must be left-padded."""
        text = text.to(self.device)
        visual = self.visual_tokens(features, text)
        embeds = splice_visual_tokens(self.language_model, text.input_ids, visual)
        with self.autocast():
            return generate_tokens(self.language_model, embeds, text.attention_mask, options, eos_id, pad_id, bos_id)
