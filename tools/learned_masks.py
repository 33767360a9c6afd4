"""Learned change masks: a change detector the user already has, and the DeltaVLM mask head.

Supervised change detectors (BIT, ChangeFormer, …) reach pixel F1 0.91–0.94 on LEVIR-CD, far above any
classical mask, so a user who has one should be able to plug it in without writing code: export it to ONNX
or as a ``torch.export`` program, write a small sidecar that says how the model wants its pixels and what
its output means, and point the agent at the file.

The sidecar (``model.onnx.yaml``, ``model.yaml`` or ``model.json`` next to the model, or passed explicitly)::

    name: bit-levircd            # shown as the mask's provider (default: the file name)
    input_size: [256, 256]       # height, width the model takes; larger images are tiled, smaller padded
    inputs: pair                 # pair: two tensors (t1, t2); stacked: one 6-channel tensor (t1 then t2)
    band_order: rgb              # or bgr
    scale: 255.0                 # pixels are divided by this, then normalised per band:
    mean: [0.5, 0.5, 0.5]
    std: [0.5, 0.5, 0.5]
    output: class_logits         # binary_logits | probabilities | class_logits
    class_names: [background, change]   # per output channel: background, change, road, building
    threshold: 0.5               # changed where P(change) = 1 − P(background) exceeds this
    output_index: 0              # which model output is the change map (ChangeFormer: -1, its last)
    tile_overlap: 32             # pixels shared by neighbouring tiles; their probabilities are blended
    confidence: 0.9              # how far you trust this model on your imagery (e.g. its validation F1)

The model and sidecar are checked against each other when the provider is built (number of inputs, channels,
fixed sizes) and again on the first output (channels against ``class_names``, probabilities in [0, 1]), so a
wrong file or a mismatched sidecar fails with a message naming both files, not with a silent bad mask.

ONNX models run through onnxruntime (CUDA when its provider is installed and a GPU is present, else CPU);
``torch.export`` programs (``.pt2``) through PyTorch on CUDA when available. Both runtimes are imported only
when such a provider is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deltavlm.rules import ChangeClass
from tools.masks import ChangeMask, MaskSource
from tools.pairs import ImagePair
from tools.raster import InputError

OutputKind = Literal["binary_logits", "probabilities", "class_logits"]
Device = Literal["auto", "cpu", "cuda"]

CLASS_VALUES: dict[str, ChangeClass] = {
    "background": ChangeClass.BACKGROUND,
    "change": ChangeClass.CHANGE,
    "road": ChangeClass.ROAD,
    "building": ChangeClass.BUILDING,
}
"""Names a sidecar may give output channels, and the class each becomes in the mask."""

SIDECAR_SUFFIXES = (".yaml", ".yml", ".json")
ONNX_SUFFIXES = (".onnx",)
EXPORT_SUFFIXES = (".pt2",)


class DetectorSpec(BaseModel):
    """What a change detector expects and returns: the sidecar, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="Provider name in answers (default: the model file's stem).")
    input_size: tuple[int, int] | None = Field(
        None, description="Height, width the model takes; null for any size (the whole image in one pass)."
    )
    size_multiple: int = Field(1, ge=1, description="With input_size null: pad height and width to a multiple.")
    inputs: Literal["pair", "stacked"] = Field("pair", description="Two 3-band tensors, or one 6-band tensor.")
    band_order: Literal["rgb", "bgr"] = "rgb"
    scale: float = Field(255.0, gt=0, description="Pixels (0–255) are divided by this first.")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    output: OutputKind
    class_names: list[str] | None = Field(
        None,
        description="Per output channel. One-channel outputs: the positive class (default change). "
        "Multi-channel outputs: one name per channel, exactly one background.",
    )
    threshold: float = Field(0.5, gt=0, lt=1, description="Changed where P(change) exceeds this.")
    output_index: int = Field(0, description="Which of the model's outputs holds the change map.")
    tile_overlap: int = Field(32, ge=0, description="Pixels shared by neighbouring tiles.")
    batch_size: int = Field(4, ge=1, description="Tiles per forward pass (a fixed batch dimension wins).")
    confidence: float = Field(0.8, ge=0, le=1, description="Your trust in this model on your imagery.")

    @field_validator("std")
    @classmethod
    def _positive_std(cls, std: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s <= 0 for s in std):
            raise ValueError(f"std values must be positive, got {list(std)}")
        return std

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, size: tuple[int, int] | None) -> tuple[int, int] | None:
        if size is not None and min(size) < 1:
            raise ValueError(f"input_size must be positive, got {list(size)}")
        return size

    @model_validator(mode="after")
    def _classes_fit_output(self) -> DetectorSpec:
        names = self.class_names
        if names is not None:
            unknown = [n for n in names if n not in CLASS_VALUES]
            if unknown:
                raise ValueError(f"class_names {unknown} are not among {sorted(CLASS_VALUES)}")
        if self.output == "binary_logits" and names is not None and (len(names) != 1 or names[0] == "background"):
            raise ValueError("binary_logits has one channel: class_names may only name its positive class")
        if self.output == "class_logits" and (names is None or len(names) < 2):
            raise ValueError("class_logits needs class_names, one per output channel (at least two)")
        if names is not None and len(names) > 1:
            if names.count("background") != 1:
                raise ValueError(f"class_names {names} must name exactly one background channel")
            if len(set(names)) != len(names):
                raise ValueError(f"class_names {names} repeat a name")
        if self.tile_overlap and self.input_size and self.tile_overlap * 2 >= min(self.input_size):
            raise ValueError(f"tile_overlap {self.tile_overlap} must be under half of input_size {self.input_size}")
        return self

    @property
    def channel_names(self) -> list[str]:
        """Names of the class-probability channels the provider works with (background first for one-channel)."""
        if self.class_names is None or len(self.class_names) == 1:
            return ["background", (self.class_names or ["change"])[0]]
        return list(self.class_names)

    @property
    def categorical(self) -> bool:
        """True when every changed class is a named category (road/building)."""
        return all(n in ("road", "building") for n in self.channel_names if n != "background")


