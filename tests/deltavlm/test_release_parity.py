"""Release parity: the project computes what the authors' DeltaVLM code computes, from the files users download.

``../shared/fixtures/deltavlm_release_tiny`` holds tiny random weights in the release's file layouts and what
the authors' code (transformers 4.33) computed from them for 8 cases. We load it the way a user does (the
README's YAML ``weights:`` section written to a file, then the raw ``model generate`` command), record every
stage of our own chain with forward hooks while it answers, and compare each stage with the README's
tolerances and the greedy ids exactly. Two deliberate mapping faults (the CSRM context layers swapped, the
release checkpoint dropped) must make the same comparison fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from deltavlm import checkpoints
from deltavlm.inference import AnswerRequest, DeltaVLMRunner, decode_answers
from deltavlm.modeling import generation
from tests.conftest import SHARED_DATA

FIXTURE = Path(os.environ.get("CHANGEAGENT_RELEASE_FIXTURE", SHARED_DATA.parent / "fixtures" / "deltavlm_release_tiny"))
REPO = Path(__file__).resolve().parents[2]

PIXEL_TOLERANCE = 1e-5
"""PIL's own resize is used, so pixels match to float rounding (the README allows a grey level otherwise)."""
STAGE_TOLERANCE = 1e-4
LOGIT_TOLERANCE = 1e-3
ADDED_PAD_ID = 511
"""The [PAD] row the authors' resize_token_embeddings draws at random: its logit is not comparable."""

FLOAT_STAGES = {
    "pixel_A": PIXEL_TOLERANCE,
    "pixel_B": PIXEL_TOLERANCE,
    **{
        name: STAGE_TOLERANCE
        for name in (
            "vit_A",
            "vit_B",
            "feat_A",
            "feat_B",
            "csrm_diff",
            "csrm_selected_A",
            "csrm_selected_B",
            "fused_A",
            "fused_B",
            "image_embeds",
            "qformer_last_hidden_state",
            "query_output",
            "inputs_llm",
            "llm_inputs_embeds",
        )
    },
    "first_logits": LOGIT_TOLERANCE,
    "generate_scores": LOGIT_TOLERANCE,
    "generate_top2_margin": 2 * LOGIT_TOLERANCE,
}
EXACT_STAGES = (
    "qformer_input_ids",
    "qformer_attention_mask",
    "llm_input_ids",
    "llm_attention_mask",
    "llm_position_ids",
    "new_token_ids",
    "generate_sequences",
)


@dataclass(frozen=True)
class Case:
    """One recorded case of the fixture: its pair, prompt form, prompt and expected tensors."""

    name: str
    form: str
    prompt: str
    text: str
    before: np.ndarray
    after: np.ndarray
    expected: dict[str, np.ndarray]


def _fixture() -> Path:
    if not (FIXTURE / "cases.json").exists():
        pytest.skip(f"release-parity fixture not found at {FIXTURE}")
    return FIXTURE


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_cases(fixture: Path) -> list[Case]:
    """The 8 cases; ``smoke`` (the quick-inference script's raw text) is our ``raw`` form."""
    cases = []
    for record in json.loads((fixture / "cases.json").read_text())["cases"]:
        with np.load(fixture / "expected" / f"{record['case']}.npz") as arrays:
            expected = {key: arrays[key] for key in arrays.files}
        cases.append(
            Case(
                name=record["case"],
                form="raw" if record["variant"] == "smoke" else "eval",
                prompt=record["prompt"],
                text=record["text"],
                before=_rgb(fixture / "pairs" / f"{record['pair']}_A.png"),
                after=_rgb(fixture / "pairs" / f"{record['pair']}_B.png"),
                expected=expected,
            )
        )
    return cases


