"""``python -m deltavlm.train --config FILE``: train DeltaVLM on ChangeChat records.

The recipe is the paper's by default (``TrainConfig``'s defaults, ``configs/train_full.yaml``): AdamW with
weight decay 0.05 (not on biases and norms, as released), learning rate 1e-5, a global batch of 24, up to
30 epochs, augmentation = random crop removing 0–5 %, rotation within ±15°, resize to the model's input.
Only the trainable parameters (``DeltaVLM.trainable_parameters``: the last Bi-VE blocks, ``ln_vision``,
CSRM, Q-former, queries, projection, optional mask head) reach the optimiser; the LLM stays frozen.

* Mixed precision on GPU: the model autocasts itself (bf16 by default); ``precision: fp16`` adds a
  gradient scaler, as the release's fp16 AMP.
* ``batch_size`` is the global batch per optimiser step; each process takes
  ``batch_size / (world_size × grad_accum_steps)`` samples per micro-step.
* Multi-GPU: launch with ``torchrun --nproc_per_node=N -m deltavlm.train …`` (or ``accelerate launch``,
  which sets the same environment); processes join through ``torch.distributed`` and the model is wrapped
  in DDP. Rank 0 logs and saves.
* Checkpoints: ``OUT/checkpoints/step_NNNNNNNN/`` holds the trainable weights (``model.safetensors`` +
  ``config.json``, loadable by ``DeltaVLMRunner.from_checkpoint``) and ``trainer_state.pt`` (optimiser,
  scheduler, scaler, step, epoch, position in the epoch, RNG). A run restarted with the same output
  folder resumes from ``latest`` mid-epoch and continues exactly where it stopped.
* Logging: one line per ``log_every`` steps to stdout and ``OUT/log.jsonl`` (loss, language loss, mask
  loss, learning rate, samples/s, elapsed); validation loss per epoch when ``data.val`` is given.
* The mask head's loss joins the language loss when ``data.mask_loss`` is on and records name change maps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

from deltavlm.checkpoints import load_any, load_checkpoint, load_weights, save_checkpoint
from deltavlm.config import DeltaVLMConfig, load_config
from deltavlm.data.dataset import AugmentConfig, ChangeChatDataset
from deltavlm.data.records import AnyRecord, read_records
from deltavlm.modeling.batch import DeltaVLMBatch, TrainingExample, make_batch
from deltavlm.modeling.model import DeltaVLM
from deltavlm.tokenizers import Tokenizers, load_tokenizers

logger = logging.getLogger("deltavlm.train")

TRAINER_STATE = "trainer_state.pt"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
BEST = "best"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Config):
    """Record files (the builder's or the released ChangeChat-105k JSONs) and the images they name."""

    train: list[Path]
    val: list[Path] = Field(default_factory=list)
    image_root: Path
    tasks: list[str] | None = Field(None, description="Train on these ChangeChat types only; None = all.")
    augment: AugmentConfig = AugmentConfig()
    mask_loss: bool = Field(False, description="Add the mask head's loss where records name change maps.")
    cache_images: int = Field(0, ge=0, description="Decoded pairs kept in memory per process.")
    num_workers: int = Field(0, ge=0)


class OptimConfig(_Config):
    """AdamW and its schedule; defaults are the paper's (lr 1e-5, wd 0.05)."""

    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "cosine"] = "cosine"
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    total_steps: int | None = Field(None, description="Length of the cosine schedule; default: all epochs.")
    grad_clip: float | None = Field(None, gt=0)


