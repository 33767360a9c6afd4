"""Text conventions, prompt layouts, loss masks, tokenizers, configs and preprocessing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deltavlm.config import DeltaVLMConfig, TextConfig, load_config
from deltavlm.preprocess import CLIP_MEAN, CLIP_STD, preprocess_image, preprocess_pair
from deltavlm.text import (
    IGNORE_INDEX,
    IMAGE_SLOT,
    RELEASE_INSTRUCTIONS,
    encode_turn,
    normalize_release_text,
    release_prompt,
    release_training_text,
)
from deltavlm.tokenizers import Tokenizers, load_tokenizers


@pytest.fixture(scope="module")
def tokenizers() -> Tokenizers:
    return load_tokenizers(load_config("tiny"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Please judge whether these two images have changed. Please answer yes or no.",
            "please judge whether these two images have changed please answer yes or no",
        ),
        ('A "new" road (built); ~ here: *now*!', "a new road built here now"),
        (
            "roads ['top-left', 'center-center'] buildings []",
            "roads ['top-left', 'center-center'] buildings []",
        ),
        ("  many\n\n spaces  ", "many spaces"),
    ],
)
def test_release_normalisation(raw: str, expected: str) -> None:
    assert normalize_release_text(raw) == expected


def test_release_normalisation_keeps_fifty_words() -> None:
    assert normalize_release_text(" ".join(f"w{i}" for i in range(80))).split() == [f"w{i}" for i in range(50)]


def test_release_prompt_forms() -> None:
    """eval = the authors' evaluation text (BlipCaptionProcessor), raw = their infer_subtasks.py text."""
    question = "<image> <image> Please judge whether these two images have changed. Please answer yes or no."
    assert release_prompt(question) == "please judge whether these two images have changed please answer yes or no"
    assert release_prompt(question, form="raw") == (
        "Please judge whether these two images have changed. Please answer yes or no."
    )


def test_release_training_text_is_the_authors() -> None:
    """Their dataset writes 'q: Q' / ' q: Q1 a: A1  q: Q2' and normalises it: colons go, 'q' stays."""
    first = "<image> <image> Please briefly describe the changes in these two images."
    assert release_training_text(first) == "q please briefly describe the changes in these two images"
    history = [("Has it changed?", "Yes."), ("How many roads?", "3 new roads")]
    assert release_training_text("Describe it.", history) == (
        "q has it changed? a yes q how many roads? a 3 new roads q describe it"
    )
    long_history = [(f"question {i} about the roads", f"answer {i}") for i in range(20)]
    kept = release_training_text("where did the buildings change", long_history)
    assert len(kept.split()) == 50 and "buildings change" not in kept  # the release keeps the first 50 words


def test_release_history_prompt_keeps_the_question() -> None:
    history = [("Has it changed?", "Yes."), ("How many roads?", "3 new roads")]
    assert release_prompt("Describe it.", history) == (
        "q has it changed? a yes q how many roads? a 3 new roads q describe it"
    )
    assert release_prompt("Describe it.", history, form="raw") == (
        "q: Has it changed? a: Yes.  q: How many roads? a: 3 new roads  q: Describe it."
    )
    long_history = [(f"question {i} about the roads", f"answer {i}") for i in range(20)]
    assert release_prompt("where did the buildings change", long_history).endswith("q where did the buildings change")


