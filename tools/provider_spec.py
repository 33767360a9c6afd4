"""Mask providers named by a short spec (``classical``, ``onnx:model.onnx``, ``deltavlm:tiny``…).

One grammar for every place a person picks a mask provider: the agent's settings, ``eval-masks``, the
batch runner and the benchmarks.
"""

from __future__ import annotations

from pathlib import Path

from tools.masks import MaskProvider
from tools.raster import InputError

PROVIDER_HELP = (
    "classical[:key=value,...] (ClassicalSettings fields); onnx:PATH[,sidecar=S][,device=cpu|cuda|auto]; "
    "export:PATH.pt2[,sidecar=S][,device=...]; detector:DIR (from `changeagent detector train`) or detector:PATH "
    "(format by suffix); "
    "deltavlm:CONFIG[,checkpoint=DIR][,tile_size=N][,confidence=F][,device=D][,mask_head=on]"
)


def _options(text: str, spec: str) -> dict[str, str]:
    options = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InputError(f"provider {spec!r}: option {part!r} is not key=value ({PROVIDER_HELP})")
        options[key.strip()] = value.strip()
    return options


def build_provider(spec: str) -> MaskProvider:
    """A mask provider from a command-line spec such as ``classical`` or ``onnx:bit.onnx,device=cpu``.

    One small grammar for the CLI and the benchmark: ``KIND[:ARG][,key=value…]`` (paths may not hold commas).
    """
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "classical":
        from pydantic import ValidationError

        from tools.classical_mask import ClassicalMaskProvider, ClassicalSettings

        try:
            return ClassicalMaskProvider(ClassicalSettings(**_options(rest, spec)))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise InputError(f"provider {spec!r}: {problems}") from exc
    first, _, tail = rest.partition(",")
    if not first:
        raise InputError(f"provider {spec!r} needs a path or config after '{kind}:' ({PROVIDER_HELP})")
    options = _options(tail, spec)
    if kind in ("onnx", "export", "torch-export", "detector"):
        from tools.learned_masks.provider import OnnxMaskProvider, TorchExportMaskProvider, load_detector

        unknown = set(options) - {"sidecar", "device"}
        if unknown:
            raise InputError(f"provider {spec!r}: unknown option(s) {sorted(unknown)}; use sidecar=, device=")
        device = options.get("device", "auto")
        if device not in ("auto", "cpu", "cuda"):
            raise InputError(f"provider {spec!r}: device must be auto, cpu or cuda, not {device!r}")
        factory = {"onnx": OnnxMaskProvider, "export": TorchExportMaskProvider, "torch-export": TorchExportMaskProvider}
        build = factory.get(kind, load_detector)
        return build(Path(first), options.get("sidecar"), None, device)  # type: ignore[arg-type]
    if kind == "deltavlm":
        from tools.learned_masks.deltavlm_head import DeltaVLMMaskProvider, DeltaVLMMaskSettings

        checkpoint = options.pop("checkpoint", None)
        device = options.pop("device", None)
        overrides = {}
        if options.pop("mask_head", "").lower() in ("on", "true", "1", "enabled"):
            overrides["mask_head"] = {"enabled": True}  # untrained head: for smoke tests and timing only
        try:
            settings = DeltaVLMMaskSettings(**options)
        except Exception as exc:
            raise InputError(f"provider {spec!r}: {exc}") from exc
        try:
            return DeltaVLMMaskProvider.from_config(
                first, checkpoint=checkpoint, device=device, settings=settings, **overrides
            )
        except (FileNotFoundError, OSError) as exc:
            raise InputError(f"provider {spec!r}: {exc}") from exc
    raise InputError(f"unknown mask provider {kind!r}; expected {PROVIDER_HELP}")