def load_sidecar(path: str | Path) -> DetectorSpec:
    """Read and validate a YAML/JSON sidecar; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"sidecar file not found: {path}")
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"sidecar {path} could not be read as {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(f"sidecar {path} must hold a mapping of settings, got {type(raw).__name__}")
    return _validate_spec(raw, str(path))


def _validate_spec(raw: dict[str, Any], where: str) -> DetectorSpec:
    try:
        return DetectorSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'sidecar'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"sidecar {where} is invalid: {problems}") from exc


def find_sidecar(model_path: str | Path) -> Path | None:
    """``model.onnx.yaml``, ``model.onnx.yml``, ``model.onnx.json``, then ``model.yaml`` … beside the model."""
    model_path = Path(model_path)
    for base in (model_path.name, model_path.stem):
        for suffix in SIDECAR_SUFFIXES:
            candidate = model_path.with_name(base + suffix)
            if candidate.is_file():
                return candidate
    return None


def _resolve_spec(
    model_path: Path, sidecar: str | Path | None, spec: DetectorSpec | dict[str, Any] | None
) -> tuple[DetectorSpec, Path | None]:
    if spec is not None and sidecar is not None:
        raise ValueError("give either a sidecar file or a spec, not both")
    if isinstance(spec, DetectorSpec):
        return spec, None
    if isinstance(spec, dict):
        return _validate_spec(spec, f"options for {model_path}"), None
    path = Path(sidecar) if sidecar is not None else find_sidecar(model_path)
    if path is None:
        looked = ", ".join(
            model_path.with_name(b + s).name for b in (model_path.name, model_path.stem) for s in (".yaml", ".json")
        )
        raise InputError(
            f"no sidecar for {model_path} (looked for {looked}); write one stating input_size, band_order, "
            "mean/std, output (binary_logits, probabilities or class_logits) and threshold"
        )
    return load_sidecar(path), path


# --- runtimes ---------------------------------------------------------------------------------------------


class _Runtime:
    """One loaded model: its inputs' shapes (None for dynamic dims) and a function from arrays to arrays."""

    format: str = ""
    description: str = ""
    input_names: list[str]
    input_shapes: list[tuple[int | None, ...]]
    input_dtypes: list[type]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


