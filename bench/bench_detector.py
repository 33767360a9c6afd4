"""Speed and memory of the learned detector through ONNX Runtime on CPU (targets: ≤ 300 ms per 256² pair,
≤ 3 s per 1024² pair, peak RSS < 1.5 GB for a 10,000² scene, tiled).

Run: ``.venv/bin/python bench/bench_detector.py DIR [--threads 2] [--repeats 5] [--scene-size 10000]``
(DIR: a folder from ``changeagent detector train``; ``--scene-size 0`` skips the scene).

Pairs are deterministic synthetic blocks (``deltavlm.synthetic.generate_pair``); each size is timed after one
untimed warm-up and the median of ``--repeats`` runs is printed. The scene reuses ``bench/bench_scene.py``'s
10,000² GeoTIFF pair and runs ``analyse_scene`` with the detector in a fresh process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _pair(side: int):  # -> ImagePair
    import numpy as np

    from deltavlm.synthetic import generate_pair
    from tools.pairs import pair_from_arrays

    block = generate_pair(side, min(side, 512), change=True)
    t1, t2 = block.t1, block.t2
    reps = -(-side // t1.shape[0])
    tile = lambda a: np.ascontiguousarray(np.tile(a, (reps, reps, 1))[:side, :side])  # noqa: E731
    return pair_from_arrays(tile(t1), tile(t2))


def time_pairs(folder: Path, threads: int, repeats: int) -> dict[str, float]:
    import onnxruntime as ort

    from tools.provider_spec import build_provider

    provider = build_provider(f"detector:{folder}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    provider.runtime.session = ort.InferenceSession(
        str(provider.model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    result = {}
    for side in (256, 1024):
        pair = _pair(side)
        provider.provide(pair)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            provider.provide(pair)
            times.append((time.perf_counter() - started) * 1e3)
        result[f"ms_{side}"] = round(statistics.median(times), 1)
        print(f"{side}² pair: median {result[f'ms_{side}']:.0f} ms over {repeats} runs ({threads} thread(s))")
    return result


def scene_child(folder: Path, t1: Path, t2: Path, out: Path) -> None:
    from agent.scene.analysis import analyse_scene
    from bench.bench_scene import peak_rss_mb
    from tools.provider_spec import build_provider

    started = time.perf_counter()
    result = analyse_scene(t1, t2, out, provider=build_provider(f"detector:{folder}"))
    payload = {
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "tiles": result.tiles_total,
        "changed_fraction": result.summary.changed_fraction,
    }
    print(json.dumps(payload))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="detector folder (model.onnx + sidecar)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scene-size", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=ROOT / "out" / "bench_scene")
    parser.add_argument("--child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        scene_child(args.folder, *args.child)
        return
    timings = time_pairs(args.folder, args.threads, args.repeats)
    if args.scene_size:
        from bench.bench_scene import make_scene

        t1, t2, _ = make_scene(args.data / f"scene_{args.scene_size}", args.scene_size)
        command = [sys.executable, __file__, str(args.folder), "--child", str(t1), str(t2)]
        command.append(str(args.data / "out_detector"))
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        scene = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{args.scene_size}² scene: {scene['seconds']:.0f} s, peak RSS {scene['peak_rss_mb']:.0f} MB, "
            f"{scene['tiles']} tiles, changed {scene['changed_fraction']:.2%}"
        )
        timings.update({f"scene_{k}": v for k, v in scene.items()})
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
