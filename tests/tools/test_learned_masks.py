"""Learned mask providers: a tiny torch change detector exported to ONNX and torch.export, and the DeltaVLM head.

The exported programs must reproduce the torch model's own probabilities, tiling must cover any image size,
and a wrong file or a sidecar that does not fit the model must fail with a message naming the file.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from torch import nn  # noqa: E402

from agent.answering.provenance import mask_detail  # noqa: E402
from deltavlm.rules import ChangeClass  # noqa: E402
from tools.learned_masks.deltavlm_head import DeltaVLMMaskProvider, DeltaVLMMaskSettings  # noqa: E402
from tools.learned_masks.probabilities import blend_window, class_mask_from_probabilities, tile_starts  # noqa: E402
from tools.learned_masks.provider import OnnxMaskProvider, TorchExportMaskProvider, load_detector  # noqa: E402
from tools.learned_masks.sidecar import DetectorSpec, find_sidecar, load_sidecar  # noqa: E402
from tools.masks import MaskProvider  # noqa: E402
from tools.pairs import pair_from_arrays  # noqa: E402
from tools.raster import InputError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore:.*axis name.*:UserWarning")

TILE = 64
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class TinyDetector(nn.Module):
    """A Siamese change detector: shared conv encoder, |difference| and both features into a conv head."""

    def __init__(self, out_channels: int, sigmoid: bool = False) -> None:
        super().__init__()
        torch.manual_seed(out_channels)
        self.encode = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(16, out_channels, 3, padding=1)
        self.sigmoid = sigmoid

    def forward(self, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
        f1, f2 = self.encode(t1), self.encode(t2)
        out = self.head(torch.cat([f1 + f2, (f2 - f1).abs()], dim=1)) * 4.0
        return torch.sigmoid(out) if self.sigmoid else out


class StackedDetector(nn.Module):
    """The same detector taking one 6-band tensor (t1 then t2) and returning several outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = TinyDetector(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.inner(x[:, :3], x[:, 3:])
        return out[:, :, ::2, ::2], out


def _examples(model: nn.Module, stacked: bool = False) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    if stacked:
        return (torch.randn(2, 6, TILE, TILE, generator=gen),)
    return (torch.randn(2, 3, TILE, TILE, generator=gen), torch.randn(2, 3, TILE, TILE, generator=gen))


def _onnx(model: nn.Module, path: Path, stacked: bool = False, dynamic_hw: bool = False) -> Path:
    batch = torch.export.Dim("batch", min=1, max=64)
    dims: dict[int, object] = {0: batch}
    if dynamic_hw:
        dims.update({2: torch.export.Dim("h", min=8, max=1024), 3: torch.export.Dim("w", min=8, max=1024)})
    examples = _examples(model, stacked)
    names = ["x"] if stacked else ["t1", "t2"]
    shapes = (dims,) if stacked else (dims, dims)
    torch.onnx.export(model.eval(), examples, str(path), input_names=names, dynamo=True, dynamic_shapes=shapes)
    return path


def _pt2(model: nn.Module, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model.eval(), _examples(model), dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(program, str(path))
    return path


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec) if path.suffix != ".json" else json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[nn.Module, Path]]:
    root = tmp_path_factory.mktemp("detectors")
    two_class = TinyDetector(2)
    three_class = TinyDetector(3)
    stacked = StackedDetector()
    probability = TinyDetector(1, sigmoid=True)
    return {
        "onnx": (two_class, _onnx(two_class, root / "bit.onnx")),
        "onnx_stacked": (stacked, _onnx(stacked, root / "stacked.onnx", stacked=True, dynamic_hw=True)),
        "pt2": (three_class, _pt2(three_class, root / "mci.pt2")),
        "pt2_prob": (probability, _pt2(probability, root / "prob.pt2")),
    }


