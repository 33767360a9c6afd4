"""The two tokenizers DeltaVLM needs: the LLM's and the Q-former's.

The full config loads real ones from local directories (never a hub) and applies the release's
conventions: an added ``[PAD]`` and BOS = EOS = UNK = ``</s>`` for the LLM, an added ``[DEC]`` and left
truncation for the BERT Q-former tokenizer. The tiny config builds small ones in code, trained on the
ChangeChat wording so that the tiny model's sequences look like the real task: a byte-level BPE for
the LLM (any text encodes, decoding is exact) and an uncased WordPiece for the Q-former (BERT-like).
Both take milliseconds and come out identical in every process, so a tiny checkpoint needs no tokenizer
files.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from deltavlm.config import DeltaVLMConfig
from deltavlm.errors import ModelLoadError
from deltavlm.text import NO_CHANGE_CAPTIONS, PAPER_INSTRUCTIONS, RELEASE_INSTRUCTIONS

LLM_SPECIALS = ("<unk>", "<s>", "</s>")
"""LLaMA's first three ids, kept so that tiny sequences have LLaMA's layout."""
PAD_TOKEN = "[PAD]"
RELEASE_EOS = "</s>"
QFORMER_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
QFORMER_BOS = "[DEC]"

_CELLS = (
    "top-left",
    "top-center",
    "top-right",
    "center-left",
    "center-center",
    "center-right",
    "bottom-left",
    "bottom-center",
    "bottom-right",
)
_NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "a",
    "an",
    "no",
    "several",
    "many",
)

ANSWER_PHRASES: tuple[str, ...] = (
    "yes",
    "no",
    "yes, the two images have changed.",
    "no, the two images have not changed.",
    "3 new roads and 5 new buildings",
    "there are 2 new roads and 1 new building.",
    "no new roads or buildings",
    "there are no changes in roads or buildings",
    "No roads has changed, and no buildings has changed.",
    "1 road has changed, and 4 buildings have changed.",
    "roads ['top-left', 'center-center'] buildings []",
    "roads [] buildings ['bottom-right', 'top-center']",
    "q: a: Human: Assistant:",
)
"""The release's answer phrasings (REFERENCE.md) and the dialog markers of both text conventions."""

CAPTION_CORPUS: tuple[str, ...] = (
    "many buildings are constructed along the road",
    "a road is built in the middle of the scene",
    "some houses are built on the bare land and a new road appears",
    "the trees on the left are replaced by a row of villas",
    "several buildings are built in the top right corner",
    "a new road runs across the farmland from left to right",
    "the bareland has been turned into a residential area",
    "two buildings appear beside the parking lot at the bottom",
    "the grass is replaced by houses and roads",
    "a large building is constructed near the river in the north",
    "some trees are removed and a new street is paved",
    "the area around the houses is greener than before",
    "a playground is built next to the school in the center",
    "rows of houses are built on the south side of the desert",
)
"""LEVIR-CC-style change captions: the vocabulary the caption task draws on."""


def tiny_corpus() -> list[str]:
    """Every sentence the tiny tokenizers are trained on."""
    words = [*_CELLS, *_NUMBER_WORDS, *(str(n) for n in range(30)), "road", "roads", "building", "buildings"]
    return [
        *RELEASE_INSTRUCTIONS.values(),
        *PAPER_INSTRUCTIONS.values(),
        *NO_CHANGE_CAPTIONS,
        *ANSWER_PHRASES,
        *CAPTION_CORPUS,
        " ".join(words),
    ] * 3


@lru_cache(maxsize=8)
def _tiny_llm_backend(vocab_size: int) -> str:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1,  # one id stays free for the release's added [PAD]
        special_tokens=list(LLM_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tiny_corpus(), trainer=trainer)
    return tokenizer.to_str()


def _qformer_vocab(vocab_size: int) -> dict[str, int]:
    """Specials, single characters, ``##`` continuations, then corpus words by frequency.

    Built by hand rather than trained, because the WordPiece trainer's vocabulary changes with the
    process's hash seed; every ASCII word still encodes (character pieces are the fallback).
    """
    pre = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for sentence in tiny_corpus():
        counts.update(piece for piece, _ in pre.pre_tokenize_str(sentence.lower()))
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    pieces = [*QFORMER_SPECIALS, *chars, *(f"##{c}" for c in chars if c.isalnum())]
    words = sorted((w for w in counts if w not in pieces), key=lambda w: (-counts[w], w))
    pieces += words[: max(vocab_size - 1 - len(pieces), 0)]  # one id stays free for [DEC]
    if len(pieces) > vocab_size - 1:
        raise ValueError(f"qformer.vocab_size {vocab_size} is too small for the tiny tokenizer's alphabet")
    return {piece: index for index, piece in enumerate(pieces)}


@lru_cache(maxsize=8)
def _tiny_qformer_backend(vocab_size: int) -> str:
    tokenizer = Tokenizer(models.WordPiece(vocab=_qformer_vocab(vocab_size), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer.to_str()


def build_tiny_llm_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE with the release's conventions ([PAD] last, BOS = EOS = UNK = ``</s>``)."""
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_tiny_llm_backend(vocab_size)))
    return apply_release_llm_conventions(tokenizer)


