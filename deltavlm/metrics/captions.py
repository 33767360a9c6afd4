"""Caption metrics as the COCO caption evaluation computes them: BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D.

The scorers are ``pycocoevalcap``'s (the coco-caption code the DeltaVLM release and the change-captioning
literature report with). Text goes through the Stanford PTB tokenizer first (lower case, punctuation
tokens removed), and each prediction is scored against all of its references (five for LEVIR-CC).

Two of the steps run Java: the PTB tokenizer (``stanford-corenlp-3.4.1.jar``) and METEOR
(``meteor-1.5.jar``), both shipped inside the pycocoevalcap wheel, so nothing is downloaded at run time.
Our wrapper calls the tokenizer jar itself on a file in the system temp folder (pycocoevalcap's wrapper
writes beside its own jar, which fails in a read-only environment). Without Java, ``tokenizer="auto"``
falls back to :func:`simple_tokenize` (the same lower-casing and punctuation removal for plain English,
without PTB's splitting of contractions and brackets) and METEOR is reported as ``None``; the scores say
which tokenizer produced them.

CIDEr-D's document frequencies come from the evaluated references, so a score depends on the whole set:
score the full test split, as the release does.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

logger = logging.getLogger(__name__)

PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
"""Tokens coco-caption drops after PTB tokenisation (note: lower-cased brackets like ``-lrb-`` stay)."""

TokenizerName = Literal["auto", "ptb", "simple"]


class CaptionScores(BaseModel):
    """Corpus-level scores in [0, 1] (CIDEr-D in [0, 10]); ``meteor`` is None when Java is unavailable."""

    bleu_1: float
    bleu_2: float
    bleu_3: float
    bleu_4: float
    meteor: float | None
    rouge_l: float
    cider: float
    n: int
    tokenizer: str


def java_available() -> bool:
    return shutil.which("java") is not None


def _pycocoevalcap_dir() -> Path:
    spec = importlib.util.find_spec("pycocoevalcap")  # a namespace package: no __file__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pycocoevalcap is not installed (pip install pycocoevalcap)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def ptb_tokenize_lines(lines: Sequence[str]) -> list[str]:
    """Stanford PTB tokenisation (``-preserveLines -lowerCase``), coco-caption's punctuation removed."""
    jar = _pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    if not jar.is_file():
        raise FileNotFoundError(f"PTB tokenizer jar not found at {jar} (pip install pycocoevalcap)")
    text = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines)
    handle, name = tempfile.mkstemp(suffix=".txt", prefix="ptb_")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as tmp:
            tmp.write(text)
        result = subprocess.run(
            ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", name],
            capture_output=True,
            check=True,
        )
    finally:
        os.unlink(name)
    out = result.stdout.decode("utf-8").split("\n")
    out += [""] * (len(lines) - len(out))  # trailing empty captions produce no line
    return [
        " ".join(w for w in line.rstrip().split(" ") if w and w not in PTB_PUNCTUATION) for line in out[: len(lines)]
    ]