def write_fixture_yaml(fixture: Path, directory: Path, prompt_form: str, drop: str | None = None) -> Path:
    """The README's YAML with <FIXTURE> filled in, the prompt form set, and optionally one line dropped."""
    readme = (fixture / "README.md").read_text()
    match = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert match is not None, "the fixture README has no YAML block"
    lines = match.group(1).replace("<FIXTURE>", str(fixture)).splitlines()
    if drop is not None:
        lines = [line for line in lines if not line.strip().startswith(f"{drop}:")]
    text = "\n".join(lines) + "\n"
    text = text.replace("text: {convention: release,", f"text: {{convention: release, prompt_form: {prompt_form},")
    assert f"prompt_form: {prompt_form}" in text
    path = directory / f"release_parity_{prompt_form}{'_no_' + drop if drop else ''}.yaml"
    path.write_text(text)
    return path


# --- recording our chain's stages -------------------------------------------------------------------


class StageRecorder:
    """Forward hooks on the runner's modules that keep the first value each stage takes during one answer."""

    def __init__(self, runner: DeltaVLMRunner) -> None:
        self.runner = runner
        self.stages: dict[str, torch.Tensor] = {}
        self._fused: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._scores: list[torch.Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle | _Restore] = []

    def __enter__(self) -> StageRecorder:
        model = self.runner.model
        vision = model.vision_model
        self._pre(vision.embeddings, self._pixels)
        self._post(vision.encoder.layers[-1], lambda out: self._dates("vit", out))
        self._post(vision.post_layernorm, lambda out: self._dates("feat", out))
        self._post_with_input(model.csrm.fuse, self._fuse)
        self._post(model.csrm, lambda out: self._keep("image_embeds", out))
        self._post_with_kwargs(model.qformer, self._qformer)
        self._post(model.language_projection, lambda out: self._keep("inputs_llm", out))
        self._post_with_kwargs(model.language_model, self._llm)
        language_model = model.language_model
        generate = language_model.generate

        def recording_generate(**kwargs: Any) -> Any:  # what the model hands to generate, as the fixture records
            self._keep("llm_inputs_embeds", kwargs["inputs_embeds"])
            self._keep("llm_attention_mask", kwargs["attention_mask"])
            return generate(**kwargs)

        language_model.generate = recording_generate
        self._handles.append(_Restore(language_model, "generate"))
        penalty = generation.StartedRepetitionPenalty.__call__

        def recording_penalty(processor: Any, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            processed = penalty(processor, input_ids, scores)  # the only processor of a greedy release call
            self._scores.append(processed.detach().clone())
            return processed

        generation.StartedRepetitionPenalty.__call__ = recording_penalty
        self._handles.append(_Restore(generation.StartedRepetitionPenalty, "__call__", penalty))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        if self._scores:
            scores = torch.stack(self._scores, dim=1)
            self.stages["generate_scores"] = scores
            top2 = scores[..., :ADDED_PAD_ID].topk(2, dim=-1).values
            self.stages["generate_top2_margin"] = top2[..., 0] - top2[..., 1]

    def _pre(self, module: torch.nn.Module, hook: Callable[[torch.Tensor], None]) -> None:
        self._handles.append(module.register_forward_pre_hook(lambda _m, args: hook(args[0])))

    def _post(self, module: torch.nn.Module, hook: Callable[[Any], None]) -> None:
        self._handles.append(module.register_forward_hook(lambda _m, _args, out: hook(out)))

    def _post_with_input(self, module: torch.nn.Module, hook: Callable[[torch.Tensor, torch.Tensor], None]) -> None:
        self._handles.append(module.register_forward_hook(lambda _m, args, out: hook(args[0], out)))

    def _post_with_kwargs(self, module: torch.nn.Module, hook: Callable[[dict[str, Any], Any], None]) -> None:
        self._handles.append(
            module.register_forward_hook(lambda _m, _args, kwargs, out: hook(kwargs, out), with_kwargs=True)
        )

    def _keep(self, name: str, value: torch.Tensor) -> None:
        self.stages.setdefault(name, value.detach().clone())

    def _pixels(self, pixels: torch.Tensor) -> None:
        first, second = pixels.chunk(2)
        self._keep("pixel_A", first)
        self._keep("pixel_B", second)

    def _dates(self, stage: str, value: torch.Tensor) -> None:
        first, second = value.chunk(2)
        self._keep(f"{stage}_A", first)
        self._keep(f"{stage}_B", second)

    def _fuse(self, joined: torch.Tensor, fused: torch.Tensor) -> None:
        """``fuse`` reads [F_t ; diff ; F'_t] once per date, t1 first."""
        self._fused.append((joined, fused))
        if len(self._fused) == 2:
            for (inputs, output), date in zip(self._fused, "AB", strict=True):
                _, diff, selected = inputs.chunk(3, dim=-1)
                self._keep("csrm_diff", diff)
                self._keep(f"csrm_selected_{date}", selected)
                self._keep(f"fused_{date}", output)

    def _qformer(self, kwargs: dict[str, Any], out: Any) -> None:
        queries = kwargs["query_embeds"].shape[1]
        self._keep("qformer_input_ids", kwargs["input_ids"])
        self._keep("qformer_attention_mask", kwargs["attention_mask"])
        self._keep("qformer_last_hidden_state", out.last_hidden_state)
        self._keep("query_output", out.last_hidden_state[:, :queries])

    def _llm(self, kwargs: dict[str, Any], out: Any) -> None:
        """The first forward of ``generate`` runs the whole prompt: its positions and last logits."""
        if "first_logits" in self.stages:
            return  # later decoding steps
        self._keep("llm_position_ids", kwargs["position_ids"])
        self._keep("first_logits", out.logits[:, -1])


class _Restore:
    """Undoes an attribute set over a method, like a hook handle's ``remove``."""

    def __init__(self, owner: object, name: str, original: Any = None) -> None:
        self.owner, self.name, self.original = owner, name, original

    def remove(self) -> None:
        if self.original is None:
            delattr(self.owner, self.name)  # an instance attribute over the class's method
        else:
            setattr(self.owner, self.name, self.original)


def run_case(runner: DeltaVLMRunner, case: Case) -> tuple[dict[str, torch.Tensor], str]:
    """Answer one case through the runner with hooks on; (recorded stages, decoded text)."""
    runner.cache.clear()  # a cached pair would skip the vision stages
    request = AnswerRequest(case.before, case.after, case.prompt)
    with StageRecorder(runner) as recorder:
        tokens = runner.generate_ids([request])
    stages = dict(recorder.stages)
    eos = runner.tokenizers.llm.eos_token_id
    ids = tokens[0].tolist()
    stages["new_token_ids"] = torch.tensor([ids[: ids.index(eos) + 1] if eos in ids else ids])
    start = runner.config.generation.history_start_id
    stages["generate_sequences"] = torch.tensor([[start, *stages["new_token_ids"][0].tolist()]])
    stages["llm_input_ids"] = torch.tensor([[i for i in runner.prompt_turns([request])[0].input_ids if i >= 0]])
    return stages, decode_answers(runner.tokenizers.llm, tokens)[0]


def compare(stages: dict[str, torch.Tensor], text: str, case: Case) -> dict[str, str]:
    """Every stage outside its tolerance, with what was wrong; empty when the case is at parity."""
    failures: dict[str, str] = {}
    for name, tolerance in FLOAT_STAGES.items():
        ours, theirs = stages[name].float(), torch.from_numpy(case.expected[name]).float()
        if name in ("first_logits", "generate_scores"):
            ours, theirs = ours[..., :ADDED_PAD_ID], theirs[..., :ADDED_PAD_ID]
        if ours.shape != theirs.shape:
            failures[name] = f"shape {tuple(ours.shape)} vs {tuple(theirs.shape)}"
            continue
        error = float((ours - theirs).abs().max())
        if not error <= tolerance:
            failures[name] = f"max abs {error:.3g} > {tolerance:g}"
    for name in EXACT_STAGES:
        ours, theirs = stages[name].long().tolist(), case.expected[name].astype(np.int64).tolist()
        if ours != theirs:
            failures[name] = f"{ours} vs {theirs}"
    if text != case.text:
        failures["text"] = f"{text!r} vs {case.text!r}"
    return failures


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    return _fixture()


@pytest.fixture(scope="module")
def cases(fixture_dir: Path) -> list[Case]:
    return load_cases(fixture_dir)


@pytest.fixture(scope="module")
def yaml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("release_parity")


@pytest.fixture(scope="module")
def runners(fixture_dir: Path, yaml_dir: Path) -> dict[str, DeltaVLMRunner]:
    """One runner per prompt form, each built from the README's YAML as a user would."""
    return {
        form: DeltaVLMRunner.from_config(write_fixture_yaml(fixture_dir, yaml_dir, form)) for form in ("raw", "eval")
    }


# --- parity -----------------------------------------------------------------------------------------


def test_fixture_loads_with_every_weight_covered(runners: dict[str, DeltaVLMRunner]) -> None:
    runner = runners["eval"]
    assert [report.format for report in runner.load_reports] == ["hf-llama", "lavis-eva-vit", "release"]
    assert checkpoints.uncovered_keys(runner.model, runner.load_reports) == []


def test_tokenizers_give_the_release_ids(runners: dict[str, DeltaVLMRunner]) -> None:
    """The tokenizer.model-only Vicuna folder loads (sentencepiece + protobuf) with the release's conventions."""
    llm = runners["eval"].tokenizers.llm
    assert (len(llm), llm.pad_token_id, llm.bos_token_id, llm.eos_token_id) == (512, 511, 2, 2)
    assert llm.decode([1], skip_special_tokens=True) == ""  # <s> is no longer special; it decodes to nothing


@pytest.mark.parametrize("index", range(8), ids=[f"case{k}" for k in range(8)])
def test_every_stage_and_greedy_ids_match(index: int, cases: list[Case], runners: dict[str, DeltaVLMRunner]) -> None:
    case = cases[index]
    stages, text = run_case(runners[case.form], case)
    assert compare(stages, text, case) == {}


def test_cli_generates_the_release_ids(
    cases: list[Case], fixture_dir: Path, yaml_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``model generate`` on all 8 cases: the prompt ids, the greedy ids and the text, each with its form."""
    from deltavlm.generate_cli import main

    records = json.loads((fixture_dir / "cases.json").read_text())["cases"]
    config = write_fixture_yaml(fixture_dir, yaml_dir, "eval")
    for case, record in zip(cases, records, strict=True):
        pair = fixture_dir / "pairs" / record["pair"]
        argv = ["model", "generate", f"{pair}_A.png", f"{pair}_B.png", case.prompt, "--model-config", str(config)]
        assert main([*argv, "--prompt-form", case.form, "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["prompt_form"] == case.form
        assert printed["llm_prompt_ids"] == record["llm_input_ids"]
        assert printed["qformer_input_ids"] == record["qformer_input_ids"]
        assert printed["new_token_ids"] == record["new_token_ids"], case.name
        assert printed["text"] == record["text"]


@pytest.mark.slow
def test_cli_runs_as_a_module(cases: list[Case], fixture_dir: Path, yaml_dir: Path) -> None:
    case, config = cases[3], write_fixture_yaml(fixture_dir, yaml_dir, "raw")
    command = [sys.executable, "-m", "deltavlm.generate_cli", "model", "generate"]
    command += [str(fixture_dir / "pairs" / "pair1_A.png"), str(fixture_dir / "pairs" / "pair1_B.png")]
    command += [case.prompt, "--model-config", str(config), "--json"]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new_token_ids"] == case.expected["new_token_ids"][0].tolist()


# --- the comparison catches mapping faults ------------------------------------------------------------


def test_swapped_csrm_context_layers_fail(
    cases: list[Case], fixture_dir: Path, yaml_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapping that puts context2 (on F_t) where context1 (on the difference) goes is caught at the CSRM."""
    convert = checkpoints.release_to_ours

    def swapped(state: dict[str, torch.Tensor], config: Any) -> Any:
        converted, dropped, incomplete = convert(state, config)
        on_diff, on_feature = converted["csrm.context.weight"].chunk(2, dim=1)
        converted["csrm.context.weight"] = torch.cat([on_feature, on_diff], dim=1)
        return converted, dropped, incomplete

    monkeypatch.setattr(checkpoints, "release_to_ours", swapped)
    runner = DeltaVLMRunner.from_config(write_fixture_yaml(fixture_dir, yaml_dir, "eval"))
    case = cases[4]
    failures = compare(*run_case(runner, case), case)
    assert {"csrm_selected_A", "csrm_selected_B", "fused_A", "fused_B", "image_embeds"} <= failures.keys()
    assert not {"pixel_A", "vit_A", "feat_A", "csrm_diff"} & failures.keys()  # the fault is located, not smeared


def test_dropping_the_release_checkpoint_fails(cases: list[Case], fixture_dir: Path, yaml_dir: Path) -> None:
    """Without checkpoint_best.pth the trained ViT blocks, CSRM and Q-former stay untrained: caught at the ViT."""
    config = write_fixture_yaml(fixture_dir, yaml_dir, "eval", drop="release_checkpoint")
    assert "checkpoint_best" not in config.read_text()
    runner = DeltaVLMRunner.from_config(config)
    case = cases[4]
    failures = compare(*run_case(runner, case), case)
    assert {"vit_A", "feat_A", "image_embeds", "query_output", "first_logits", "new_token_ids"} <= failures.keys()
    assert not {"pixel_A", "llm_input_ids", "qformer_input_ids"} & failures.keys()


def test_generating_without_the_bos_history_fails(cases: list[Case], runners: dict[str, DeltaVLMRunner]) -> None:
    """Penalising generated ids only (transformers 5's history) changes case3 at step 9, as the README says."""
    case = cases[3]
    request = AnswerRequest(case.before, case.after, case.prompt)
    runner = runners[case.form]
    parity = runner.generate_ids([request])[0].tolist()
    changed = runner.generate_ids([request], history_start_id=None)[0].tolist()
    assert parity == case.expected["new_token_ids"][0].tolist()
    assert changed[:8] == parity[:8] and changed[8] != parity[8]


def test_changeagent_ask_answers_through_the_release_files(fixture_dir: Path, yaml_dir: Path, tmp_path: Path, capsys):
    """The user's path: the fixture YAML given to ``changeagent ask`` answers through DeltaVLM."""
    from agent.cli.main import main

    config = write_fixture_yaml(fixture_dir, yaml_dir, "eval")
    pair = [str(fixture_dir / "pairs" / "pair0_A.png"), str(fixture_dir / "pairs" / "pair0_B.png")]
    common = ["--db", str(tmp_path / "t.sqlite"), "--artefacts", str(tmp_path / "a"), "--json"]
    assert main(["ask", *pair, "Describe the changes", "--model-config", str(config), *common]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["model_used"] is True
    assert "deltavlm" in answer["evidence"]["tools"]


def test_a_broken_release_folder_falls_back_to_the_verifiers(fixture_dir: Path, tmp_path: Path, capsys):
    """A tokenizer folder without its model file: the agent answers from the verifiers and says why."""
    from agent.cli.main import main

    broken = tmp_path / "vicuna"
    shutil.copytree(fixture_dir / "weights" / "vicuna-7b-v1.5", broken)
    (broken / "tokenizer.model").write_bytes(b"not a sentencepiece model")
    config = write_fixture_yaml(fixture_dir, tmp_path, "eval")
    config.write_text(config.read_text().replace(str(fixture_dir / "weights" / "vicuna-7b-v1.5"), str(broken)))
    pair = [str(fixture_dir / "pairs" / "pair0_A.png"), str(fixture_dir / "pairs" / "pair0_B.png")]
    common = ["--db", str(tmp_path / "t.sqlite"), "--artefacts", str(tmp_path / "a")]
    assert main(["ask", *pair, "Has anything changed?", "--model-config", str(config), *common]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "DeltaVLM could not be loaded" in out.out and "tokenizer" in out.out
    assert "comes from the verifiers alone" in out.out