def build_tiny_qformer_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """An uncased WordPiece with BERT's specials and the release's ``[DEC]``."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tiny_qformer_backend(vocab_size)),
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    return apply_qformer_conventions(tokenizer)


def apply_release_llm_conventions(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Add ``[PAD]`` and make ``</s>`` BOS, EOS and UNK, as the release's Vicuna tokenizer is set up."""
    if tokenizer.pad_token is None or tokenizer.pad_token == RELEASE_EOS:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    tokenizer.add_special_tokens({"bos_token": RELEASE_EOS, "eos_token": RELEASE_EOS, "unk_token": RELEASE_EOS})
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"
    return tokenizer


def apply_qformer_conventions(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Add ``[DEC]`` as BOS and truncate from the left, keeping the current question of a long dialog."""
    if tokenizer.bos_token != QFORMER_BOS:
        tokenizer.add_special_tokens({"bos_token": QFORMER_BOS})
    tokenizer.truncation_side = "left"
    tokenizer.padding_side = "right"
    return tokenizer


@dataclass
class Tokenizers:
    """The LLM tokenizer and the Q-former tokenizer of one model."""

    llm: PreTrainedTokenizerBase
    qformer: PreTrainedTokenizerBase

    def save(self, directory: str | Path) -> None:
        """Write the HF InstructBLIP layout: LLM tokenizer at the root, the Q-former's in a subfolder."""
        directory = Path(directory)
        self.llm.save_pretrained(directory)
        self.qformer.save_pretrained(directory / "qformer_tokenizer")


SENTENCEPIECE_PACKAGES = {"sentencepiece": "sentencepiece", "google.protobuf": "protobuf"}
"""Modules (→ pip names) transformers needs to read a ``tokenizer.model``-only folder such as Vicuna's."""

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json", "spiece.model")


def _local(path: str | Path) -> PreTrainedTokenizerBase:
    """A tokenizer from a local folder; every failure is a :class:`ModelLoadError` naming the folder.

    transformers 5 reads a sentencepiece ``tokenizer.model`` without ``tokenizer.json`` only with the
    sentencepiece and protobuf packages; without them it fails with a misleading message about tiktoken,
    so their absence is checked first.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelLoadError(f"tokenizer folder not found: {folder}")
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(f"no tokenizer file ({', '.join(_TOKENIZER_FILES)}) in {folder}")
    if (folder / "tokenizer.model").is_file() and not (folder / "tokenizer.json").is_file():
        missing = [pip for module, pip in SENTENCEPIECE_PACKAGES.items() if not _importable(module)]
        if missing:
            raise ModelLoadError(
                f"{folder / 'tokenizer.model'} needs the {' and '.join(missing)} package(s), which are not "
                f"installed: pip install {' '.join(missing)} (both are dependencies of changeagent)"
            )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        probe = tokenizer.encode(_PROBE, add_special_tokens=False)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, ImportError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ModelLoadError(f"cannot read the tokenizer in {folder}: {reason}") from error
    if not probe or all(token == tokenizer.unk_token_id for token in probe):
        # a truncated tokenizer.model loads without an error in transformers 5 and encodes every text to []
        raise ModelLoadError(
            f"the tokenizer in {folder} is broken: it has {len(tokenizer)} tokens and encodes {_PROBE!r} to "
            f"{probe}; replace its tokenizer files with the model's originals"
        )
    return tokenizer


_PROBE = "Please briefly describe the changes in these two images."


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_tokenizers(config: DeltaVLMConfig) -> Tokenizers:
    """Build (tiny) or load (local directories) the tokenizers and check they fit the embedding tables."""
    if config.tokenizer.kind == "tiny":
        result = Tokenizers(
            llm=build_tiny_llm_tokenizer(config.llm.vocab_size),
            qformer=build_tiny_qformer_tokenizer(config.qformer.vocab_size),
        )
    else:
        weights = config.weights
        llm_dir = config.tokenizer.llm_dir or weights.instructblip_dir or weights.llm_dir
        qformer_dir = config.tokenizer.qformer_dir or (
            str(Path(weights.instructblip_dir) / "qformer_tokenizer") if weights.instructblip_dir else None
        )
        if llm_dir is None or qformer_dir is None:
            raise ValueError(
                "tokenizer.kind is 'local' but no directory is set: give tokenizer.llm_dir and "
                "tokenizer.qformer_dir, or weights.instructblip_dir (with its qformer_tokenizer/ subfolder)"
            )
        result = Tokenizers(
            llm=apply_release_llm_conventions(_local(llm_dir)),
            qformer=apply_qformer_conventions(_local(qformer_dir)),
        )
    for name, tokenizer, rows in (
        ("llm", result.llm, config.llm.vocab_size),
        ("qformer", result.qformer, config.qformer.vocab_size),
    ):
        if len(tokenizer) > rows:
            raise ValueError(f"the {name} tokenizer has {len(tokenizer)} tokens but {name}.vocab_size is {rows}")
    return result