class _OnnxRuntime(_Runtime):
    format = "onnx"

    def __init__(self, path: Path, device: Device) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise InputError(
                f"{path} is an ONNX model but onnxruntime is not installed (pip install onnxruntime)"
            ) from exc
        available = ort.get_available_providers()
        wants_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in available)
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise InputError(f"device cuda asked for {path}, but this onnxruntime has no CUDAExecutionProvider")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if wants_cuda else ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise InputError(f"{path} is not a loadable ONNX model: {str(exc).strip().splitlines()[0]}") from exc
        inputs = self.session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self.input_shapes = [tuple(d if isinstance(d, int) else None for d in i.shape) for i in inputs]
        self.input_dtypes = [np.float16 if i.type == "tensor(float16)" else np.float32 for i in inputs]
        used = self.session.get_providers()[0]
        self.description = f"onnxruntime {ort.__version__} ({used})"

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        feeds = {
            name: array.astype(dtype)
            for name, array, dtype in zip(self.input_names, inputs, self.input_dtypes, strict=True)
        }
        return [np.asarray(o) for o in self.session.run(None, feeds)]


class _ExportRuntime(_Runtime):
    format = "torch.export"

    def __init__(self, path: Path, device: Device) -> None:
        import torch

        try:
            program = torch.export.load(str(path))
        except Exception as exc:  # zip, pickle and schema errors all mean "not a torch.export program"
            raise InputError(f"{path} is not a loadable torch.export program (.pt2): {exc}") from exc
        target = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device cuda asked for {path}, but PyTorch sees no CUDA device")
        if target != "cpu":
            program = torch.export.passes.move_to_device_pass(program, target)
        self.torch = torch
        self.device = torch.device(target)
        self.module = program.module()
        names = list(program.graph_signature.user_inputs)
        placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
        self.input_names = names
        self.input_shapes = []
        self.input_dtypes = []
        for name in names:
            value = placeholders[name].meta.get("val")
            shape = tuple(int(d) if isinstance(d, int) else None for d in value.shape) if value is not None else ()
            self.input_shapes.append(shape)
            self.input_dtypes.append(np.float16 if value is not None and value.dtype == torch.float16 else np.float32)
        self.description = f"torch {torch.__version__} ({target})"

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        tensors = [
            torch.from_numpy(np.ascontiguousarray(a.astype(d))).to(self.device)
            for a, d in zip(inputs, self.input_dtypes, strict=True)
        ]
        with torch.no_grad():
            out = self.module(*tensors)
        if isinstance(out, torch.Tensor):
            out = [out]
        elif isinstance(out, dict):
            out = list(out.values())
        return [o.detach().float().cpu().numpy() for o in out]


