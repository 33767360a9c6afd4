"""Every evaluation metric against values computed by hand from its definition.

Caption metrics follow coco-caption (pycocoevalcap): corpus BLEU with the closest reference length,
ROUGE-L with β = 1.2 over the best reference precision and recall, CIDEr-D (σ = 6, document frequencies
from the references, ×10), METEOR 1.5 (α = 0.85, β = 0.2, γ = 0.6). The Java parts (PTB tokenizer,
METEOR) are skipped when no JRE is installed.
"""

from __future__ import annotations

import math

import pytest

from deltavlm.evaluate import Prediction, render_tables, score_predictions
from deltavlm.metrics.captions import (
    Meteor15,
    java_available,
    meteor_score,
    ptb_tokenize_lines,
    score_captions,
    simple_tokenize,
)
from deltavlm.metrics.structured import binary_metrics, count_metrics, grid_metrics

needs_java = pytest.mark.skipif(not java_available(), reason="no Java runtime (PTB tokenizer and METEOR need one)")

REFS = {"a": ["the cat sat on the mat"], "b": ["the cat sat on the mat"]}
PREDS = {"a": "the cat sat on a mat", "b": "the cat"}


def test_bleu_matches_the_corpus_formula() -> None:
    scores = score_captions(REFS, PREDS, tokenizer="simple", meteor=False)
    # n-gram matches (clipped) / n-grams in the hypotheses, both captions pooled:
    p = [(5 + 2) / (6 + 2), (3 + 1) / (5 + 1), 2 / 4, 1 / 3]
    brevity = math.exp(1 - 12 / 8)  # hypotheses 8 tokens, closest references 12 tokens
    for n, value in enumerate((scores.bleu_1, scores.bleu_2, scores.bleu_3, scores.bleu_4), start=1):
        expected = brevity * math.prod(p[:n]) ** (1 / n)
        assert value == pytest.approx(expected, rel=1e-6)


def test_rouge_l_matches_the_lcs_formula() -> None:
    scores = score_captions(REFS, PREDS, tokenizer="simple", meteor=False)

    def f(lcs: int, hyp: int, ref: int, beta: float = 1.2) -> float:
        p, r = lcs / hyp, lcs / ref
        return (1 + beta**2) * p * r / (r + beta**2 * p)

    assert scores.rouge_l == pytest.approx((f(5, 6, 6) + f(2, 2, 6)) / 2, rel=1e-9)


def test_cider_d_matches_its_definition() -> None:
    refs = {"x": ["red green blue cyan gray"], "y": ["fox owl elk yak emu"]}
    preds = {"x": "red green blue cyan gray", "y": "fox owl elk"}
    scores = score_captions(refs, preds, tokenizer="simple", meteor=False)
    # Disjoint references: every n-gram has df 1 of 2 images, so all weights are equal and cancel.
    # x equals its reference: cosine 1 for n = 1..4, no length penalty → 10.
    # y: cosines 3/√(3·5), 2/√(2·4), 1/√(1·3), 0 (no 4-gram); length = bigram count, 2 vs 4 → exp(−4/72).
    cos_y = [3 / math.sqrt(15), 2 / math.sqrt(8), 1 / math.sqrt(3), 0.0]
    score_y = 10 * sum(cos_y) / 4 * math.exp(-(2**2) / (2 * 6.0**2))
    assert scores.cider == pytest.approx((10.0 + score_y) / 2, rel=1e-9)


def test_simple_tokenizer_follows_coco_punctuation_rules() -> None:
    assert simple_tokenize("A T-shaped road, 3.5 km long!") == "a t-shaped road 3.5 km long"


@needs_java
def test_ptb_tokenizer_runs_offline_and_drops_punctuation() -> None:
    lines = ["It isn't a T-shaped road.", "", "Two houses (new) appear; nothing else"]
    assert ptb_tokenize_lines(lines) == [
        "it is n't a t-shaped road",
        "",
        "two houses -lrb- new -rrb- appear nothing else",
    ]


@needs_java
@pytest.mark.slow  # each JVM start loads METEOR's paraphrase table
def test_meteor_matches_its_formula() -> None:
    ref = {"1": ["buildings roads villas trees"]}
    with Meteor15() as scorer:
        # identical: METEOR 1.5 sets fragmentation to 0 for a full, one-chunk match
        assert scorer.score(ref, {"1": ["buildings roads villas trees"]}) == pytest.approx(1.0)
        three = scorer.score(ref, {"1": ["buildings roads trees"]})
        reversed_two = scorer.score(ref, {"1": ["trees villas"]})

    def meteor(p: float, r: float, chunks: int, matches: int) -> float:
        fmean = p * r / (0.85 * p + 0.15 * r)
        return fmean * (1 - 0.6 * (chunks / matches) ** 0.2)

    # three exact matches in two chunks ("buildings roads" | "trees"): P = 1, R = 3/4
    assert three == pytest.approx(meteor(1, 0.75, 2, 3), abs=1e-6)
    # reversed order: two chunks of one word
    assert reversed_two == pytest.approx(meteor(1, 0.5, 2, 2), abs=1e-6)