def test_release_turn_layout_and_labels(tokenizers: Tokenizers) -> None:
    tok, q = tokenizers.llm, 8
    turn = encode_turn(tok, TextConfig(), q, RELEASE_INSTRUCTIONS["binary"], answer="Yes")
    bos, eos = tok.bos_token_id, tok.eos_token_id
    assert bos == eos == tok.convert_tokens_to_ids("</s>")
    training_text = release_training_text(RELEASE_INSTRUCTIONS["binary"])
    instruction = tok.encode(training_text, add_special_tokens=False)
    answer = tok.encode("yes", add_special_tokens=False)
    assert turn.input_ids == [IMAGE_SLOT] * q + [bos, *instruction, *answer, eos]
    assert turn.labels == [IGNORE_INDEX] * (q + 1 + len(instruction)) + [*answer, eos]
    assert turn.answer_start == q + 1 + len(instruction)
    assert turn.qformer_text == training_text
    prompt = encode_turn(tok, TextConfig(), q, RELEASE_INSTRUCTIONS["binary"])
    assert prompt.qformer_text == normalize_release_text(RELEASE_INSTRUCTIONS["binary"])
    assert set(prompt.labels) == {IGNORE_INDEX}
    same_as_prompt = encode_turn(
        tok, TextConfig(training_text="prompt"), q, RELEASE_INSTRUCTIONS["binary"], answer="Yes"
    )
    assert prompt.input_ids == same_as_prompt.input_ids[: same_as_prompt.answer_start]


def test_paper_turn_layout_and_labels(tokenizers: Tokenizers) -> None:
    tok, q = tokenizers.llm, 4
    config = TextConfig(convention="paper")
    turn = encode_turn(tok, config, q, "How many roads?", history=[("Changed?", "Yes")], answer="Two")
    text = tok.decode([i for i in turn.input_ids if i != IMAGE_SLOT])
    # the byte-level tiny tokenizer marks word starts with a space, as LLaMA's sentencepiece does
    assert text == "</s> Human: Changed?</s> Assistant: Yes</s> Human: How many roads?</s> Assistant: Two</s>"
    first_slot = turn.input_ids.index(IMAGE_SLOT)
    assert turn.input_ids[first_slot : first_slot + q] == [IMAGE_SLOT] * q  # images in the first turn only
    assert tok.decode(turn.input_ids[:first_slot]) == "</s> Human:"
    supervised = [label for label in turn.labels if label != IGNORE_INDEX]
    assert tok.decode(supervised) == " Two</s>"  # the history's answers are context, not targets
    assert turn.qformer_text == "How many roads?"


def test_prompt_truncation_keeps_the_current_question(tokenizers: Tokenizers) -> None:
    tok = tokenizers.llm
    history = [(f"question number {i} about the roads", f"answer {i}") for i in range(30)]
    for convention in ("release", "paper"):
        config = TextConfig(convention=convention, max_prompt_tokens=40)
        turn = encode_turn(tok, config, 4, "where did the buildings change", history=history)
        assert sum(1 for i in turn.input_ids if i != IMAGE_SLOT) <= 40
        assert turn.input_ids.count(IMAGE_SLOT) == 4
        assert "buildings change" in tok.decode([i for i in turn.input_ids if i != IMAGE_SLOT])


def test_long_answers_keep_their_eos(tokenizers: Tokenizers) -> None:
    config = TextConfig(max_answer_tokens=6)
    turn = encode_turn(tokenizers.llm, config, 2, "describe", answer="word " * 40)
    supervised = [label for label in turn.labels if label != IGNORE_INDEX]
    assert len(supervised) == 6 and supervised[-1] == tokenizers.llm.eos_token_id


def _tokenizer_digest() -> str:
    from deltavlm.tokenizers import build_tiny_llm_tokenizer, build_tiny_qformer_tokenizer

    text = (
        build_tiny_llm_tokenizer(512).backend_tokenizer.to_str()
        + build_tiny_qformer_tokenizer(512).backend_tokenizer.to_str()
    )
    return hashlib.sha256(text.encode()).hexdigest()


def test_tiny_tokenizers_are_deterministic_across_processes() -> None:
    """A tiny checkpoint stores no tokenizer, so another process (hash seed) must build the same one."""
    script = "from tests.deltavlm.test_text import _tokenizer_digest; print(_tokenizer_digest())"
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert other.stdout.strip() == _tokenizer_digest()


