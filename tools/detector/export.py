"""The trained network as ``model.onnx`` with half-precision weights, and the sidecar the ONNX provider reads.

Weights are stored as float16 and cast to float32 when the session starts (ONNX Runtime folds the casts once), so
the file is half the size while inference stays in float32, which every CPU runs fast and exactly.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from tools.detector.layout import MEAN, MIN_OBJECT_PIXELS, OVERLAP, STD, TILE
from tools.detector.network import SiameseChangeNet


def export_onnx(model: SiameseChangeNet, path: Path, fp16_weights: bool = True) -> Path:
    """Write ``path``: inputs ``t1``, ``t2`` (N×3×H×W, any N, H and W multiples of 16), output ``logits``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = model.eval()
    example = torch.zeros(1, 3, TILE, TILE)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and shape-inference chatter
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example, example),
            str(path),
            input_names=["t1", "t2"],
            output_names=["logits"],
            dynamic_axes={"t1": dynamic, "t2": dynamic, "logits": dynamic},
            opset_version=17,
            dynamo=False,
        )
    if not fp16_weights:
        return path
    graph = onnx.load(str(path))
    initializers, casts = [], []
    for init in graph.graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < 16:
            initializers.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
        initializers.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    nodes = casts + list(graph.graph.node)
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(initializers)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))
    return path


def sidecar_dict(name: str, threshold: float, confidence: float, about: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's settings: how to feed the model and read its output, plus what trained it."""
    return {
        "name": name,
        "input_size": [TILE, TILE],
        "inputs": "pair",
        "band_order": "rgb",
        "scale": 255.0,
        "mean": list(MEAN),
        "std": list(STD),
        "output": "binary_logits",
        "class_names": ["change"],
        "threshold": round(float(threshold), 3),
        "tile_overlap": OVERLAP,
        "batch_size": 4,
        "confidence": round(float(confidence), 3),
        "min_object_pixels": MIN_OBJECT_PIXELS,
        "about": about,
    }


def write_sidecar(model_path: Path, settings: dict[str, Any]) -> Path:
    """``model.onnx.yaml`` beside the model."""
    path = model_path.with_name(model_path.name + ".yaml")
    path.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
