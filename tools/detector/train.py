"""Train the change detector on a CPU within a time budget, resumably, and write ``model.onnx`` + sidecar + card.

The budget is wall-clock minutes, because that is what a person on a laptop can give; the learning rate follows a
cosine over the budget. A checkpoint (``checkpoint.pt``) is saved every minute and at the end: running the same
command again resumes from it (the budget counts time already spent), and ``--init`` starts a new training from
another run's weights (few-shot adaptation to a user's own pairs).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field

from tools.detector.card import write_model_card
from tools.detector.data import BatchMaker, Example, read_examples, split_validation, validation_items
from tools.detector.export import export_onnx, sidecar_dict, write_sidecar
from tools.detector.layout import MEAN, MIN_OBJECT_PIXELS, SIZE_MULTIPLE, STD
from tools.detector.loss import change_loss
from tools.detector.network import NetworkConfig, SiameseChangeNet
from tools.learned_masks.probabilities import drop_small_regions
from tools.raster import InputError

CHECKPOINT = "checkpoint.pt"
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.2, 0.91, 0.05))


class TrainOptions(BaseModel):
    """One training run: the data, the budget and the recipe."""

    data: list[Path]
    out: Path
    minutes: float = Field(30.0, gt=0)
    seed: int = 0
    init: Path | None = Field(None, description="A folder of an earlier run to start from (few-shot adaptation).")
    hold_out: list[str] = Field(default_factory=list, description="Dataset names left out (leave-one-out folds).")
    crop: int = Field(128, ge=32, description="Training crop side (a multiple of 16).")
    batch: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    threads: int = Field(1, ge=1)
    validate_every_s: float = Field(60.0, gt=0)
    max_steps: int | None = Field(None, description="Stop after this many steps even with budget left (tests).")
    restart: bool = Field(False, description="Ignore a checkpoint in --out and start again.")
    pretrained: bool = True
    name: str | None = None


class Validation(BaseModel):
    """Scores on the validation items at the best threshold."""

    threshold: float
    pixel_f1: float
    binary_accuracy: float
    no_change_accuracy: float
    score: float = Field(description="pixel F1 + 0.5 × binary accuracy: what chose the threshold and snapshot.")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 → N×3×H×W float normalised as the sidecar states."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().permute(0, 3, 1, 2) / 255.0
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _pad16(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    ph, pw = (-height) % SIZE_MULTIPLE, (-width) % SIZE_MULTIPLE
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else image


@torch.no_grad()
def predict(model: SiameseChangeNet, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """H×W change probability of one pair (torch, whole image)."""
    model.eval()
    height, width = t1.shape[:2]
    logits = model(to_tensor(_pad16(t1)[None]), to_tensor(_pad16(t2)[None]))
    return torch.sigmoid(logits)[0, 0, :height, :width].numpy()


def validate(model: SiameseChangeNet, items: Sequence[Example]) -> Validation:
    """Sweep the threshold over the validation items; keep the one with the best score."""
    probs = [predict(model, e.t1, e.t2) for e in items]
    best: Validation | None = None
    for threshold in THRESHOLDS:
        tp = fp = fn = 0
        right, right_nc, nc = 0, 0, 0
        for e, p in zip(items, probs, strict=True):
            pred = drop_small_regions((p > threshold).astype(np.uint8), MIN_OBJECT_PIXELS) > 0
            tp += int(np.count_nonzero(pred & e.label))
            fp += int(np.count_nonzero(pred & ~e.label))
            fn += int(np.count_nonzero(~pred & e.label))
            verdict = bool(pred.any()) == bool(e.label.any())
            right += verdict
            if not e.label.any():
                nc += 1
                right_nc += verdict
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        accuracy = right / len(items)
        candidate = Validation(
            threshold=threshold,
            pixel_f1=round(f1, 4),
            binary_accuracy=round(accuracy, 4),
            no_change_accuracy=round(right_nc / nc, 4) if nc else 1.0,
            score=round(f1 + 0.5 * accuracy, 4),
        )
        if best is None or candidate.score > best.score:
            best = candidate
    assert best is not None
    return best


def _load_init(folder: Path) -> tuple[NetworkConfig, dict[str, Any]]:
    path = folder / CHECKPOINT
    if not path.is_file():
        raise InputError(f"--init {folder}: no {CHECKPOINT} there (give the --out folder of an earlier training)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        return NetworkConfig(**saved["config"]), saved["best_state"] or saved["model"]
    except Exception as exc:
        raise InputError(f"--init {folder}: {path} is not a detector checkpoint ({exc})") from exc


def train(options: TrainOptions, report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) a training and export it; returns the metrics written to ``metrics.json``.

    ``report`` gets a dict after each step (step, elapsed, budget, loss, val_f1) for a progress bar.
    """
    if options.crop % SIZE_MULTIPLE:
        raise InputError(f"--crop must be a multiple of {SIZE_MULTIPLE}, got {options.crop}")
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    examples = read_examples(options.data, options.hold_out)
    train_set, val_set = split_validation(examples)
    val_items = validation_items(val_set, train_set, options.seed)
    datasets = sorted({e.dataset for e in examples})
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / CHECKPOINT

    init_state = None
    config = NetworkConfig(pretrained=options.pretrained)
    if options.init is not None:
        config, init_state = _load_init(options.init)
    model = SiameseChangeNet(config.model_copy(update={"pretrained": False}) if init_state else config)
    if init_state is not None:
        model.load_state_dict(init_state)
        model.config = config  # keep the encoder's batch-norm frozen as it was trained
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=1e-4)
    batches = BatchMaker(train_set, options.crop, options.seed)
    step, elapsed, best_state, best = 0, 0.0, None, None
    history: list[dict[str, Any]] = []
    if checkpoint_path.is_file() and not options.restart:
        saved = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        batches.rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        step, elapsed, history = saved["step"], saved["elapsed"], saved["history"]
        best_state = saved["best_state"]
        best = Validation(**saved["best"]) if saved["best"] else None

    def save() -> None:
        torch.save(
            {
                "config": config.model_dump(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": batches.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "elapsed": elapsed,
                "history": history,
                "best_state": best_state,
                "best": best.model_dump() if best else None,
                "options": options.model_dump(mode="json"),
            },
            checkpoint_path,
        )

    budget = options.minutes * 60.0
    if best is None:
        initial = validate(model, val_items)
        history.append({"step": step, "elapsed": round(elapsed, 1), "loss": None, **initial.model_dump()})
    last_val = last_save = elapsed
    loss_avg: float | None = None
    while elapsed < budget and (options.max_steps is None or step < options.max_steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = options.lr * 0.5 * (1 + math.cos(math.pi * min(elapsed / budget, 1.0)))
        model.train()
        t1, t2, label = batches.batch(options.batch)
        logits = model(to_tensor(t1), to_tensor(t2))
        loss = change_loss(logits, torch.from_numpy(label[:, None].astype(np.float32)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        value = loss.item()
        loss_avg = value if loss_avg is None else 0.9 * loss_avg + 0.1 * value
        elapsed += time.perf_counter() - started
        done = elapsed >= budget or (options.max_steps is not None and step >= options.max_steps)
        if elapsed - last_val >= options.validate_every_s or done:
            result = validate(model, val_items)
            history.append(
                {"step": step, "elapsed": round(elapsed, 1), "loss": round(loss_avg, 4), **result.model_dump()}
            )
            if best is None or result.score >= best.score:
                best, best_state = result, {k: v.clone() for k, v in model.state_dict().items()}
            last_val = elapsed
        if elapsed - last_save >= 60.0 or done:
            save()
            last_save = elapsed
        if report:
            report(
                {"step": step, "elapsed": elapsed, "budget": budget, "loss": loss_avg, "val_f1": best and best.pixel_f1}
            )
    if best is None or best_state is None:  # a resumed run that had already finished, or zero steps
        best = best or validate(model, val_items)
        best_state = best_state or model.state_dict()
        save()
    model.load_state_dict(best_state)
    return _write_outputs(model, options, examples, val_set, datasets, best, history, step, elapsed)


def _write_outputs(
    model: SiameseChangeNet,
    options: TrainOptions,
    examples: Sequence[Example],
    val_set: Sequence[Example],
    datasets: list[str],
    best: Validation,
    history: list[dict[str, Any]],
    step: int,
    elapsed: float,
) -> dict[str, Any]:
    out = options.out
    pairs: dict[str, int] = {}
    for e in examples:
        pairs[e.dataset] = pairs.get(e.dataset, 0) + 1
    validation = (
        "held-aside pairs " + ", ".join(f"{e.dataset}/{e.name}" for e in val_set)
        if val_set
        else "the training pairs themselves (in-sample: fewer than 4 pairs per dataset)"
    ) + ", copy-paste pairs made from them, and made no-change pairs"
    name = options.name or out.name
    about = {
        "name": name,
        "datasets": datasets,
        "pairs": pairs,
        "held_out": options.hold_out,
        "validation": validation,
        "steps": step,
        "batch": options.batch,
        "crop": options.crop,
        "minutes": round(elapsed / 60.0, 2),
        "threads": options.threads,
        "seed": options.seed,
        "init": str(options.init) if options.init else None,
        "data": [str(p) for p in options.data],
    }
    metrics = {"validation": best.model_dump(), "history": history, "about": about}
    model_path = export_onnx(model, out / "model.onnx")
    write_sidecar(model_path, sidecar_dict(name, best.threshold, best.binary_accuracy, about))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    write_model_card(out, about, best.model_dump())
    return metrics
