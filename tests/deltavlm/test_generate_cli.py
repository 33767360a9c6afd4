"""``model generate`` and the typed load error: bad inputs end in one clear line, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deltavlm import tokenizers as tokenizer_module
from deltavlm.config import load_config
from deltavlm.errors import ModelLoadError
from deltavlm.generate_cli import EXIT_BAD_INPUT, main
from deltavlm.inference import DeltaVLMRunner
from deltavlm.tokenizers import load_tokenizers
from tests.deltavlm.test_release_parity import FIXTURE, write_fixture_yaml


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    rng = np.random.default_rng(3)
    paths = (folder / "before.png", folder / "after.png")
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return paths


def _generate(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["model", "generate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tiny_generation_prints_ids_and_text(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before, after = pair
    code, out, _ = _generate(
        [str(before), str(after), "Has anything changed?", "--model-config", "tiny", "--json"], capsys
    )
    assert code == 0
    record = json.loads(out)
    assert record["prompt_form"] == "eval" and record["instruction"] == "has anything changed?"
    assert record["num_visual_tokens"] == 8
    assert 1 <= len(record["new_token_ids"]) <= 16 and isinstance(record["text"], str)
    code, out, _ = _generate(
        [str(before), str(after), "Has anything changed?", "--model-config", "tiny", "--prompt-form", "raw"], capsys
    )
    assert code == 0 and "instruction: Has anything changed?" in out.splitlines()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"before": "missing.png"}, "image not found"),
        ({"after": "not_an_image.png"}, "cannot read"),
        ({"config": "no_such_config.yaml"}, "no DeltaVLM config"),
        ({"max_new_tokens": "0"}, "bad generation option"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(
    change: dict[str, str], message: str, pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after = pair
    (tmp_path / "not_an_image.png").write_text("hello")
    args = {"before": str(before), "after": str(after), "config": "tiny", "max_new_tokens": "4"}
    args.update({key: str(tmp_path / value) if key != "max_new_tokens" else value for key, value in change.items()})
    argv = [args["before"], args["after"], "describe", "--model-config", args["config"]]
    code, out, err = _generate([*argv, "--max-new-tokens", args["max_new_tokens"]], capsys)
    assert code == EXIT_BAD_INPUT and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_different_sizes_are_rejected(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(small)
    code, _, err = _generate([str(pair[0]), str(small), "describe", "--model-config", "tiny"], capsys)
    assert code == EXIT_BAD_INPUT and "small.png" in err


# --- the release's folders: a broken or unreadable tokenizer -----------------------------------------


@pytest.fixture()
def fixture_dir() -> Path:
    if not (FIXTURE / "cases.json").exists():
        pytest.skip(f"release-parity fixture not found at {FIXTURE}")
    return FIXTURE


def _tokenizer_copy(fixture: Path, destination: Path) -> Path:
    source = fixture / "weights" / "vicuna-7b-v1.5"
    destination.mkdir()
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, destination / name)
    return destination


def _yaml_with_llm_tokenizer(fixture: Path, folder: Path, tmp_path: Path) -> Path:
    config = write_fixture_yaml(fixture, tmp_path, "eval")
    original = f"llm_dir: {fixture}/weights/vicuna-7b-v1.5, qformer_dir"
    text = config.read_text()
    assert original in text
    config.write_text(text.replace(original, f"llm_dir: {folder}, qformer_dir"))
    return config


def test_broken_tokenizer_model_is_a_load_error(
    fixture_dir: Path, pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """transformers 5 reads a truncated tokenizer.model without complaint; the probe encoding catches it."""
    folder = _tokenizer_copy(fixture_dir, tmp_path / "vicuna")
    data = (folder / "tokenizer.model").read_bytes()
    (folder / "tokenizer.model").write_bytes(data[:300])
    config = _yaml_with_llm_tokenizer(fixture_dir, folder, tmp_path)
    with pytest.raises(ModelLoadError, match=r"the tokenizer in .*vicuna is broken"):
        DeltaVLMRunner.from_config(config)
    code, _, err = _generate([str(pair[0]), str(pair[1]), "describe", "--model-config", str(config)], capsys)
    assert code == EXIT_BAD_INPUT and "vicuna is broken" in err and err.count("\n") == 1


def test_missing_sentencepiece_names_the_package_and_file(
    fixture_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokenizer_module, "_importable", lambda module: module != "sentencepiece")
    config = write_fixture_yaml(fixture_dir, tmp_path, "eval")
    with pytest.raises(ModelLoadError, match=r"vicuna-7b-v1\.5/tokenizer\.model needs the sentencepiece package"):
        DeltaVLMRunner.from_config(config)


def test_missing_tokenizer_folder_and_files(fixture_dir: Path, tmp_path: Path) -> None:
    config = _yaml_with_llm_tokenizer(fixture_dir, tmp_path / "absent", tmp_path)
    with pytest.raises(ModelLoadError, match=r"tokenizer folder not found: .*absent"):
        DeltaVLMRunner.from_config(config)
    (tmp_path / "empty").mkdir()
    config = _yaml_with_llm_tokenizer(fixture_dir, tmp_path / "empty", tmp_path)
    with pytest.raises(ModelLoadError, match="no tokenizer file"):
        load_tokenizers(load_config(config))


def test_missing_weight_file_is_a_load_error(fixture_dir: Path, tmp_path: Path) -> None:
    config = write_fixture_yaml(fixture_dir, tmp_path, "eval")
    text = config.read_text().replace("checkpoint_best.pth", "checkpoint_gone.pth")
    config.write_text(text)
    with pytest.raises(ModelLoadError, match=r"checkpoint_gone\.pth"):
        DeltaVLMRunner.from_config(config)


def test_load_errors_are_os_errors_naming_the_source(tmp_path: Path) -> None:
    """Callers that turn file errors into input errors (mask provider specs) keep doing so."""
    with pytest.raises(ModelLoadError, match=r"no config\.json in .*missing_checkpoint") as error:
        DeltaVLMRunner.from_checkpoint(tmp_path / "missing_checkpoint")
    assert isinstance(error.value, OSError) and "\n" not in str(error.value)
    with pytest.raises(ModelLoadError, match="known names"):
        DeltaVLMRunner.from_config(tmp_path / "none.yaml")
