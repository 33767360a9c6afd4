"""Mask providers on the real sample pairs: the table the README quotes, and CPU time per 256² pair.

Run: ``.venv/bin/python bench/bench_masks.py [--data ../shared/data] [--provider SPEC ...] [--learned-timing]``.

For each dataset (LEVIR-CD: building change, one real no-change negative; DSIFN: any change) it scores, with
``tools.mask_eval``:

* ``naive``: RGB colour-difference magnitude + Otsu, the baseline the issue quotes (pixel F1 ≈ 0.26 on
  LEVIR-CD test crops), kept here as a reference point, not offered as a provider;
* ``classical``: ``tools.classical_mask`` with its defaults;
* any ``--provider`` spec (``onnx:model.onnx``, ``export:model.pt2``, ``deltavlm:CONFIG,checkpoint=…``).

``--learned-timing`` adds CPU timings of the learned providers' machinery on a 256² pair: a small Siamese CNN
(random weights) exported to ONNX and ``torch.export``, and the tiny DeltaVLM config's mask head (random
weights). Their masks mean nothing; the numbers show the providers' own overhead (normalisation, tiling,
runtime), not the speed of a real BIT/ChangeFormer or of EVA-ViT-g.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from deltavlm.rules import ChangeClass
from tools.classical_mask import ClassicalMaskProvider
from tools.mask_eval import evaluate, format_pairs, format_table, write_json
from tools.masks import ChangeMask, MaskProvider, MaskSource
from tools.pairs import ImagePair, load_pair
from tools.provider_spec import build_provider

DEFAULT_DATA = Path(os.environ.get("CHANGEAGENT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class NaiveColourOtsu:
    """The reference baseline: |t2 − t1| in RGB, Otsu's threshold, nothing else."""

    name = "naive"

    def provide(self, pair: ImagePair) -> ChangeMask:
        diff = np.sqrt(((pair.t2.astype(np.float32) - pair.t1.astype(np.float32)) ** 2).sum(axis=2))
        scaled = np.clip(diff / max(float(diff.max()), 1e-6) * 255, 0, 255).astype(np.uint8)
        _, mask = cv2.threshold(scaled, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        return ChangeMask(
            class_mask=np.where(mask > 0, int(ChangeClass.CHANGE), 0).astype(np.uint8),
            source=MaskSource(provider=self.name, kind="classical", categorical=False, confidence=0.05),
        )


def _time_provider(provider: MaskProvider, pair: ImagePair, repeats: int) -> tuple[float, float]:
    provider.provide(pair)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        provider.provide(pair)
        times.append((time.perf_counter() - started) * 1e3)
    return min(times), statistics.median(times)


def _learned_providers(tmp: Path) -> list[tuple[str, MaskProvider]]:
    """A random-weight Siamese CNN as ONNX and torch.export, and the tiny DeltaVLM head, for timing only."""
    import torch
    from torch import nn

    from tools.learned_masks.deltavlm_head import DeltaVLMMaskProvider
    from tools.learned_masks.provider import OnnxMaskProvider, TorchExportMaskProvider

    class Siamese(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encode = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.ReLU()
            )
            self.head = nn.Sequential(
                nn.Conv2d(64, 32, 3, padding=1),
                nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="bilinear"),
                nn.Conv2d(32, 2, 1),
            )

        def forward(self, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
            f1, f2 = self.encode(t1), self.encode(t2)
            return self.head(torch.cat([f1, (f2 - f1).abs()], dim=1))

    model = Siamese().eval()
    examples = (torch.randn(2, 3, 256, 256), torch.randn(2, 3, 256, 256))
    batch = torch.export.Dim("batch", min=1, max=16)
    shapes = ({0: batch}, {0: batch})
    onnx_path, pt2_path = tmp / "siamese.onnx", tmp / "siamese.pt2"
    torch.onnx.export(model, examples, str(onnx_path), input_names=["t1", "t2"], dynamo=True, dynamic_shapes=shapes)
    torch.export.save(torch.export.export(model, examples, dynamic_shapes=shapes), str(pt2_path))
    spec = {"input_size": [256, 256], "output": "class_logits", "class_names": ["background", "change"]}
    return [
        ("onnx (random-weight CNN, 256² tile)", OnnxMaskProvider(onnx_path, spec=spec, device="cpu")),
        ("torch-export (same CNN)", TorchExportMaskProvider(pt2_path, spec=spec, device="cpu")),
        (
            "deltavlm-head (tiny config, random weights)",
            DeltaVLMMaskProvider.from_config("tiny", mask_head={"enabled": True}),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding levircd/ and dsifn/")
    parser.add_argument("--provider", action="append", default=[], metavar="SPEC", help="extra provider (repeatable)")
    parser.add_argument("--pairs", action="store_true", help="print per-pair rows too")
    parser.add_argument("--json", type=Path, help="write each dataset's report as DIR/<dataset>.json")
    parser.add_argument("--learned-timing", action="store_true", help="time the learned providers' machinery")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per provider")
    args = parser.parse_args()

    providers: list[MaskProvider] = [NaiveColourOtsu(), ClassicalMaskProvider()]
    labels = ["naive colour + Otsu", "classical"]
    for spec in args.provider:
        providers.append(build_provider(spec))
        labels.append(spec)
    for dataset in ("levircd", "dsifn"):
        root = args.data / dataset
        if not root.is_dir():
            print(f"{root} not found; skipping {dataset}")
            continue
        report = evaluate(root, providers, labels=labels)
        print(f"\n## {dataset} ({len(report.providers[0].pairs)} labelled pairs, {root})\n")
        print(format_table(report, markdown=True))
        if args.pairs:
            print()
            print(format_pairs(report))
        if args.json:
            print(f"wrote {write_json(report, args.json / f'{dataset}.json')}")

    timing_pair = load_pair(
        args.data / "levircd" / "A" / "val_27_0000_0256.png", args.data / "levircd" / "B" / "val_27_0000_0256.png"
    )
    timed: list[tuple[str, MaskProvider]] = list(zip(labels, providers, strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        if args.learned_timing:
            timed += _learned_providers(Path(tmp))
        print(f"\n## CPU time per 256² pair ({args.repeats} runs after one warm-up; {os.cpu_count()} cores)\n")
        print("| provider | min ms | median ms |\n|---|---|---|")
        for label, provider in timed:
            best, median = _time_provider(provider, timing_pair, args.repeats)
            print(f"| {label} | {best:.1f} | {median:.1f} |")


if __name__ == "__main__":
    main()
