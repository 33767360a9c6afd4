"""Full-size DeltaVLM on a CPU: build, count, and run one 224² pair to 2 generated tokens, in bf16.

Run by hand (not in CI): ``.venv/bin/python bench/full_smoke.py [--counts-only]``. Needs about 17 GB of free
memory. The ``full`` config is built on the meta device (no memory), cast to bf16 there, then materialised
once on the CPU (``to_empty``) and given random weights by transformers' own initialisers, so the 7.9 B
parameters take 2 bytes each and are written once; no float32 copy ever exists. One random 224² pair then goes
through Bi-VE, CSRM, the Q-former and the LLM for 2 new tokens under CPU bf16 autocast (the model's own
autocast is an accelerator feature; on the CPU the pixels are float32 while the weights are bf16). Tokenizers
are the code-built tiny ones at the full vocabulary sizes, since no real tokenizer folder is needed to
measure memory and time. Prints one JSON object: parameter counts per part, peak RSS and RSS after each
phase, and wall time per phase.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deltavlm.config import DeltaVLMConfig, load_config
from deltavlm.inference import AnswerRequest, DeltaVLMRunner
from deltavlm.modeling.model import DeltaVLM
from deltavlm.tokenizers import Tokenizers, build_tiny_llm_tokenizer, build_tiny_qformer_tokenizer

GIB = 2**30
PARTS = ("vision_model", "csrm", "query_tokens", "qformer", "language_projection", "language_model")


def rss_gib() -> float:
    """Resident set size now, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / GIB
    return float("nan")


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


@contextmanager
def phase(report: dict[str, Any], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    report["phases"][name] = {
        "seconds": round(time.perf_counter() - start, 1),
        "rss_gib": round(rss_gib(), 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }
    print(f"{name}: {report['phases'][name]}", file=sys.stderr, flush=True)  # progress of a long run


def parameter_counts(model: DeltaVLM) -> dict[str, Any]:
    """Total and trainable counts, overall and per part (shapes only: works on the meta device)."""
    parts: dict[str, dict[str, int]] = {}
    for name, parameter in model.named_parameters():
        part = parts.setdefault(name.split(".")[0], {"total": 0, "trainable": 0})
        part["total"] += parameter.numel()
        part["trainable"] += parameter.numel() if parameter.requires_grad else 0
    total = sum(p["total"] for p in parts.values())
    trainable = sum(p["trainable"] for p in parts.values())
    return {"total": total, "trainable": trainable, "parts": parts}


def bf16_parameters(model: DeltaVLM) -> DeltaVLM:
    """Parameters in bf16; buffers (rotary frequencies) stay float32, as transformers computes with them."""
    for parameter in model.parameters():
        parameter.data = parameter.data.to(torch.bfloat16)
    return model


def materialise(model: DeltaVLM) -> None:
    """Allocate the meta model on the CPU in its (bf16) dtype and fill it with a random init.

    transformers marks modules and parameters as initialised when it builds them (on meta too), so the
    marks are cleared before its initialisers run; our own parts (CSRM, projection, queries) reset
    themselves. Buffers (rotary frequencies, position ids) are recomputed by the same initialisers.
    """
    model.to_empty(device="cpu")
    for module in model.modules():
        module._is_hf_initialized = False
        for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            if hasattr(tensor, "_is_hf_initialized"):
                tensor._is_hf_initialized = False
    with torch.no_grad():
        for hf_model in (model.vision_model, model.qformer, model.language_model):
            hf_model.initialize_weights()
        for module in (model.csrm, model.language_projection):
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        nn.init.normal_(model.query_tokens, std=0.02)
    model.vision_model.post_layernorm.eps = model.config.vision.ln_vision_eps


def smoke_config(name: str) -> DeltaVLMConfig:
    return load_config(
        name,
        tokenizer={"kind": "tiny"},
        runtime={"device": "cpu", "autocast_dtype": "bfloat16", "frozen_llm_dtype": "bfloat16"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts-only", action="store_true", help="build on meta and count; no memory needed")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--config", default="full", help="another config (tiny) checks the script in seconds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"config": args.config, "threads": args.threads, "phases": {}}
    config = smoke_config(args.config)
    with phase(report, "build_on_meta"), torch.device("meta"):
        model = bf16_parameters(DeltaVLM(config))
    report["parameters"] = parameter_counts(model)
    if args.counts_only:
        print(json.dumps(report, indent=2))
        return
    with phase(report, "materialise_bf16"):
        materialise(model)
    report["weights_gib"] = round(sum(t.numel() * t.element_size() for t in model.state_dict().values()) / GIB, 2)
    with phase(report, "tokenizers"):
        tokenizers = Tokenizers(
            llm=build_tiny_llm_tokenizer(config.llm.vocab_size),
            qformer=build_tiny_qformer_tokenizer(config.qformer.vocab_size),
        )
    runner = DeltaVLMRunner(model, tokenizers)
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    after = before.copy()
    after[60:120, 80:150] = rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        with phase(report, "encode_and_csrm"):
            features = runner.encode_pairs([(before, after)])[0]
        report["csrm_tokens_shape"] = list(features.tokens.shape)
        with phase(report, "qformer_and_2_tokens"):
            request = AnswerRequest(before, after, "Please briefly describe the changes in these two images.")
            tokens = runner.generate_ids([request], num_beams=1, max_new_tokens=2, min_new_tokens=2)
    report["new_token_ids"] = tokens[0].tolist()
    report["vision_encoder_calls"] = runner.vision_encoder_calls
    report["peak_rss_gib"] = round(peak_rss_gib(), 2)
    report["total_seconds"] = round(sum(p["seconds"] for p in report["phases"].values()), 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
