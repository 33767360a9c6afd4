"""Runtimes for exported detectors: onnxruntime for ``.onnx``, PyTorch for ``torch.export`` programs (``.pt2``).

CUDA when available, else CPU; each runtime is imported only when such a provider is built."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tools.learned_masks.sidecar import Device
from tools.raster import InputError


class Runtime:
    """One loaded model: its inputs' shapes (None for dynamic dims) and a function from arrays to arrays."""

    format: str = ""
    description: str = ""
    input_names: list[str]
    input_shapes: list[tuple[int | None, ...]]
    input_dtypes: list[type]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


class OnnxRuntime(Runtime):
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


class ExportRuntime(Runtime):
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