def test_tiny_tokenizers_conventions(tokenizers: Tokenizers) -> None:
    llm, qformer = tokenizers.llm, tokenizers.qformer
    assert llm.pad_token == "[PAD]" and llm.pad_token_id == len(llm) - 1
    assert llm.bos_token == llm.eos_token == llm.unk_token == "</s>"
    text = "roads ['top-left', 'center-center'] buildings []"
    assert llm.decode(llm.encode(text, add_special_tokens=False)).strip() == text
    ids = qformer("Please determine how many ROADS?")["input_ids"]
    assert qformer.convert_ids_to_tokens(ids)[0] == "[CLS]" and qformer.convert_ids_to_tokens(ids)[-1] == "[SEP]"
    assert qformer.bos_token == "[DEC]" and qformer.pad_token_id == 0
    assert qformer.truncation_side == "left"


def test_local_tokenizer_directories_round_trip(tokenizers: Tokenizers, tmp_path: Path) -> None:
    tokenizers.save(tmp_path / "instructblip")
    config = load_config(
        "tiny", tokenizer={"kind": "local"}, weights={"instructblip_dir": str(tmp_path / "instructblip")}
    )
    loaded = load_tokenizers(config)
    text = "Please indicate the locations where changes have occurred"
    assert loaded.llm.encode(text) == tokenizers.llm.encode(text)
    assert loaded.qformer(text)["input_ids"] == tokenizers.qformer(text)["input_ids"]
    assert loaded.llm.pad_token_id == tokenizers.llm.pad_token_id


def test_local_tokenizers_need_a_directory() -> None:
    with pytest.raises(ValueError, match="no directory"):
        load_tokenizers(load_config("full"))


# --- configs -------------------------------------------------------------------------------------


def test_configs_load_and_validate(tmp_path: Path) -> None:
    full, tiny = load_config("full"), load_config("tiny")
    assert (full.vision.num_layers, full.vision.hidden_size, full.llm.hidden_size) == (39, 1408, 4096)
    assert tiny.vision.image_size % tiny.vision.patch_size == 0
    assert load_config(tiny) is tiny
    paper = tiny.with_updates(csrm={"mode": "paper"}, text={"convention": "paper"})
    assert paper.csrm.mode == "paper" and paper.vision == tiny.vision
    assert paper.fingerprint() != tiny.fingerprint()
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nfinetune_vision_blocks: 0\n")
    assert load_config(path).finetune_vision_blocks == 0
    with pytest.raises(ValueError):
        tiny.with_updates(csrm={"mode": "both"})
    with pytest.raises(ValueError):
        tiny.with_updates(finetune_vision_blocks=9)
    with pytest.raises(ValueError):
        DeltaVLMConfig.model_validate({"vision": {"widht": 3}})
    with pytest.raises(FileNotFoundError, match="known names"):
        load_config("huge")


# --- preprocessing -------------------------------------------------------------------------------


def test_preprocess_any_size_to_clip_normalised() -> None:
    grey = np.full((37, 91, 3), 128, np.uint8)
    out = preprocess_image(grey, 56)
    assert out.shape == (3, 56, 56)
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(out.mean(dim=(1, 2)), expected)
    t1, t2 = preprocess_pair(grey, grey[..., 0].copy()[..., None].repeat(3, 2), 56)
    assert t1.shape == t2.shape == (1, 3, 56, 56)


@pytest.mark.parametrize("shape", [(256, 256), (70, 90), (30, 20), (224, 224)])
def test_preprocess_matches_pil_bicubic(shape: tuple[int, int]) -> None:
    """The release's torchvision Resize(BICUBIC) on a PIL image, ToTensor and Normalize, within 1e-5."""
    from PIL import Image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BICUBIC)).astype(np.float32)
    reference = (torch.from_numpy(pil).permute(2, 0, 1) / 255 - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(
        CLIP_STD
    )[:, None, None]
    assert (preprocess_image(image, 224) - reference).abs().max() <= 1e-5


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((8, 8, 4), np.uint8), "H×W×3"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
    ],
)
def test_preprocess_rejects_bad_images(image: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess_image(image, 56)
    with pytest.raises(TypeError):
        preprocess_image([[0]], 56)  # type: ignore[arg-type]


def test_pair_sizes_must_agree() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        preprocess_pair(np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8), 56)
