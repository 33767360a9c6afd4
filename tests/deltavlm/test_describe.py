"""Parameter counts of the full model, built on the meta device (no memory)."""

from __future__ import annotations

import pytest

from deltavlm.config import load_config
from deltavlm.describe import describe, format_summary, main


def test_full_model_counts_on_meta_device() -> None:
    summary = describe(load_config("full"))
    assert 7.90e9 < summary.total < 7.96e9  # REFERENCE.md: ≈ 7.93 B
    assert 2.50e8 < summary.trainable < 2.58e8  # ≈ 253.6 M in the release, less its unused 0.39 M ITC heads
    rows = {row.name: row for row in summary.components}
    assert rows["CSRM (release)"].total == 13_881_472
    assert rows["Q-former (instruction-aware)"].total == 185_660_160
    assert rows["projection Q-former -> LLM"].total == 768 * 4096 + 4096
    assert rows["Bi-VE blocks 37-38 (fine-tuned)"].trainable == pytest.approx(50.50e6, rel=1e-3)
    assert rows["LLM (LLaMA/Vicuna)"].trainable == 0
    assert sum(row.total for row in summary.components) == summary.total


@pytest.mark.parametrize(("mode", "csrm"), [("paper", 4 * (2816 * 1408 + 1408)), ("none", 0)])
def test_csrm_variants_change_the_count(mode: str, csrm: int) -> None:
    summary = describe(load_config("full", csrm={"mode": mode}))
    assert {row.name: row.total for row in summary.components}[f"CSRM ({mode})"] == csrm


def test_without_bive_finetuning() -> None:
    summary = describe(load_config("full", finetune_vision_blocks=0))
    assert 1.95e8 < summary.trainable < 2.05e8


def test_cli_prints_table_and_explains_table9(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "full"]) == 0
    out = capsys.readouterr().out
    assert "7.93 B" in out and "Table 9" in out and "vision_proj" in out
    assert "Q-former (instruction-aware)" in out
    assert "Table 9" in format_summary(describe(load_config("tiny")))


def test_meta_build_holds_no_storage() -> None:
    import torch

    from deltavlm.modeling import DeltaVLM

    with torch.device("meta"):
        model = DeltaVLM(load_config("full"))
    assert all(t.is_meta for t in [*model.parameters(), *model.buffers()])
