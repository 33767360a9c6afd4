"""Batch over 50 synthetic pairs × 5 questions against a naive loop of ``Agent().ask`` calls.

Run: ``.venv/bin/python bench/bench_batch.py [--pairs 50] [--masks] [--model-config tiny] [--ray]``.

The naive loop is what a user writes without the batch runner: for every pair and question,
``Agent(settings).ask((t1, t2), question, mask=...)``, so each question reloads the pair, remakes and
re-verifies its mask, and (with ``--model-config``) rebuilds the model and re-encodes the pair. A middle
variant keeps one agent and one thread per pair but still passes the file paths, so only decoding is
repeated. The batch runner decodes, masks and verifies each pair once and asks all its questions in one
thread (``agent.batch``); it also writes every output file and fsyncs each pair's commit, which the naive
loops do not. Pairs are 256² GeoTIFFs (UTM 14N); without ``--masks`` every pair uses the classical mask.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.api import Agent  # noqa: E402
from agent.batch.runner import BatchOptions, run_batch  # noqa: E402
from agent.settings import AgentSettings, ModelSettings  # noqa: E402
from deltavlm.synthetic import write_example  # noqa: E402

QUESTIONS = ["Has anything changed?", "How many new buildings?", "where?", "Describe the changes.", "export that"]


def make_catalog(folder: Path, n: int, masks: bool, size: int) -> Path:
    rows = []
    for i in range(n):
        paths = write_example(folder / f"p{i:03d}", seed=1000 + i, size=size)
        rows.append({"id": f"p{i:03d}", "t1": paths.t1, "t2": paths.t2, "mask": paths.mask if masks else ""})
    catalog = folder / "pairs.csv"
    with catalog.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "t1", "t2", "mask"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: str(v.relative_to(folder)) if isinstance(v, Path) else v for k, v in row.items()})
    (folder / "questions.txt").write_text("\n".join(QUESTIONS) + "\n")
    return catalog


def naive(catalog: Path, settings: AgentSettings, mask_kind: str, fresh_agent: bool) -> float:
    with catalog.open() as handle:
        rows = list(csv.DictReader(handle))
    started = time.perf_counter()
    shared = None if fresh_agent else Agent(settings)
    for row in rows:
        pair = (catalog.parent / row["t1"], catalog.parent / row["t2"])
        mask = catalog.parent / row["mask"] if row["mask"] else None
        for question in QUESTIONS:
            agent = Agent(settings) if fresh_agent else shared
            agent.ask(pair, question, thread_id=row["id"], mask=mask, mask_kind=mask_kind)
            if fresh_agent:
                agent.close()
    return time.perf_counter() - started


def batched(catalog: Path, out: Path, settings: AgentSettings, mask_kind: str, engine: str, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    options = BatchOptions(
        catalog=catalog,
        questions=catalog.parent / "questions.txt",
        out=out,
        engine=engine,
        workers=workers,
        mask_kind=mask_kind,
        progress=False,
        agent=settings,
    )
    started = time.perf_counter()
    report = run_batch(options)
    seconds = time.perf_counter() - started
    assert report.answered + report.failed == report.pairs, report
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--masks", action="store_true", help="give every pair its LEVIR-MCI mask")
    parser.add_argument("--model-config", help="DeltaVLM in process (e.g. tiny): the naive loop rebuilds it per call")
    parser.add_argument("--ray", action="store_true", help="also time --engine ray with 1 and 2 workers")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs each (the machine may be shared)")
    args = parser.parse_args()
    model = ModelSettings(backend="in-process", config=args.model_config) if args.model_config else ModelSettings()
    mask_kind = "levir-mci" if args.masks else "auto"
    n_asks = args.pairs * len(QUESTIONS)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        catalog = make_catalog(folder / "catalog", args.pairs, args.masks, args.size)
        settings = AgentSettings(model=model, artefact_dir=folder / "naive_artefacts")
        masks = "their own masks" if args.masks else "the classical mask"
        perception = f"DeltaVLM {args.model_config} in process" if args.model_config else "verifier-only"
        print(f"{args.pairs} pairs ({args.size}² GeoTIFF, {masks}) × {len(QUESTIONS)} questions, {perception}")
        batched(catalog, folder / "warm", settings, mask_kind, "local", 1)  # imports and caches warm
        runs = {
            "batch, local, 1 worker": lambda: batched(catalog, folder / "b1", settings, mask_kind, "local", 1),
            "batch, local, 2 workers": lambda: batched(catalog, folder / "b2", settings, mask_kind, "local", 2),
        }
        if args.ray:
            runs["batch, ray, 1 worker"] = lambda: batched(catalog, folder / "r1", settings, mask_kind, "ray", 1)
            runs["batch, ray, 2 workers"] = lambda: batched(catalog, folder / "r2", settings, mask_kind, "ray", 2)
        if not args.skip_naive:
            runs["naive: one Agent, paths per question"] = lambda: naive(catalog, settings, mask_kind, False)
            runs["naive: Agent().ask per question"] = lambda: naive(catalog, settings, mask_kind, True)
        timings = {label: float("inf") for label in runs}
        for _ in range(args.repeat):  # interleaved, so a burst of load elsewhere does not favour one side
            for label, run in runs.items():
                timings[label] = min(timings[label], run())
        base = timings["batch, local, 1 worker"]
        for label, seconds in timings.items():
            print(
                f"  {label:40s} {seconds:7.2f} s  {args.pairs / seconds:6.2f} pairs/s  "
                f"{n_asks / seconds:7.1f} answers/s  ({seconds / base:.2f}× batch local-1)"
            )
        if "batch, ray, 2 workers" in timings:
            ratio = timings["batch, ray, 1 worker"] / timings["batch, ray, 2 workers"]
            print(f"  ray: 2 workers are {ratio:.2f}× as fast as 1 (Ray start-up included)")


if __name__ == "__main__":
    main()