@needs_java
@pytest.mark.slow
def test_coco_pipeline_agrees_with_pycocoevalcap_on_a_known_example() -> None:
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    refs = {"1": ["A man is riding a horse.", "a person rides a brown horse"], "2": ["Two dogs play in the park."]}
    preds = {"1": "a man rides a horse", "2": "two dogs are playing in a park"}
    ours = score_captions(refs, preds, tokenizer="ptb")
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tokenizer.tokenize({k: [{"caption": v}] for k, v in preds.items()})
    reference_meteor, _ = Meteor().compute_score(gts, res)
    assert ours.tokenizer == "ptb"
    assert ours.meteor == pytest.approx(reference_meteor, abs=1e-9)
    assert meteor_score(gts, res) == pytest.approx(reference_meteor, abs=1e-9)


def test_binary_metrics_count_unparsed_answers_as_wrong() -> None:
    m = binary_metrics([True, True, False, False, True], [True, None, True, False, False])
    assert (m.tp, m.fn, m.fp, m.tn, m.unparsed) == (1, 2, 1, 1, 1)
    assert m.accuracy == pytest.approx(2 / 5)
    assert m.precision == pytest.approx(1 / 2)
    assert m.recall == pytest.approx(1 / 3)
    assert m.f1 == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))


def test_count_metrics_per_category() -> None:
    truth = [{"road": 1, "building": 2}, {"road": 0, "building": 0}, {"road": 3, "building": 1}]
    predicted = [{"road": 1, "building": 4}, None, {"road": 1}]  # None and a missing category count as 0
    m = count_metrics(truth, predicted)
    assert m.mae["road"] == pytest.approx(2 / 3) and m.rmse["road"] == pytest.approx(math.sqrt(4 / 3))
    assert m.mae["building"] == pytest.approx(1.0) and m.rmse["building"] == pytest.approx(math.sqrt(5 / 3))
    assert m.mae["all"] == pytest.approx(5 / 6) and m.rmse["all"] == pytest.approx(math.sqrt(9 / 6))
    assert m.unparsed == 1


def test_grid_metrics_micro_average_and_subset_accuracy() -> None:
    truth = [{"road": ["TL", "TC"], "building": []}, {"road": [], "building": ["CC"]}]
    predicted = [{"road": ["TL"], "building": ["BR"]}, None]
    m = grid_metrics(truth, predicted)
    road, building, pooled = m.per_category["road"], m.per_category["building"], m.per_category["all"]
    assert (road.precision, road.recall, road.f1, road.accuracy) == pytest.approx((1.0, 0.5, 2 / 3, 0.5))
    assert (building.precision, building.recall, building.f1, building.accuracy) == (0.0, 0.0, 0.0, 0.0)
    assert (pooled.precision, pooled.recall, pooled.f1, pooled.accuracy) == pytest.approx((0.5, 1 / 3, 0.4, 0.0))
    # Jaccard per sample: road {TL,TC} vs {TL} = 1/2, road {} vs {} = 0 (scikit-learn's zero_division);
    # building {} vs {BR} = 0, {CC} vs {} = 0; over the 18 labels: sample 1 {rTL,rTC} vs {rTL,bBR} = 1/3,
    # sample 2 {bCC} vs {} = 0, so (1/3) / 2.
    assert (road.jaccard, building.jaccard, pooled.jaccard) == pytest.approx((0.25, 0.0, 1 / 6))
    assert m.unparsed == 1


def test_scoring_predictions_builds_every_table() -> None:
    def p(task: str, ref: str, answer: str, turn: int = 0, turn_task: str | None = None, **kw: object) -> Prediction:
        return Prediction(
            task=task, key=f"{task}{ref}{turn}", turn=turn, turn_task=turn_task or task, question="q",
            references=[ref], answer=answer, **kw,
        )  # fmt: skip

    predictions = [
        Prediction(
            task="caption", key="c1", turn_task="caption", question="q", answer="there is no difference",
            references=["there is no difference", "the two scenes seem identical"], changed=False,
        ),
        Prediction(
            task="caption", key="c2", turn_task="caption", question="q", answer="a road is built",
            references=["a new road is built", "a road appears"], changed=True,
        ),
        p("binary", "yes", "yes"),
        p("binary", "no", "yes"),
        p("count", "2 new roads and no new buildings", "1 new road and no new buildings"),
        p("localisation", "roads ['top-left'] buildings []", "roads ['top-left'] buildings []"),
        p("dialog", "yes", "yes", 0, "binary"),
        p("dialog", "no new roads or buildings", "there are no changes in roads or buildings", 1, "count"),
    ]  # fmt: skip
    report = score_predictions(predictions, tokenizer="simple", meteor=False)
    assert report.binary is not None and report.binary.accuracy == 0.5
    assert report.caption_binary is not None and report.caption_binary.accuracy == 1.0
    assert report.count is not None and report.count.mae["road"] == 1.0
    assert report.localisation is not None and report.localisation.per_category["road"].f1 == 1.0
    assert set(report.captioning) == {"all", "changed", "unchanged"}
    assert report.dialog["binary"].accuracy == 1.0 and report.dialog["count"].mae["all"] == 0.0
    tables = render_tables(report)
    for heading in ("Table 2", "Table 3", "Table 4", "Table 5", "Table 6"):
        assert heading in tables