# --- tiling -----------------------------------------------------------------------------------------------


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile`` sharing at least ``overlap`` pixels."""
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def blend_window(height: int, width: int, overlap: int) -> np.ndarray:
    """Per-pixel weights of one tile: 1 inside, falling linearly to a small floor over ``overlap``/2 at the rim.

    Predictions near a tile's edge see less context, so where tiles overlap the more central one counts more;
    the floor keeps image-border pixels (covered by one tile only) defined.
    """
    ramp = max(overlap // 2, 1)
    ys = np.minimum(np.arange(height), np.arange(height)[::-1]) + 1
    xs = np.minimum(np.arange(width), np.arange(width)[::-1]) + 1
    wy = np.clip(ys / ramp, 0.02, 1.0)
    wx = np.clip(xs / ramp, 0.02, 1.0)
    return np.minimum(wy[:, None], wx[None, :]).astype(np.float32)


def tiled_probabilities(
    shape: tuple[int, int],
    tile: tuple[int, int],
    overlap: int,
    predict: Callable[[list[tuple[int, int]]], list[np.ndarray]],
    channels: int,
    batch_size: int,
) -> np.ndarray:
    """Blend per-tile C×h×w probabilities into C×H×W; ``predict`` gets a batch of (row, col) tile origins."""
    height, width = shape
    th, tw = tile
    origins = [(y, x) for y in tile_starts(height, th, overlap) for x in tile_starts(width, tw, overlap)]
    window = blend_window(th, tw, overlap)
    total = np.zeros((channels, max(height, th), max(width, tw)), dtype=np.float32)
    weight = np.zeros((max(height, th), max(width, tw)), dtype=np.float32)
    for i in range(0, len(origins), batch_size):
        batch = origins[i : i + batch_size]
        for (y, x), probs in zip(batch, predict(batch), strict=True):
            total[:, y : y + th, x : x + tw] += probs * window
            weight[y : y + th, x : x + tw] += window
    return total[:, :height, :width] / np.maximum(weight[:height, :width], 1e-12)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def class_mask_from_probabilities(probs: np.ndarray, names: Sequence[str], threshold: float) -> np.ndarray:
    """Changed where 1 − P(background) > ``threshold``; the changed class is the likeliest non-background one."""
    background = list(names).index("background")
    p_change = 1.0 - probs[background]
    others = [i for i in range(len(names)) if i != background]
    best = np.asarray(others)[np.argmax(probs[others], axis=0)]
    lut = np.array([int(CLASS_VALUES[n]) for n in names], dtype=np.uint8)
    return np.where(p_change > threshold, lut[best], int(ChangeClass.BACKGROUND)).astype(np.uint8)


def decision_certainty(p_change: np.ndarray, floor: float = 0.05) -> float:
    """Mean |2p − 1| over pixels the model thought might have changed (p ≥ ``floor``); 1 when none did."""
    considered = p_change[p_change >= floor]
    if considered.size == 0:
        return 1.0
    return float(np.abs(2.0 * considered - 1.0).mean())


# --- providers --------------------------------------------------------------------------------------------


class LearnedMaskProvider:
    """A change detector from a local file, run tile by tile as its sidecar describes."""

    def __init__(
        self,
        runtime: _Runtime,
        spec: DetectorSpec,
        model_path: Path,
        sidecar_path: Path | None,
    ) -> None:
        self.runtime = runtime
        self.spec = spec
        self.model_path = model_path
        self.sidecar_path = sidecar_path
        self.name = f"{runtime.format.replace('torch.export', 'torch-export')}:{spec.name or model_path.stem}"
        self._digest = _file_digest(model_path)
        self._output_checked = False
        self._check_inputs()

    @property
    def _where(self) -> str:
        return f"sidecar {self.sidecar_path}" if self.sidecar_path else "the detector options"

    def _check_inputs(self) -> None:
        """Refuse a sidecar that cannot match the model: count, rank, channels and fixed sizes of the inputs."""
        spec, rt = self.spec, self.runtime
        expected = 2 if spec.inputs == "pair" else 1
        if len(rt.input_names) != expected:
            raise InputError(
                f"{self.model_path} takes {len(rt.input_names)} input(s) ({', '.join(rt.input_names)}) but "
                f"{self._where} says inputs: {spec.inputs} ({expected} tensor(s))"
            )
        channels = 3 if spec.inputs == "pair" else 6
        for name, shape in zip(rt.input_names, rt.input_shapes, strict=True):
            if len(shape) != 4:
                raise InputError(f"{self.model_path} input {name!r} has rank {len(shape)}; expected N×C×H×W")
            if shape[1] is not None and shape[1] != channels:
                raise InputError(
                    f"{self.model_path} input {name!r} has {shape[1]} channels but {self._where} "
                    f"(inputs: {spec.inputs}) feeds {channels}"
                )
            fixed = shape[2:]
            if all(d is not None for d in fixed):
                if spec.input_size is None:
                    raise InputError(
                        f"{self.model_path} input {name!r} is fixed at {fixed[0]}×{fixed[1]} (height×width); "
                        f"state input_size: [{fixed[0]}, {fixed[1]}] in {self._where}"
                    )
                if tuple(fixed) != tuple(spec.input_size):
                    raise InputError(
                        f"{self.model_path} input {name!r} is fixed at {fixed[0]}×{fixed[1]} but {self._where} "
                        f"says input_size {spec.input_size[0]}×{spec.input_size[1]}"
                    )
        batches = {shape[0] for shape in rt.input_shapes}
        self._fixed_batch = next(iter(batches)) if len(batches) == 1 and None not in batches else None

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 RGB → 3×H×W float32 in the model's band order and normalisation."""
        spec = self.spec
        x = image.astype(np.float32)
        if spec.band_order == "bgr":
            x = x[..., ::-1]
        x = (x / spec.scale - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
        return np.ascontiguousarray(np.moveaxis(x, 2, 0))

    def _to_probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Model output for a batch (N×C×h×w or N×h×w) → N×K×h×w class probabilities (K = channel_names)."""
        spec = self.spec
        if raw.ndim == 3:
            raw = raw[:, None]
        if raw.ndim != 4:
            raise InputError(f"{self.model_path} output {spec.output_index} has shape {raw.shape}; expected N×C×H×W")
        channels = raw.shape[1]
        one_channel = spec.class_names is None or len(spec.class_names) == 1
        if one_channel and spec.output in ("binary_logits", "probabilities") and channels != 1:
            raise InputError(
                f"{self.model_path} returns {channels} channels but {self._where} describes a one-channel "
                f"{spec.output} map; for several classes use output: class_logits with class_names"
            )
        if not one_channel and channels != len(spec.class_names or []):
            raise InputError(
                f"{self.model_path} returns {channels} channels but {self._where} names "
                f"{len(spec.class_names or [])} classes ({spec.class_names})"
            )
        if spec.output == "probabilities" and not self._output_checked:
            low, high = float(raw.min()), float(raw.max())
            if low < -1e-3 or high > 1 + 1e-3:
                raise InputError(
                    f"{self._where} says output: probabilities but {self.model_path} returned values in "
                    f"[{low:.3g}, {high:.3g}]; these look like logits (binary_logits or class_logits)"
                )
        self._output_checked = True
        if spec.output == "binary_logits":
            positive = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        if spec.output == "probabilities" and one_channel:
            positive = np.clip(raw[:, 0], 0.0, 1.0)
            return np.stack([1.0 - positive, positive], axis=1)
        if spec.output == "probabilities":
            probs = np.clip(raw, 0.0, None)
            return probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
        return _softmax(raw.astype(np.float64), axis=1).astype(np.float32)

    def _resize(self, probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Bring N×K×h×w probabilities to the tile size (models that predict at a coarser stride)."""
        import cv2

        if probs.shape[2:] == size:
            return probs
        out = np.empty((*probs.shape[:2], *size), dtype=np.float32)
        for n in range(probs.shape[0]):
            for k in range(probs.shape[1]):
                out[n, k] = cv2.resize(probs[n, k], (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        return out

    def predict_probabilities(self, pair: ImagePair) -> np.ndarray:
        """K×H×W class probabilities (``spec.channel_names``) for the whole pair, tiled and blended."""
        spec = self.spec
        height, width = pair.shape
        if spec.input_size is not None:
            tile = spec.input_size
        else:
            m = spec.size_multiple
            tile = (-(-height // m) * m, -(-width // m) * m)
        pad_h, pad_w = max(tile[0] - height, 0), max(tile[1] - width, 0)
        images = []
        for image in (pair.t1, pair.t2):
            x = self._prepare(image)
            if pad_h or pad_w:
                x = np.pad(x, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect" if min(height, width) > 1 else "edge")
            images.append(x)
        t1, t2 = images
        batch_size = self._fixed_batch or spec.batch_size

        def predict(origins: list[tuple[int, int]]) -> list[np.ndarray]:
            a = np.stack([t1[:, y : y + tile[0], x : x + tile[1]] for y, x in origins])
            b = np.stack([t2[:, y : y + tile[0], x : x + tile[1]] for y, x in origins])
            count = len(origins)
            if self._fixed_batch and count < self._fixed_batch:  # fill a fixed batch with repeats
                extra = self._fixed_batch - count
                a = np.concatenate([a, np.repeat(a[-1:], extra, axis=0)])
                b = np.concatenate([b, np.repeat(b[-1:], extra, axis=0)])
            inputs = [a, b] if spec.inputs == "pair" else [np.concatenate([a, b], axis=1)]
            outputs = self.runtime.run(inputs)
            try:
                raw = outputs[spec.output_index]
            except IndexError:
                raise InputError(
                    f"{self._where} picks output_index {spec.output_index} but {self.model_path} has "
                    f"{len(outputs)} output(s)"
                ) from None
            probs = self._resize(self._to_probabilities(np.asarray(raw, dtype=np.float32)), tile)
            return list(probs[:count])

        padded = (height + pad_h, width + pad_w)
        probs = tiled_probabilities(padded, tile, spec.tile_overlap, predict, len(spec.channel_names), batch_size)
        return probs[:, :height, :width]

    def provide(self, pair: ImagePair) -> ChangeMask:
        spec = self.spec
        names = spec.channel_names
        probs = self.predict_probabilities(pair)
        classes = class_mask_from_probabilities(probs, names, spec.threshold)
        p_change = 1.0 - probs[names.index("background")]
        certainty = decision_certainty(p_change)
        confidence = round(spec.confidence * (0.5 + 0.5 * certainty), 3)
        changed_names = [n for n in names if n != "background"]
        return ChangeMask(
            class_mask=classes,
            source=MaskSource(
                provider=self.name,
                kind="learned",
                categorical=spec.categorical,
                confidence=confidence,
                settings={
                    "model": str(self.model_path),
                    "model_sha256": self._digest,
                    "format": self.runtime.format,
                    "runtime": self.runtime.description,
                    "sidecar": str(self.sidecar_path) if self.sidecar_path else None,
                    **spec.model_dump(mode="json"),
                    "measured": {"decision_certainty": round(certainty, 3)},
                },
                detail=(
                    f"learned change detector {spec.name or self.model_path.name} ({self.runtime.format}, "
                    f"{self.runtime.description}); classes {', '.join(changed_names)}; changed where "
                    f"P(change) > {spec.threshold:g}; confidence = your stated {spec.confidence:g} × "
                    f"(0.5 + 0.5 × decision certainty {certainty:.2f})"
                ),
            ),
        )


class _FileMaskProvider(LearnedMaskProvider):
    """A detector from one model file plus its spec (sidecar YAML/JSON or inline); subclasses name the runtime."""

    runtime: type[_Runtime]

    def __init__(
        self,
        path: str | Path,
        sidecar: str | Path | None = None,
        spec: DetectorSpec | dict[str, Any] | None = None,
        device: Device = "auto",
    ) -> None:
        path = _existing_model(path)
        resolved, sidecar_path = _resolve_spec(path, sidecar, spec)
        super().__init__(self.runtime(path, device), resolved, path, sidecar_path)


class OnnxMaskProvider(_FileMaskProvider):
    """An ONNX change detector run through onnxruntime."""

    runtime = _OnnxRuntime


class TorchExportMaskProvider(_FileMaskProvider):
    """A ``torch.export`` program (``torch.export.save``) run through PyTorch."""

    runtime = _ExportRuntime


def _existing_model(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"change detector file not found: {path}")
    if not path.is_file():
        raise InputError(f"change detector path is not a file: {path}")
    return path


def load_detector(
    path: str | Path,
    sidecar: str | Path | None = None,
    spec: DetectorSpec | dict[str, Any] | None = None,
    device: Device = "auto",
) -> LearnedMaskProvider:
    """An ONNX (``.onnx``) or ``torch.export`` (``.pt2``) change detector, chosen by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return OnnxMaskProvider(path, sidecar, spec, device)
    if suffix in EXPORT_SUFFIXES:
        return TorchExportMaskProvider(path, sidecar, spec, device)
    raise InputError(
        f"change detector {path}: unknown format {suffix or '(no suffix)'}; expected .onnx (ONNX) or .pt2 "
        "(torch.export.save)"
    )


# --- the DeltaVLM mask head -------------------------------------------------------------------------------


class DeltaVLMMaskSettings(BaseModel):
    """How the DeltaVLM head is run over an image."""

    tile_size: int | None = Field(
        256, ge=16, description="Tile larger images to this size (the LEVIR-MCI tiles it learns from); null: whole."
    )
    tile_overlap: int = Field(32, ge=0, description="Pixels shared by neighbouring tiles.")
    confidence: float = Field(
        0.7, ge=0, le=1, description="Your trust in the trained head (e.g. its validation F1); it reports no scores."
    )


class DeltaVLMMaskProvider:
    """DeltaVLM's change-mask head: background / road / building per pixel, so counts per category.

    It shares the model's per-pair feature cache, so a conversation that also asks DeltaVLM questions encodes
    each tile once. Large images are cut into ``tile_size`` tiles (the head was trained on 256² LEVIR-MCI
    tiles and the runner resizes every input to the encoder's size) and the tiles' votes are blended.
    """

    name = "deltavlm-head"

    def __init__(self, runner: Any, settings: DeltaVLMMaskSettings | None = None) -> None:
        if not getattr(runner, "mask_enabled", False):
            raise InputError(
                "this DeltaVLM model has no change-mask head (mask_head.enabled: false in its config); "
                "enable it and load trained head weights, or use another mask provider"
            )
        self.runner = runner
        self.settings = settings or DeltaVLMMaskSettings()

    @classmethod
    def from_config(
        cls,
        config: str | Path = "tiny",
        checkpoint: str | Path | None = None,
        device: str | None = None,
        settings: DeltaVLMMaskSettings | None = None,
        **overrides: Any,
    ) -> DeltaVLMMaskProvider:
        """Build the runner (``deltavlm.inference.DeltaVLMRunner``) and wrap its head."""
        from deltavlm.inference import DeltaVLMRunner

        runner = DeltaVLMRunner.from_config(config, checkpoint=checkpoint, device=device, **overrides)
        return cls(runner, settings)

    def _classes(self, pair: ImagePair) -> np.ndarray:
        s = self.settings
        height, width = pair.shape
        if s.tile_size is None or (height <= s.tile_size and width <= s.tile_size):
            return self.runner.predict_change_mask(pair.t1, pair.t2)
        tile = (min(s.tile_size, height), min(s.tile_size, width))
        overlap = min(s.tile_overlap, min(tile) // 2 - 1) if min(tile) > 2 else 0
        channels = 3  # background, road, building

        def predict(origins: list[tuple[int, int]]) -> list[np.ndarray]:
            votes = []
            for y, x in origins:
                window = (slice(y, y + tile[0]), slice(x, x + tile[1]))
                classes = self.runner.predict_change_mask(pair.t1[window], pair.t2[window])
                votes.append(np.eye(channels, dtype=np.float32)[classes].transpose(2, 0, 1))
            return votes

        blended = tiled_probabilities((height, width), tile, overlap, predict, channels, batch_size=1)
        return np.argmax(blended, axis=0).astype(np.uint8)

    def provide(self, pair: ImagePair) -> ChangeMask:
        classes = self._classes(pair)
        values = {int(v) for v in np.unique(classes)}
        allowed = {int(ChangeClass.BACKGROUND), int(ChangeClass.ROAD), int(ChangeClass.BUILDING)}
        if not values <= allowed:
            raise ValueError(f"the DeltaVLM head returned class values {sorted(values - allowed)}; expected 0, 1, 2")
        config = self.runner.config
        s = self.settings
        return ChangeMask(
            class_mask=classes.astype(np.uint8),
            source=MaskSource(
                provider=self.name,
                kind="learned",
                categorical=True,
                confidence=s.confidence,
                settings={
                    **s.model_dump(),
                    "config": config.name,
                    "config_fingerprint": config.fingerprint(),
                    "image_size": config.vision.image_size,
                    "weights": [
                        f"{r.source} ({r.format}, {r.loaded} tensors)" for r in getattr(self.runner, "load_reports", [])
                    ],
                },
                detail=(
                    f"DeltaVLM change-mask head ({config.name} config) on the Bi-VE features: background, road "
                    f"or building per pixel (argmax); confidence {s.confidence:g} is the stated trust in the "
                    "trained head, it gives no per-pixel scores"
                ),
            ),
        )