_SIMPLE_TOKEN = re.compile(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*|[^\sa-z0-9]")


def simple_tokenize(line: str) -> str:
    """Java-free fallback: lower case, words kept whole (``t-shaped``, ``3.5``), punctuation dropped."""
    tokens = _SIMPLE_TOKEN.findall(line.lower())
    return " ".join(t for t in tokens if t not in PTB_PUNCTUATION and re.search(r"[a-z0-9]", t))


def tokenize(captions: Mapping[str, Sequence[str]], method: TokenizerName = "auto") -> tuple[dict[str, list[str]], str]:
    """Tokenise every caption of every key; returns the result and the tokenizer actually used."""
    if method == "auto":
        method = "ptb" if java_available() else "simple"
        if method == "simple":
            logger.warning("java not found: captions are tokenised without the PTB tokenizer and METEOR is skipped")
    keys = list(captions)
    flat = [c for k in keys for c in captions[k]]
    tokens = ptb_tokenize_lines(flat) if method == "ptb" else [simple_tokenize(c) for c in flat]
    out: dict[str, list[str]] = {}
    position = 0
    for key in keys:
        out[key] = tokens[position : position + len(captions[key])]
        position += len(captions[key])
    return out, method


class Meteor15:
    """METEOR 1.5 on tokenised text: the coco-caption jar and flags (``-l en -norm``), one JVM per instance.

    The exchange is coco-caption's: one ``SCORE ||| ref … ||| hyp`` line per prediction returns its
    statistics, then one ``EVAL ||| stats …`` line returns a score per prediction and, last, the corpus score
    (from the pooled statistics, not the mean of the per-caption scores). Starting the JVM loads the
    paraphrase table (seconds), so one instance serves every table of an evaluation; use it as a context
    manager so the process always ends.
    """

    def __init__(self) -> None:
        jar = _pycocoevalcap_dir() / "meteor" / "meteor-1.5.jar"
        if not jar.is_file():
            raise FileNotFoundError(f"METEOR jar not found at {jar} (pip install pycocoevalcap)")
        command = ["java", "-jar", "-Xmx2G", jar.name, "-", "-", "-stdio", "-l", "en", "-norm"]
        self._process = subprocess.Popen(
            command, cwd=jar.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )

    def _ask(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{line}\n".encode())
        self._process.stdin.flush()

    def _read(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the METEOR process ended unexpectedly")
        return line.decode().strip()

    def score(self, references: Mapping[str, Sequence[str]], predictions: Mapping[str, Sequence[str]]) -> float:
        """Corpus METEOR of one tokenised prediction per key against its tokenised references."""
        stats = []
        for key in predictions:
            hypothesis = predictions[key][0].replace("|||", "").replace("  ", " ")
            self._ask(" ||| ".join(("SCORE", " ||| ".join(references[key]), hypothesis)))
            stats.append(self._read())
        self._ask("EVAL ||| " + " ||| ".join(stats))
        for _ in stats:
            self._read()
        return float(self._read())

    def close(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            self._process.kill()
        self._process.wait()

    def __enter__(self) -> Meteor15:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def meteor_score(references: Mapping[str, Sequence[str]], predictions: Mapping[str, Sequence[str]]) -> float:
    """Corpus METEOR 1.5 in a JVM of its own (see :class:`Meteor15` to score several sets with one)."""
    with Meteor15() as scorer:
        return scorer.score(references, predictions)


def score_captions(
    references: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    tokenizer: TokenizerName = "auto",
    meteor: bool | Meteor15 | None = None,
) -> CaptionScores:
    """Corpus BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of ``predictions`` against ``references`` (same keys).

    ``meteor``: a running :class:`Meteor15` to use, ``True``/``False``, or ``None`` for "when Java is present".
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(references) != set(predictions):
        missing = sorted(set(references) ^ set(predictions))[:5]
        raise ValueError(f"references and predictions must have the same keys (differ on e.g. {missing})")
    if not references:
        raise ValueError("no captions to score")
    if any(not refs for refs in references.values()):
        raise ValueError("every prediction needs at least one reference")
    keys = sorted(references)
    both, method = tokenize(
        {**{f"r{k}": list(references[k]) for k in keys}, **{f"p{k}": [predictions[k]] for k in keys}}, tokenizer
    )
    refs = {k: both[f"r{k}"] for k in keys}  # one tokenizer run (one JVM start) for both sides
    preds = {k: both[f"p{k}"] for k in keys}
    bleu, _ = Bleu(4).compute_score(refs, preds, verbose=0)
    rouge, _ = Rouge().compute_score(refs, preds)
    cider, _ = Cider().compute_score(refs, preds)
    meteor_value = None
    if isinstance(meteor, Meteor15):
        meteor_value = meteor.score(refs, preds)
    elif meteor or (meteor is None and java_available()):
        meteor_value = meteor_score(refs, preds)
    return CaptionScores(
        bleu_1=float(bleu[0]),
        bleu_2=float(bleu[1]),
        bleu_3=float(bleu[2]),
        bleu_4=float(bleu[3]),
        meteor=meteor_value,
        rouge_l=float(rouge),
        cider=float(cider),
        n=len(keys),
        tokenizer=method,
    )
