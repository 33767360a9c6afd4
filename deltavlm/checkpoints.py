"""Weights from local files only, in five formats, each converted by a documented key map and checked.

(a) ``hf-instructblip``: a Hugging Face InstructBLIP directory (``config.json`` + ``*.safetensors`` or
    ``pytorch_model*.bin``, sharded or not). Our module names are transformers' InstructBLIP names, so
    the map is the identity; it must hold the vision encoder, queries, Q-former, projection and LLM.
(b) ``hf-llama``: a Vicuna/LLaMA directory; ``model.*``/``lm_head.*`` → ``language_model.*``. When its
    vocabulary lacks the release's added ``[PAD]`` row, the missing rows start as the mean embedding.
(c) ``lavis-eva-vit``: LAVIS ``eva_vit_g.pth`` (no ``visual_encoder.`` prefix), see :data:`EVA_BLOCK_MAP`.
    q and v biases become one qkv bias with a zero k bias. Linear/Conv tensors pass through fp16
    (:data:`EVA_FP16_ROUNDED`), as the release's ``vit_precision: fp16`` does; a fp16 file is unchanged.
    Blocks past the configured depth (EVA-CLIP-g's 40th), and EVA-CLIP's ``norm``/``head``/``fc_norm`` are
    dropped, as LAVIS's non-strict load does.
(d) ``release``: the authors' ``checkpoint_best.pth`` ({model, optimizer, config, scaler, epoch}); its
    ``model`` holds the trainable weights under LAVIS names, mapped as in :func:`release_to_ours`:
    ``visual_encoder.*`` as in (c), ``ln_vision`` → ``vision_model.post_layernorm``, ``Qformer.bert.*`` →
    ``qformer.*`` (``attention.self`` → ``attention.attention``, ``embeddings.LayerNorm`` →
    ``embeddings.layernorm``), ``llm_proj`` → ``language_projection``, ``context1``/``context2`` →
    ``csrm.context`` (weights concatenated over [diff; F_t], bias from ``context2``), ``gate1``/``gate2`` →
    ``csrm.gate``, ``context3`` → ``csrm.fuse``. Dropped (:data:`RELEASE_DROP`): the unused ITC heads
    ``vision_proj``/``text_proj``/``temp``, rotary ``inv_freq`` and ``position_ids`` buffers, and the
    unfinished binary ``mask_decoder``.
(e) ``deltavlm``: ours, a directory with ``model.safetensors`` (trainable weights, or everything) and
    ``config.json`` (the model config it was saved from).

Every load checks the converted names against what the format must provide: a missing, unexpected or
wrongly shaped key raises :class:`CheckpointError` listing the keys, before any weight is written.
Pickled files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from deltavlm.config import DeltaVLMConfig, WeightsConfig
from deltavlm.modeling.model import DeltaVLM

logger = logging.getLogger(__name__)

WeightFormat = Literal["hf-instructblip", "hf-llama", "lavis-eva-vit", "release", "deltavlm"]

FORMAT_NAME = "changeagent.deltavlm"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

HF_PREFIXES = ("vision_model.", "query_tokens", "qformer.", "language_projection.", "language_model.")
HF_DROP = (re.compile(r"^qformer\.embeddings\.position_ids$"), re.compile(r"rotary_emb\.inv_freq$"))
LLM_RESIZABLE = frozenset({"language_model.model.embed_tokens.weight", "language_model.lm_head.weight"})

EVA_BLOCK_MAP: tuple[tuple[str, str], ...] = (
    ("norm1.", "layer_norm1."),
    ("norm2.", "layer_norm2."),
    ("attn.qkv.weight", "self_attn.qkv.weight"),
    ("attn.proj.", "self_attn.projection."),
    ("mlp.fc1.", "mlp.fc1."),
    ("mlp.fc2.", "mlp.fc2."),
)
"""LAVIS EVA block suffix → transformers ``InstructBlipEncoderLayer`` suffix (q/v biases handled apart)."""

EVA_TOP_MAP: dict[str, str] = {
    "cls_token": "embeddings.class_embedding",
    "pos_embed": "embeddings.position_embedding",
    "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
    "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
}
EVA_DROP = re.compile(r"^(norm|fc_norm|head)\.")
EVA_FP16_ROUNDED = re.compile(
    r"^vision_model\.(embeddings\.patch_embedding\.(weight|bias)"
    r"|encoder\.layers\.\d+\.(self_attn\.qkv\.weight|self_attn\.projection\.|mlp\.fc[12]\.))"
)
"""Our names of the EVA Linear/Conv weights and biases that LAVIS's ``create_eva_vit_g(precision="fp16")`` rounds
to fp16 before the release checkpoint's trained blocks are loaded over them (q/v biases, norms, CLS token and
positions keep their precision)."""

QFORMER_SUBS: tuple[tuple[str, str], ...] = (
    (".attention.self.", ".attention.attention."),
    (".crossattention.self.", ".crossattention.attention."),
    ("embeddings.LayerNorm.", "embeddings.layernorm."),
)
"""LAVIS ``Qformer.bert`` naming → transformers ``InstructBlipQFormerModel`` naming."""

RELEASE_RENAMES: tuple[tuple[str, str], ...] = (
    ("ln_vision.", "vision_model.post_layernorm."),
    ("llm_proj.", "language_projection."),
    ("context3.", "csrm.fuse."),
    ("llm_model.", "language_model."),
)
RELEASE_FUSED: dict[str, tuple[str, str]] = {"context": ("context1", "context2"), "gate": ("gate1", "gate2")}
"""CSRM Linear over [diff; F_t] ← (release layer on diff, without bias; release layer on F_t, with bias)."""

RELEASE_DROP = (
    re.compile(r"^vision_proj\."),
    re.compile(r"^text_proj\."),
    re.compile(r"^temp$"),
    re.compile(r"^llm_model\..*rotary_emb\.inv_freq$"),
    re.compile(r"^Qformer\.bert\.embeddings\.position_ids$"),
    re.compile(r"^mask_decoder\."),
)


class CheckpointError(ValueError):
    """A weight file does not fit the model; the message lists every offending key."""

    def __init__(
        self,
        source: str,
        missing: Iterable[str] = (),
        unexpected: Iterable[str] = (),
        mismatched: Iterable[str] = (),
        hint: str = "",
    ) -> None:
        self.source = source
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        lines = [f"cannot load {source}:"]
        for title, keys in (
            ("missing keys", self.missing),
            ("unexpected keys", self.unexpected),
            ("wrongly shaped keys", self.mismatched),
        ):
            if keys:
                shown = keys[:40]
                more = f"\n    … and {len(keys) - len(shown)} more" if len(keys) > len(shown) else ""
                lines.append(f"  {len(keys)} {title}:\n    " + "\n    ".join(shown) + more)
        if hint:
            lines.append(f"  hint: {hint}")
        super().__init__("\n".join(lines))


class LoadReport(BaseModel):
    """What one source contributed: our names of the tensors it wrote, and the file keys it dropped."""

    source: str
    format: WeightFormat
    loaded: int
    keys: list[str] = Field(default_factory=list, repr=False)
    dropped: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _report(
    source: str | Path, fmt: WeightFormat, written: list[str], dropped: Iterable[str], notes: list[str]
) -> LoadReport:
    return LoadReport(
        source=str(source),
        format=fmt,
        loaded=len(written),
        keys=written,
        dropped=sorted(dropped),
        notes=notes,
    )


# --- reading files ------------------------------------------------------------------------------


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # files in the legacy (non-zip) format cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def tensor_files(path: str | Path) -> list[Path]:
    """The weight files of a file or a Hugging Face directory (shard index, safetensors, then .bin)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"weights not found: {path}")
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / index_name
        if index.exists():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [path / shard for shard in shards]
    for pattern in ("*.safetensors", "pytorch_model*.bin"):
        found = sorted(path.glob(pattern))
        if found:
            return found
    raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin in {path}")


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of one weight file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = _torch_load(path)
    if not isinstance(state, Mapping):
        raise CheckpointError(str(path), hint=f"expected a mapping of tensors, got {type(state).__name__}")
    return {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    return {key: tuple(value.shape) for key, value in read_tensors(path).items()}


# --- checking and writing -----------------------------------------------------------------------


def _model_shapes(model: DeltaVLM) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _check(
    source: str,
    provided: Mapping[str, tuple[int, ...]],
    expected: set[str],
    model_shapes: Mapping[str, tuple[int, ...]],
    missing_extra: Iterable[str] = (),
    resizable: frozenset[str] = frozenset(),
    hint: str = "",
) -> None:
    missing = (expected - provided.keys()) | set(missing_extra)
    unexpected = {key for key in provided if key not in expected}
    mismatched = []
    for key in provided.keys() & expected:
        want, got = tuple(model_shapes[key]), tuple(provided[key])
        fits = want == got or (
            key in resizable and len(want) == len(got) == 2 and want[1] == got[1] and got[0] < want[0]
        )
        if not fits:
            mismatched.append(f"{key}: model {list(want)}, file {list(got)}")
    if missing or unexpected or mismatched:
        raise CheckpointError(source, missing, unexpected, mismatched, hint)


@torch.no_grad()
def _write(model: DeltaVLM, tensors: Mapping[str, torch.Tensor], notes: list[str]) -> list[str]:
    state = model.state_dict(keep_vars=True)
    for key, value in tensors.items():
        target = state[key]
        if target.device.type == "meta":
            raise RuntimeError("a model on the meta device holds no memory to load weights into")
        value = value.to(device=target.device, dtype=target.dtype)
        if value.shape != target.shape:  # a vocabulary that lacks the release's added rows
            rows = value.shape[0]
            target[:rows].copy_(value)
            target[rows:].copy_(value.float().mean(dim=0, keepdim=True).to(target.dtype).expand_as(target[rows:]))
            notes.append(f"{key}: {target.shape[0] - rows} added vocabulary rows start as the mean embedding")
        else:
            target.copy_(value)
    return list(tensors)


def _dropped(key: str, patterns: Iterable[re.Pattern[str]]) -> bool:
    return any(pattern.search(key) for pattern in patterns)


# --- (a) and (b): Hugging Face directories --------------------------------------------------------


def _load_renamed(
    model: DeltaVLM, path: str | Path, fmt: WeightFormat, rename: Any, expected: set[str], hint: str
) -> LoadReport:
    files = tensor_files(path)
    provided: dict[str, tuple[int, ...]] = {}
    dropped: list[str] = []
    for file in files:
        for key, shape in _file_shapes(file).items():
            ours = rename(key)
            if ours is None:
                dropped.append(key)
            else:
                provided[ours] = shape
    _check(str(path), provided, expected, _model_shapes(model), resizable=LLM_RESIZABLE, hint=hint)
    notes: list[str] = []
    written: list[str] = []
    for file in files:  # one shard in memory at a time
        tensors = {}
        for key, value in read_tensors(file).items():
            ours = rename(key)
            if ours is not None:
                tensors[ours] = value
        written += _write(model, tensors, notes)
    return _report(path, fmt, written, dropped, notes)


def load_instructblip_dir(model: DeltaVLM, path: str | Path, require_llm: bool = True) -> LoadReport:
    """(a) Vision encoder, queries, Q-former, projection and LLM from a HF InstructBLIP directory.

    With ``require_llm=False`` (a separate LLM directory is configured) the LLM weights may be absent.
    """
    expected = {key for key in model.state_dict() if key.startswith(HF_PREFIXES)}
    if not require_llm:
        present = {key for file in tensor_files(path) for key in _file_shapes(file)}
        if not any(key.startswith("language_model.") for key in present):
            expected = {key for key in expected if not key.startswith("language_model.")}

    def rename(key: str) -> str | None:
        return None if _dropped(key, HF_DROP) else key

    return _load_renamed(
        model,
        path,
        "hf-instructblip",
        rename,
        expected,
        "expected transformers' InstructBlipForConditionalGeneration names",
    )


def load_llm_dir(model: DeltaVLM, path: str | Path) -> LoadReport:
    """(b) The LLM from a Hugging Face LLaMA/Vicuna directory."""
    expected = {key for key in model.state_dict() if key.startswith("language_model.")}

    def rename(key: str) -> str | None:
        return None if _dropped(key, HF_DROP) else f"language_model.{key}"

    return _load_renamed(model, path, "hf-llama", rename, expected, "expected LlamaForCausalLM names")


# --- (c) LAVIS EVA-ViT-g and the vision part of (d) -----------------------------------------------


def convert_eva(
    state: Mapping[str, torch.Tensor], num_layers: int, prefix: str = ""
) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """LAVIS EVA names (under ``prefix``) → ``vision_model.*``: (converted, dropped, incomplete).

    Keys this map does not know are passed through under their own names, so the check reports them.
    """
    converted: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    biases: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        block = re.match(r"blocks\.(\d+)\.(.+)$", name)
        if name in EVA_TOP_MAP:
            converted[f"vision_model.{EVA_TOP_MAP[name]}"] = value
        elif EVA_DROP.match(name) or (block and int(block.group(1)) >= num_layers):
            dropped.append(key)
        elif block and block.group(2) in ("attn.q_bias", "attn.v_bias"):
            biases.setdefault(int(block.group(1)), {})[block.group(2)[5]] = value
        elif block and (suffix := _map_suffix(block.group(2), EVA_BLOCK_MAP)) is not None:
            converted[f"vision_model.encoder.layers.{block.group(1)}.{suffix}"] = value
        else:
            converted[key] = value
    incomplete = []
    for index, parts in sorted(biases.items()):
        if set(parts) != {"q", "v"}:
            absent = "v" if "q" in parts else "q"
            incomplete.append(f"{prefix}blocks.{index}.attn.{absent}_bias")
            continue
        q_bias, v_bias = parts["q"], parts["v"]
        converted[f"vision_model.encoder.layers.{index}.self_attn.qkv.bias"] = torch.cat(
            [q_bias, torch.zeros_like(q_bias), v_bias]
        )
    return converted, dropped, incomplete


def _map_suffix(suffix: str, table: Iterable[tuple[str, str]]) -> str | None:
    for source, target in table:
        if suffix == source or (source.endswith(".") and suffix.startswith(source)):
            return target + suffix[len(source) :]
    return None


def load_eva_vit(model: DeltaVLM, path: str | Path) -> LoadReport:
    """(c) The EVA-ViT-g blocks, patch embedding, CLS token and positions from LAVIS ``eva_vit_g.pth``."""
    state = read_tensors(path)
    converted, dropped, incomplete = convert_eva(state, model.config.vision.num_layers)
    expected = {
        key for key in model.state_dict() if key.startswith(("vision_model.embeddings.", "vision_model.encoder."))
    }
    provided = {key: tuple(value.shape) for key, value in converted.items()}
    _check(
        str(path),
        provided,
        expected,
        _model_shapes(model),
        incomplete,
        hint="expected LAVIS EVA-ViT names without the 'visual_encoder.' prefix",
    )
    rounded = [key for key in converted if EVA_FP16_ROUNDED.search(key) and converted[key].dtype != torch.float16]
    for key in rounded:
        converted[key] = converted[key].to(torch.float16)
    notes = (
        [f"{len(rounded)} Linear/Conv tensors rounded to fp16, as the release's vit_precision: fp16"] if rounded else []
    )
    return _report(path, "lavis-eva-vit", _write(model, converted, notes), dropped, notes)


# --- (d) the authors' release ---------------------------------------------------------------------


def release_to_ours(
    state: Mapping[str, torch.Tensor], config: DeltaVLMConfig
) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """The release's ``model`` dict → our names: (converted, dropped, incomplete)."""
    converted, dropped, incomplete = convert_eva(state, config.vision.num_layers, prefix="visual_encoder.")
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("visual_encoder."):
            continue
        if _dropped(key, RELEASE_DROP):
            dropped.append(key)
        elif key == "query_tokens":
            converted[key] = value
        elif key.startswith("Qformer.bert."):
            name = "qformer." + key[len("Qformer.bert.") :]
            for source, target in QFORMER_SUBS:
                name = name.replace(source, target)
            converted[name] = value
        elif (match := re.match(r"^(context1|context2|gate1|gate2)\.(weight|bias)$", key)) is not None:
            fused.setdefault(match.group(1), {})[match.group(2)] = value
        elif (suffix := _map_suffix(key, RELEASE_RENAMES)) is not None:
            converted[suffix] = value
        else:
            converted[key] = value
    for ours, (on_diff, on_feature) in RELEASE_FUSED.items():
        if on_diff not in fused and on_feature not in fused:
            continue
        needed = {f"{on_diff}.weight", f"{on_feature}.weight", f"{on_feature}.bias"}
        have = {f"{layer}.{kind}" for layer in (on_diff, on_feature) for kind in fused.get(layer, {})}
        if needed - have:
            incomplete.extend(sorted(needed - have))
            continue
        for name in sorted(have - needed):  # e.g. a bias on the difference layer: reported as unexpected
            layer, kind = name.split(".")
            converted[name] = fused[layer][kind]
        converted[f"csrm.{ours}.weight"] = torch.cat([fused[on_diff]["weight"], fused[on_feature]["weight"]], dim=1)
        converted[f"csrm.{ours}.bias"] = fused[on_feature]["bias"]
    return converted, dropped, incomplete


def release_expected_keys(model: DeltaVLM) -> set[str]:
    """Our names of everything a release checkpoint must hold for this config (its trainable set)."""
    return {name for name, _ in model.trainable_parameters() if not name.startswith("mask_head.")}


def load_release_checkpoint(model: DeltaVLM, path: str | Path) -> LoadReport:
    """(d) The authors' ``checkpoint_best.pth``: trained vision blocks, ln_vision, Q-former, queries, CSRM."""
    checkpoint = _torch_load(Path(path))
    if not isinstance(checkpoint, Mapping) or "model" not in checkpoint:
        raise CheckpointError(str(path), hint="expected a dict with a 'model' entry (the release's format)")
    state = {k: v for k, v in checkpoint["model"].items() if isinstance(v, torch.Tensor)}
    converted, dropped, incomplete = release_to_ours(state, model.config)
    hint = ""
    if model.config.csrm.mode != "release":
        mode = model.config.csrm.mode
        hint = f"release weights carry the release CSRM layout; this config has csrm.mode={mode!r}"
    provided = {key: tuple(value.shape) for key, value in converted.items()}
    _check(str(path), provided, release_expected_keys(model), _model_shapes(model), incomplete, hint=hint)
    notes: list[str] = []
    written = _write(model, converted, notes)
    epoch = checkpoint.get("epoch")
    if epoch is not None:
        notes.append(f"release checkpoint from epoch {epoch}")
    return _report(path, "release", written, dropped, notes)


def ours_to_release(model: DeltaVLM) -> dict[str, torch.Tensor]:
    """The inverse map: this model's trainable weights under the release's names (for export and tests)."""
    state = model.state_dict()
    inverse_blocks = tuple((target, source) for source, target in EVA_BLOCK_MAP)
    inverse_renames = tuple((target, source) for source, target in RELEASE_RENAMES)
    result: dict[str, torch.Tensor] = {}
    for key in sorted(release_expected_keys(model)):
        value = state[key].detach().cpu()
        block = re.match(r"vision_model\.encoder\.layers\.(\d+)\.(.+)$", key)
        if block is not None:
            prefix, suffix = f"visual_encoder.blocks.{block.group(1)}.", block.group(2)
            if suffix == "self_attn.qkv.bias":
                q_bias, k_bias, v_bias = value.chunk(3)
                if bool(k_bias.any()):
                    raise ValueError(f"{key}: a non-zero k bias has no place in the release layout")
                result[prefix + "attn.q_bias"], result[prefix + "attn.v_bias"] = (
                    q_bias.clone(),
                    v_bias.clone(),
                )
                continue
            name = _map_suffix(suffix, inverse_blocks)
            if name is None:
                raise ValueError(f"{key} has no release name")
            result[prefix + name] = value
        elif key.startswith("qformer."):
            name = key
            for source, target in QFORMER_SUBS:
                name = name.replace(target, source)
            result["Qformer.bert." + name[len("qformer.") :]] = value
        elif key.startswith(("csrm.context.", "csrm.gate.")):
            _, kind, part = key.split(".")
            on_diff, on_feature = RELEASE_FUSED[kind]
            if part == "weight":
                on_diff_weight, on_feature_weight = value.chunk(2, dim=1)
                result[f"{on_diff}.weight"] = on_diff_weight.clone()
                result[f"{on_feature}.weight"] = on_feature_weight.clone()
            else:
                result[f"{on_feature}.bias"] = value
        elif key == "query_tokens":
            result[key] = value
        else:
            name = _map_suffix(key, inverse_renames)
            if name is None:
                raise ValueError(f"{key} has no release name")
            result[name] = value
    return result


# --- (e) ours -------------------------------------------------------------------------------------


def save_checkpoint(model: DeltaVLM, directory: str | Path, trainable_only: bool = True) -> Path:
    """Write ``model.safetensors`` (trainable weights, or all) and ``config.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    keys = [name for name, _ in model.trainable_parameters()] if trainable_only else list(state)
    tensors = {key: state[key].detach().cpu().contiguous() for key in keys}
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "trainable_only": trainable_only,
        "config": model.config.model_dump(mode="json"),
    }
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    return directory


def read_checkpoint_meta(directory: str | Path) -> dict[str, Any]:
    """Our ``config.json``; raises when the directory is not one of our checkpoints."""
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {directory}")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(str(directory), hint=f"{CONFIG_FILE} is not a {FORMAT_NAME} checkpoint config")
    return meta


def checkpoint_config(directory: str | Path) -> DeltaVLMConfig:
    """The model config a checkpoint of ours was saved from."""
    return DeltaVLMConfig.model_validate(read_checkpoint_meta(directory)["config"])


def _architecture(config: DeltaVLMConfig) -> dict[str, Any]:
    return config.model_dump(
        include={
            "vision": True,
            "qformer": True,
            "llm": True,
            "csrm": {"mode"},
            "finetune_vision_blocks": True,
            "mask_head": {"enabled", "channels", "num_classes"},
        }
    )


def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        return [
            d
            for key in sorted(saved.keys() | current.keys())
            for d in _differences(saved.get(key), current.get(key), f"{path}.{key}" if path else key)
        ]
    return [] if saved == current else [f"{path}: checkpoint {saved!r}, model {current!r}"]


def load_checkpoint(model: DeltaVLM, directory: str | Path) -> LoadReport:
    """(e) Our checkpoint; its architecture must equal the model's."""
    meta = read_checkpoint_meta(directory)
    saved = DeltaVLMConfig.model_validate(meta["config"])
    differences = _differences(_architecture(saved), _architecture(model.config))
    if differences:
        raise CheckpointError(str(directory), hint="architecture differs: " + "; ".join(differences))
    file = Path(directory) / WEIGHTS_FILE
    expected = (
        {name for name, _ in model.trainable_parameters()}
        if meta.get("trainable_only", True)
        else set(model.state_dict())
    )
    _check(str(file), _file_shapes(file), expected, _model_shapes(model))
    notes: list[str] = []
    return _report(directory, "deltavlm", _write(model, read_tensors(file), notes), [], notes)


# --- dispatch ---------------------------------------------------------------------------------------


def detect_format(path: str | Path) -> WeightFormat:
    """Which of the five formats a path holds, from its config file or its keys."""
    path = Path(path)
    if path.is_dir():
        config_path = path / CONFIG_FILE
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        if config.get("format") == FORMAT_NAME:
            return "deltavlm"
        if config.get("model_type") == "instructblip":
            return "hf-instructblip"
        if config.get("model_type") == "llama":
            return "hf-llama"
        raise CheckpointError(
            str(path),
            hint="a directory needs our config.json or a transformers config.json "
            "with model_type 'instructblip' or 'llama'",
        )
    state = _torch_load(path) if path.suffix != ".safetensors" else None
    if isinstance(state, Mapping) and "model" in state:
        return "release"
    if isinstance(state, Mapping) and any(str(k).startswith("blocks.") for k in state):
        return "lavis-eva-vit"
    raise CheckpointError(str(path), hint="not a release checkpoint (dict with 'model') nor a LAVIS eva_vit_g.pth")


_LOADERS = {
    "hf-instructblip": load_instructblip_dir,
    "hf-llama": load_llm_dir,
    "lavis-eva-vit": load_eva_vit,
    "release": load_release_checkpoint,
    "deltavlm": load_checkpoint,
}


def load_any(model: DeltaVLM, path: str | Path, fmt: WeightFormat | None = None) -> LoadReport:
    """Load one source, detecting its format unless given."""
    return _LOADERS[fmt or detect_format(path)](model, path)


def load_weights(model: DeltaVLM, weights: WeightsConfig, strict: bool = False) -> list[LoadReport]:
    """Apply the configured sources in order (a) → (e); later sources override what they hold.

    When a pretrained source (a)–(d) is configured, weights that no source provided are named in a warning
    (or, with ``strict``, a :class:`CheckpointError`): a full model with a random LLM would otherwise answer
    nonsense without a sign. Without one, the seeded random init is the intent (tiny runs, whose own
    checkpoints hold the trained weights only).
    """
    reports = []
    if weights.instructblip_dir:
        reports.append(load_instructblip_dir(model, weights.instructblip_dir, require_llm=not weights.llm_dir))
    sources: list[tuple[str | None, WeightFormat]] = [
        (weights.llm_dir, "hf-llama"),
        (weights.eva_vit_path, "lavis-eva-vit"),
        (weights.release_checkpoint, "release"),
        (weights.checkpoint, "deltavlm"),
    ]
    reports += [load_any(model, path, fmt) for path, fmt in sources if path]
    pretrained = weights.instructblip_dir or weights.llm_dir or weights.eva_vit_path or weights.release_checkpoint
    if pretrained:
        uncovered = uncovered_keys(model, reports)
        if uncovered and strict:
            raise CheckpointError("the configured weights", missing=uncovered, hint="no source provided these")
        if uncovered:
            logger.warning("DeltaVLM weights left at their random init: %s", _summarize_keys(uncovered))
    return reports


def uncovered_keys(model: DeltaVLM, reports: Iterable[LoadReport]) -> list[str]:
    """Model weights that none of the reported loads wrote."""
    covered = {key for report in reports for key in report.keys}
    return sorted(set(model.state_dict()) - covered)


def _summarize_keys(keys: Iterable[str]) -> str:
    groups = Counter(".".join(key.split(".")[:2]) for key in keys)
    return ", ".join(f"{group} ({count})" for group, count in sorted(groups.items()))