class TrainConfig(_Config):
    """One training run."""

    model: str = Field("full", description="DeltaVLM config: a name in deltavlm/configs or a YAML path.")
    model_overrides: dict[str, Any] = Field(default_factory=dict)
    init_checkpoint: Path | None = Field(None, description="Weights to start from (any format load_any reads).")
    data: DataConfig
    optim: OptimConfig = OptimConfig()
    batch_size: int = Field(24, ge=1, description="Global batch per optimiser step (paper: 24).")
    grad_accum_steps: int = Field(1, ge=1)
    epochs: int = Field(30, ge=1)
    max_steps: int | None = Field(None, ge=1, description="Stop (and save) after this many optimiser steps.")
    max_minutes: float | None = Field(None, gt=0, description="Stop (and save) after this much wall time.")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    seed: int = 0
    log_every: int = Field(10, ge=1)
    save_every_steps: int | None = Field(None, ge=1)
    save_every_epochs: int = Field(1, ge=1)
    keep_last: int = Field(2, ge=1, description="Step checkpoints kept (the best one is kept as well).")
    output_dir: Path = Path("runs/deltavlm")
    resume: bool = Field(True, description="Continue from OUT/checkpoints/latest when it exists.")
    find_unused_parameters: bool | None = Field(
        None, description="DDP's flag; None: on when the mask head is (batches without maps leave it unused)."
    )
    torch_threads: int | None = Field(
        None, ge=1, description="CPU threads for torch (None: torch's default); tiny models run fastest on 1."
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.batch_size % self.grad_accum_steps:
            raise ValueError("batch_size must be a multiple of grad_accum_steps")
        return self


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """A YAML train config with ``key.sub=value`` overrides (values parsed as YAML)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return TrainConfig.model_validate(raw)


# --- distributed --------------------------------------------------------------------------------


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group torchrun / accelerate set up (``WORLD_SIZE`` > 1), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device)


def _all_reduce_mean(values: list[float], info: DistInfo) -> list[float]:
    if info.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(tensor)
    return (tensor / info.world_size).tolist()


# --- data ---------------------------------------------------------------------------------------


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, sharded across ranks, that can start part-way (for resuming).

    The permutation depends only on (seed, epoch), so every rank and a resumed run agree on it. Each rank
    gets an equal share (the tail that does not divide evenly is dropped, as DistributedSampler can).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _indices(self) -> list[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        per_rank = self.size // self.world_size
        return order[self.rank : per_rank * self.world_size : self.world_size].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.start :])

    def __len__(self) -> int:
        return self.size // self.world_size - self.start


def collate_examples(
    examples: list[TrainingExample], config: DeltaVLMConfig, tokenizers: Tokenizers, ignore_index: int
) -> DeltaVLMBatch:
    """Tokenise, pad and preprocess; a batch whose maps are all ``ignore_index`` goes without mask targets."""
    if any(ex.class_mask is not None for ex in examples) and all(
        ex.class_mask is None or bool(np.all(ex.class_mask == ignore_index)) for ex in examples
    ):
        examples = [TrainingExample(ex.t1, ex.t2, ex.question, ex.answer, ex.history, None) for ex in examples]
    return make_batch(config, tokenizers, examples)


def read_all(paths: Sequence[Path]) -> list[AnyRecord]:
    records: list[AnyRecord] = []
    for path in paths:
        records += read_records(path)
    return records


# --- schedule and checkpoints ------------------------------------------------------------------


def lr_lambda(step: int, warmup: int, total: int, schedule: str, min_ratio: float) -> float:
    """Linear warmup, then constant or cosine decay to ``min_ratio`` of the peak."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _checkpoint_root(config: TrainConfig) -> Path:
    return config.output_dir / CHECKPOINTS


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run folder (what a restart resumes from)."""
    root = Path(output_dir) / CHECKPOINTS / LATEST
    if not root.is_file():
        return None
    target = root.parent / root.read_text().strip()
    return target if (target / TRAINER_STATE).is_file() else None


def _write_pointer(root: Path, name: str, target: str) -> None:
    tmp = root / f".{name}.tmp"
    tmp.write_text(target)
    os.replace(tmp, root / name)


@dataclass
class TrainerState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val: float | None = None


def save_training_state(
    model: DeltaVLM,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    state: TrainerState,
    config: TrainConfig,
    best: bool = False,
) -> Path:
    """Write one complete checkpoint, then move the ``latest`` pointer to it (a crash mid-write leaves the
    previous checkpoint as latest), and prune old ones."""
    root = _checkpoint_root(config)
    name = f"step_{state.step:08d}"
    directory = root / name
    save_checkpoint(model, directory, trainable_only=True)
    payload = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "step": state.step,
        "epoch": state.epoch,
        "batch_in_epoch": state.batch_in_epoch,
        "best_val": state.best_val,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "train_config": config.model_dump_json(),
    }
    torch.save(payload, directory / f"{TRAINER_STATE}.tmp")
    os.replace(directory / f"{TRAINER_STATE}.tmp", directory / TRAINER_STATE)
    _write_pointer(root, LATEST, name)
    if best:
        _write_pointer(root, BEST, name)
    keep = {name, *(p.read_text().strip() for p in (root / LATEST, root / BEST) if p.is_file())}
    steps = sorted(p.name for p in root.glob("step_*") if p.is_dir())
    for old in steps[: max(0, len(steps) - config.keep_last)]:
        if old not in keep:
            shutil.rmtree(root / old, ignore_errors=True)
    return directory


def load_training_state(
    directory: Path,
    model: DeltaVLM,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> TrainerState:
    load_checkpoint(model, directory)
    payload = torch.load(directory / TRAINER_STATE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["torch_rng"])
    if torch.cuda.is_available() and payload["cuda_rng"]:
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return TrainerState(
        step=int(payload["step"]),
        epoch=int(payload["epoch"]),
        batch_in_epoch=int(payload["batch_in_epoch"]),
        best_val=payload["best_val"],
    )


# --- the run ------------------------------------------------------------------------------------


class TrainResult(BaseModel):
    steps: int
    epochs_completed: int
    last_loss: float | None
    checkpoint: Path | None
    seconds: float
    history: list[dict[str, float]] = Field(default_factory=list)


def model_config_for(config: TrainConfig) -> DeltaVLMConfig:
    """The model config with the run's precision and mask-head choices applied."""
    overrides: dict[str, Any] = json.loads(json.dumps(config.model_overrides))
    runtime = overrides.setdefault("runtime", {})
    if config.precision == "fp16":
        runtime.update(autocast_dtype="float16", frozen_llm_dtype="float16")
    elif config.precision == "bf16":
        runtime.update(autocast_dtype="bfloat16", frozen_llm_dtype="bfloat16")
    elif config.precision == "fp32":
        runtime.update(autocast_dtype="none", frozen_llm_dtype="float32")
    if config.data.mask_loss:
        overrides.setdefault("mask_head", {})["enabled"] = True
    return load_config(config.model, **overrides)


@torch.no_grad()
def validation_loss(model: torch.nn.Module, loader: DataLoader, info: DistInfo) -> float:
    """Mean language loss over the validation batches (no augmentation, no dropout)."""
    model.eval()
    total, batches = 0.0, 0
    for batch in loader:
        out = model(batch.to(info.device))
        if out.lm_loss is not None:
            total += float(out.lm_loss)
            batches += 1
    model.train()
    total, batches = _all_reduce_mean([total, batches], info)
    return total / batches if batches else float("nan")


def train(config: TrainConfig) -> TrainResult:
    """Run (or resume) one training run; returns where it ended."""
    info = init_distributed()
    started = time.perf_counter()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed + info.rank)
    if info.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model_cfg = model_config_for(config)
    model = DeltaVLM.from_config(model_cfg, device=info.device)
    load_weights(model, model_cfg.weights)
    if config.init_checkpoint is not None:
        load_any(model, config.init_checkpoint)
    tokenizers = load_tokenizers(model_cfg)
    ignore = model_cfg.mask_head.ignore_index
    with_masks = config.data.mask_loss
    train_set = ChangeChatDataset(
        read_all(config.data.train),
        config.data.image_root,
        augment=config.data.augment,
        seed=config.seed,
        with_masks=with_masks,
        tasks=config.data.tasks,
        ignore_index=ignore,
        cache_images=config.data.cache_images,
    )
    micro = config.batch_size // (info.world_size * config.grad_accum_steps)
    if micro < 1:
        raise ValueError(
            f"batch_size {config.batch_size} is smaller than world_size × grad_accum_steps "
            f"({info.world_size} × {config.grad_accum_steps})"
        )
    collate = partial(collate_examples, config=model_cfg, tokenizers=tokenizers, ignore_index=ignore)
    sampler = EpochSampler(len(train_set), config.seed, info.rank, info.world_size)
    # Its own generator: creating an iterator must not draw from the global RNG, or a resumed run's dropout
    # would diverge from an uninterrupted one.
    loader = DataLoader(
        train_set,
        generator=torch.Generator().manual_seed(config.seed),
        batch_size=micro,
        sampler=sampler,
        collate_fn=collate,
        num_workers=config.data.num_workers,
        drop_last=True,
    )
    steps_per_epoch = (len(train_set) // info.world_size // micro) // config.grad_accum_steps
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_set)} samples make no full step of batch {config.batch_size}")
    val_loader = None
    if config.data.val:
        val_set = ChangeChatDataset(
            read_all(config.data.val), config.data.image_root, seed=config.seed, tasks=config.data.tasks
        )
        val_sampler = EpochSampler(len(val_set), config.seed, info.rank, info.world_size)
        val_loader = DataLoader(
            val_set, batch_size=micro, sampler=val_sampler, collate_fn=collate, generator=torch.Generator()
        )

    optim = config.optim
    optimizer = torch.optim.AdamW(model.param_groups(optim.weight_decay), lr=optim.lr, betas=optim.betas, eps=optim.eps)
    total_steps = optim.total_steps or steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        partial(
            lr_lambda,
            warmup=optim.warmup_steps,
            total=total_steps,
            schedule=optim.schedule,
            min_ratio=optim.min_lr_ratio,
        ),
    )
    fp16 = info.device.type == "cuda" and model_cfg.runtime.autocast_dtype == "float16"
    scaler = torch.amp.GradScaler(info.device.type, enabled=fp16)
    state = TrainerState()
    resume_from = latest_checkpoint(config.output_dir) if config.resume else None
    if resume_from is not None:
        state = load_training_state(resume_from, model, optimizer, scheduler, scaler)
        if info.main:
            logger.info("resumed from %s (step %d, epoch %d)", resume_from, state.step, state.epoch)
    trained: torch.nn.Module = model
    if info.world_size > 1:
        trained = DistributedDataParallel(
            model,
            device_ids=[info.local_rank] if info.device.type == "cuda" else None,
            find_unused_parameters=(
                model.mask_head is not None if config.find_unused_parameters is None else config.find_unused_parameters
            ),
        )
    if info.main:
        config.output_dir.mkdir(parents=True, exist_ok=True)
        n_train = sum(p.numel() for _, p in model.trainable_parameters())
        logger.info(
            "%d samples, %d steps/epoch, global batch %d (%d × %d processes × %d accumulation), %.2f M trainable",
            len(train_set),
            steps_per_epoch,
            config.batch_size,
            micro,
            info.world_size,
            config.grad_accum_steps,
            n_train / 1e6,
        )
    log_path = config.output_dir / "log.jsonl"
    history: list[dict[str, float]] = []
    window: list[tuple[float, float, float]] = []
    window_start, window_samples = time.perf_counter(), 0
    last_loss: float | None = None
    checkpoint: Path | None = resume_from
    stop = False
    max_steps = config.max_steps or total_steps * 10**6

    def out_of_time() -> bool:
        return config.max_minutes is not None and (time.perf_counter() - started) / 60 >= config.max_minutes

    def save(best: bool = False) -> Path | None:
        if not info.main:
            return None
        return save_training_state(model, optimizer, scheduler, scaler, state, config, best=best)

    trained.train()
    while state.epoch < config.epochs and not stop:
        train_set.set_epoch(state.epoch)
        sampler.set_epoch(state.epoch, start=state.batch_in_epoch * micro * config.grad_accum_steps)
        micro_batches = iter(loader)
        while state.batch_in_epoch < steps_per_epoch:
            losses = _accumulate(trained, micro_batches, config.grad_accum_steps, scaler, info)
            if optim.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p for _, p in model.trainable_parameters()], optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            state.step += 1
            state.batch_in_epoch += 1
            window.append(losses)
            window_samples += config.batch_size
            if state.step % config.log_every == 0 or state.batch_in_epoch == steps_per_epoch:
                loss, lm, mask = _all_reduce_mean([float(np.mean([w[i] for w in window])) for i in range(3)], info)
                elapsed = time.perf_counter() - window_start
                entry = {
                    "step": state.step,
                    "epoch": state.epoch + state.batch_in_epoch / steps_per_epoch,
                    "loss": loss,
                    "lm_loss": lm,
                    "mask_loss": mask,
                    "lr": scheduler.get_last_lr()[0],
                    "samples_per_s": window_samples / max(elapsed, 1e-9),
                    "elapsed_s": time.perf_counter() - started,
                }
                last_loss = loss
                history.append(entry)
                if info.main:
                    logger.info(
                        "step %d  epoch %.2f  loss %.4f  lm %.4f  mask %.4f  lr %.2e  %.1f samples/s",
                        state.step,
                        entry["epoch"],
                        loss,
                        lm,
                        mask,
                        entry["lr"],
                        entry["samples_per_s"],
                    )
                    with log_path.open("a") as handle:
                        handle.write(json.dumps(entry) + "\n")
                window, window_start, window_samples = [], time.perf_counter(), 0
            if config.save_every_steps and state.step % config.save_every_steps == 0:
                checkpoint = save() or checkpoint
            if state.step >= max_steps or out_of_time():
                stop = True
                break
        if stop:
            break
        state.epoch += 1
        state.batch_in_epoch = 0
        best = False
        if val_loader is not None:
            val = validation_loss(trained, val_loader, info)
            best = state.best_val is None or val < state.best_val
            state.best_val = val if best else state.best_val
            if info.main:
                logger.info("epoch %d  validation loss %.4f%s", state.epoch, val, "  (best)" if best else "")
                with log_path.open("a") as handle:
                    handle.write(json.dumps({"step": state.step, "epoch": state.epoch, "val_loss": val}) + "\n")
        if state.epoch % config.save_every_epochs == 0 or state.epoch == config.epochs or best:
            checkpoint = save(best=best) or checkpoint
    if stop or not checkpoint or (checkpoint and checkpoint.name != f"step_{state.step:08d}"):
        checkpoint = save() or checkpoint
    if info.world_size > 1:
        dist.barrier()
    return TrainResult(
        steps=state.step,
        epochs_completed=state.epoch,
        last_loss=last_loss,
        checkpoint=checkpoint,
        seconds=time.perf_counter() - started,
        history=history,
    )


