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


def test_the_ledger_settles_conflicts_with_facts_and_the_answer_words_them():
    from agent.answering.provenance import resolution_text
    from agent.ledger import Fact, reconcile

    def fact(key, value, source, confidence, turn):
        return Fact(key=key, value=value, source=source, confidence=confidence, turn=turn)

    _, conflicts, ledger = reconcile([fact("count.building", 3, "deltavlm", 0.5, 0)], {}, 0)
    assert not conflicts
    _, conflicts, _ = reconcile([fact("count.building", 5, "deltavlm", 0.4, 1)], ledger, 1)
    assert [(c.resolution, c.earlier_turn) for c in conflicts] == [("kept_earlier", 0)]
    assert resolution_text(conflicts[0]) == "kept my answer from turn 1, which is more confident"
    _, conflicts, _ = reconcile(
        [fact("changed", False, "verifier (user mask)", 1.0, 0), fact("regions", 2, "deltavlm", 0.5, 0)], {}, 0
    )
    assert conflicts[0].resolution == "to_no_change"
    assert (
        resolution_text(conflicts[0], "fr")
        == "corrigé pour s'accorder avec « aucun changement » (verifier (user mask))"
    )