def _pair(height: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t1 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    t2 = t1.copy()
    t2[height // 4 : height // 2, width // 4 : width // 2] = rng.integers(0, 256, 3, dtype=np.uint8)
    return pair_from_arrays(t1, t2)


def _torch_probs(model: nn.Module, pair, stacked: bool = False, probabilities: bool = False) -> np.ndarray:
    """What the model itself says about the whole (un-tiled) image: class probabilities K×H×W."""

    def prep(image: np.ndarray) -> torch.Tensor:
        x = (image.astype(np.float32) / 255.0 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
        return torch.from_numpy(np.moveaxis(x, 2, 0)[None].copy())

    with torch.no_grad():
        if stacked:
            out = model(torch.cat([prep(pair.t1), prep(pair.t2)], dim=1))[1]
        else:
            out = model(prep(pair.t1), prep(pair.t2))
    out = out[0].numpy()
    if out.shape[0] == 1:
        p = out[0] if probabilities else 1 / (1 + np.exp(-out[0]))
        return np.stack([1 - p, p])
    e = np.exp(out - out.max(axis=0))
    return e / e.sum(axis=0)


SPEC = {"input_size": [TILE, TILE], "mean": list(MEAN), "std": list(STD), "tile_overlap": 16}


def test_onnx_reproduces_the_torch_model_on_one_tile(models, tmp_path):
    model, path = models["onnx"]
    sidecar = _write(
        tmp_path / "bit.yaml",
        {**SPEC, "name": "tiny-bit", "output": "class_logits", "class_names": ["background", "change"]},
    )
    provider = OnnxMaskProvider(path, sidecar=sidecar, device="cpu")
    assert isinstance(provider, MaskProvider) and provider.name == "onnx:tiny-bit"
    pair = _pair(TILE, TILE)
    probs = provider.predict_probabilities(pair)
    expected = _torch_probs(model, pair)
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    mask = provider.provide(pair)
    assert np.array_equal(mask.class_mask == ChangeClass.CHANGE, expected[1] > 0.5)
    source = mask.source
    assert source.kind == "learned" and not source.categorical and 0 < source.confidence <= 0.8
    assert source.settings["sidecar"] == str(sidecar) and len(source.settings["model_sha256"]) == 16
    assert "onnxruntime" in source.settings["runtime"] and "tiny-bit" in mask_detail(source.made_by)


def test_onnx_tiles_large_and_pads_small_images(models, tmp_path):
    model, path = models["onnx"]
    _write(path.with_name("bit.onnx.yaml"), {**SPEC, "output": "class_logits", "class_names": ["background", "change"]})
    provider = load_detector(path)  # sidecar found beside the model
    big = _pair(150, 171, seed=1)
    probs = provider.predict_probabilities(big)
    expected = _torch_probs(model, big)
    assert probs.shape == expected.shape == (2, 150, 171)
    assert np.abs(probs - expected).mean() < 5e-3  # differences only where tiles meet, down-weighted there
    assert ((probs[1] > 0.5) == (expected[1] > 0.5)).mean() > 0.995
    small = _pair(40, 50, seed=2)
    assert provider.provide(small).class_mask.shape == (40, 50)


def test_onnx_stacked_dynamic_size_binary_logits_and_output_index(models, tmp_path):
    model, path = models["onnx_stacked"]
    spec = {
        "inputs": "stacked",
        "mean": list(MEAN),
        "std": list(STD),
        "output": "binary_logits",
        "class_names": ["building"],
        "output_index": 1,
        "size_multiple": 1,
    }
    provider = OnnxMaskProvider(path, spec=spec, device="cpu")
    pair = _pair(70, 90, seed=3)
    probs = provider.predict_probabilities(pair)
    np.testing.assert_allclose(probs, _torch_probs(model, pair, stacked=True), atol=1e-4)
    mask = provider.provide(pair)
    assert mask.source.categorical and set(np.unique(mask.class_mask)) <= {0, int(ChangeClass.BUILDING)}


def test_torch_export_three_classes_are_category_aware(models, tmp_path):
    model, path = models["pt2"]
    sidecar = _write(
        tmp_path / "mci.json",
        {**SPEC, "output": "class_logits", "class_names": ["background", "road", "building"], "threshold": 0.4},
    )
    provider = TorchExportMaskProvider(path, sidecar=sidecar, device="cpu")
    assert provider.name == "torch-export:mci"
    pair = _pair(TILE, TILE, seed=4)
    expected = _torch_probs(model, pair)
    np.testing.assert_allclose(provider.predict_probabilities(pair), expected, atol=1e-4)
    mask = provider.provide(pair)
    assert np.array_equal(
        mask.class_mask, class_mask_from_probabilities(expected, ["background", "road", "building"], 0.4)
    )
    assert mask.source.categorical and mask.source.settings["format"] == "torch.export"


def test_torch_export_probabilities_output(models, tmp_path):
    model, path = models["pt2_prob"]
    provider = load_detector(path, spec={**SPEC, "output": "probabilities"}, device="cpu")
    pair = _pair(TILE, TILE, seed=5)
    expected = _torch_probs(model, pair, probabilities=True)
    np.testing.assert_allclose(provider.predict_probabilities(pair), expected, atol=1e-4)


def test_wrong_files_name_the_file(models, tmp_path):
    spec = {**SPEC, "output": "class_logits", "class_names": ["background", "change"]}
    with pytest.raises(InputError, match=r"not found: .*missing\.onnx"):
        load_detector(tmp_path / "missing.onnx", spec=spec)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(InputError, match=r"garbage\.onnx is not a loadable ONNX model"):
        load_detector(garbage, spec=spec)
    onnx_as_pt2 = tmp_path / "renamed.pt2"
    onnx_as_pt2.write_bytes(models["onnx"][1].read_bytes())
    with pytest.raises(InputError, match=r"renamed\.pt2 is not a loadable torch\.export program"):
        load_detector(onnx_as_pt2, spec=spec)
    with pytest.raises(InputError, match=r"unknown format \.h5"):
        load_detector(tmp_path / "model.h5", spec=spec)
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(models["onnx"][1].read_bytes())
    with pytest.raises(InputError, match=r"no sidecar for .*lonely\.onnx"):
        load_detector(lonely)


def test_mismatched_sidecars_are_refused(models, tmp_path):
    _, path = models["onnx"]
    base = {**SPEC, "output": "class_logits", "class_names": ["background", "change"]}
    cases = [
        ({**base, "inputs": "stacked"}, r"takes 2 input\(s\) \(t1, t2\) but sidecar .*s\.yaml says inputs: stacked"),
        ({**base, "input_size": [32, 32], "tile_overlap": 8}, r"fixed at 64×64 but sidecar .* says input_size 32×32"),
        ({k: v for k, v in base.items() if k != "input_size"}, r"fixed at 64×64.*state input_size: \[64, 64\]"),
    ]
    for spec, pattern in cases:
        with pytest.raises(InputError, match=pattern):
            OnnxMaskProvider(path, sidecar=_write(tmp_path / "s.yaml", spec))
    pair = _pair(TILE, TILE)
    wrong_classes = {**base, "class_names": ["background", "road", "building"]}
    with pytest.raises(InputError, match=r"returns 2 channels but sidecar .* names 3 classes"):
        OnnxMaskProvider(path, sidecar=_write(tmp_path / "s.yaml", wrong_classes)).provide(pair)
    not_probabilities = {**base, "output": "probabilities"}
    with pytest.raises(InputError, match=r"says output: probabilities .* look like logits"):
        OnnxMaskProvider(path, sidecar=_write(tmp_path / "s.yaml", not_probabilities)).provide(pair)
    with pytest.raises(InputError, match=r"output_index 3 but .* has 1 output"):
        OnnxMaskProvider(path, spec={**base, "output_index": 3}).provide(pair)


def test_sidecar_validation_names_the_file_and_field(tmp_path):
    typo = _write(
        tmp_path / "typo.yaml", {"output": "class_logits", "class_names": ["background", "change"], "treshold": 0.3}
    )
    with pytest.raises(InputError, match=r"sidecar .*typo\.yaml is invalid: treshold: Extra inputs"):
        load_sidecar(typo)
    no_names = _write(tmp_path / "names.yaml", {"output": "class_logits"})
    with pytest.raises(InputError, match=r"names\.yaml is invalid: .*class_logits needs class_names"):
        load_sidecar(no_names)
    bad_name = _write(tmp_path / "bad.yaml", {"output": "class_logits", "class_names": ["background", "tree"]})
    with pytest.raises(InputError, match=r"\['tree'\] are not among"):
        load_sidecar(bad_name)
    broken = tmp_path / "broken.yaml"
    broken.write_text("output: [unclosed")
    with pytest.raises(InputError, match=r"broken\.yaml could not be read"):
        load_sidecar(broken)
    (tmp_path / "m.onnx").write_bytes(b"")
    _write(tmp_path / "m.json", {"output": "binary_logits"})
    assert find_sidecar(tmp_path / "m.onnx") == tmp_path / "m.json"
    assert DetectorSpec(output="binary_logits").channel_names == ["background", "change"]


def test_tiling_helpers_cover_and_blend():
    assert tile_starts(100, 64, 16) == [0, 36]
    assert tile_starts(64, 64, 16) == [0] and tile_starts(30, 64, 16) == [0]
    starts = tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256 and all(b - a <= 224 for a, b in itertools.pairwise(starts))
    window = blend_window(64, 64, 16)
    assert window[32, 32] == 1.0 and window[0, 0] < 0.2 and window.min() > 0


@pytest.fixture(scope="module")
def runner():
    from deltavlm.inference import DeltaVLMRunner

    return DeltaVLMRunner.from_config("tiny", mask_head={"enabled": True})


def test_deltavlm_head_provider_is_category_aware(runner):
    provider = DeltaVLMMaskProvider(runner)
    assert isinstance(provider, MaskProvider)
    pair = _pair(61, 75, seed=6)
    mask = provider.provide(pair)
    assert np.array_equal(mask.class_mask, runner.predict_change_mask(pair.t1, pair.t2))
    assert set(np.unique(mask.class_mask)) <= {0, 1, 2}
    source = mask.source
    assert source.provider == "deltavlm-head" and source.kind == "learned" and source.categorical
    assert source.settings["config"] == "tiny" and "road or building" in mask_detail(source.made_by)


def test_deltavlm_head_tiles_large_images(runner):
    provider = DeltaVLMMaskProvider(runner, DeltaVLMMaskSettings(tile_size=64, tile_overlap=16))
    pair = _pair(100, 150, seed=7)
    calls = runner.vision_encoder_calls
    mask = provider.provide(pair)
    assert mask.class_mask.shape == (100, 150) and set(np.unique(mask.class_mask)) <= {0, 1, 2}
    assert runner.vision_encoder_calls - calls == len(tile_starts(100, 64, 16)) * len(tile_starts(150, 64, 16))


def test_deltavlm_head_must_be_enabled():
    from deltavlm.inference import DeltaVLMRunner

    with pytest.raises(InputError, match=r"mask_head\.enabled: false"):
        DeltaVLMMaskProvider(DeltaVLMRunner.from_config("tiny"))