def _accumulate(
    model: torch.nn.Module,
    batches: Iterator[DeltaVLMBatch],
    steps: int,
    scaler: torch.amp.GradScaler,
    info: DistInfo,
) -> tuple[float, float, float]:
    """Forward and backward ``steps`` micro-batches; gradients sync only on the last one under DDP."""
    totals = [0.0, 0.0, 0.0]
    for index in range(steps):
        batch = next(batches).to(info.device)
        sync = index == steps - 1 or not isinstance(model, DistributedDataParallel)
        context = contextlib.nullcontext() if sync else model.no_sync()  # type: ignore[operator]
        with context:
            out = model(batch)
            if out.loss is None:
                raise RuntimeError("a training batch produced no loss (no answer tokens?)")
            scaler.scale(out.loss / steps).backward()
        totals[0] += float(out.loss.detach()) / steps
        totals[1] += float(out.lm_loss.detach()) / steps if out.lm_loss is not None else 0.0
        totals[2] += float(out.mask_loss.detach()) / steps if out.mask_loss is not None else 0.0
    return totals[0], totals[1], totals[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deltavlm.train", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", required=True, type=Path, help="train config YAML (see deltavlm/configs/train_*.yaml)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (repeatable), e.g. --set optim.lr=2e-5",
    )
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--no-resume", action="store_true", help="start fresh even if OUT/checkpoints/latest exists")
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.no_resume:
        overrides.append("resume=false")
    config = load_train_config(args.config, overrides)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    result = train(config)
    if rank == 0:
        print(json.dumps({k: v for k, v in result.model_dump(mode="json").items() if k != "history"}))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
