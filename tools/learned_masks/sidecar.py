"""The sidecar that says how a detector wants its pixels and what its output means.

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
    min_object_pixels: 12        # changed regions smaller than this are dropped (default 0: keep all)
    about: {...}                 # free-form: training data, metrics (shown, never used to run the model)

The model and sidecar are checked against each other when the provider is built (number of inputs, channels,
fixed sizes) and again on the first output (channels against ``class_names``, probabilities in [0, 1]), so a
wrong file or a mismatched sidecar fails with a message naming both files, not with a silent bad mask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deltavlm.rules import ChangeClass
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
    min_object_pixels: int = Field(0, ge=0, description="Changed regions under this many pixels are dropped.")
    about: dict[str, Any] | None = Field(
        None, description="What trained the model and how it scored (model card facts); never used to run it."
    )

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


def resolve_spec(
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
