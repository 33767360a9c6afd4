"""A mask's confidence basis is facts in the tools and one sentence per language in the answers."""

from __future__ import annotations

from agent.answering.provenance import confidence_reason
from tools.change_detection.calibration import Calibration, CalibrationEntry, held_out_basis


def _calibration() -> Calibration:
    entry = CalibrationEntry(
        key="any/any",
        gsd_band="any",
        sensor="any",
        datasets=["LEVIR-CD", "S2Looking"],
        pairs=12,
        binary_correct=10,
        binary_accuracy=0.83,
        grid_f1=0.61,
        pixel_f1=0.4,
        confidence=0.79,
        reliable=False,
        description="pooled",
    )
    return Calibration(protocol="lodo", settings={}, reliable_when="never", entries=[entry])


def test_a_fallback_and_other_settings_are_said_after_the_scores():
    entry, fallback = _calibration().lookup("1-5m", "multispectral")
    assert fallback == "all_pairs"
    basis = held_out_basis(entry, "classical", "1-5m", "multispectral", fallback, default_settings=False)
    assert confidence_reason(basis) == (
        "binary accuracy 0.83 (10/12) and grid F1 0.61 on held-out 1–5 m multispectral (RGB bands) pairs "
        "(LEVIR-CD, S2Looking; leave-one-dataset-out); no held-out pairs of this kind; using all held-out pairs; "
        "measured with the default settings, not these"
    )
    french = confidence_reason(basis, "fr")
    assert french.startswith("exactitude binaire 0,83 (10/12)") and "réglages par défaut" in french
