"""The command line as a user runs it: on real sample pairs, bad input, and the demo."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from agent.cli.main import main


def test_verify_real_levircd_pair_with_its_label(shared_data, tmp_path, capsys):
    root = shared_data / "levircd"
    name = "val_27_0000_0256.png"
    rc = main(
        [
            "verify",
            str(root / "A" / name),
            str(root / "B" / name),
            "--mask",
            str(root / "label" / name),
            "--mask-kind",
            "binary",
            "--mask-category",
            "building",
            "--geojson",
            str(tmp_path / "c.geojson"),
            "--overlay",
            str(tmp_path / "o.png"),
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    v = out["verification"]
    label = cv2.imread(str(root / "label" / name), cv2.IMREAD_GRAYSCALE)
    assert v["binary"]["changed_pixels"] == int((label > 0).sum())
    assert v["counts"]["counts"]["road"] == 0 and v["counts"]["counts"]["building"] > 5
    assert v["grid"]["category_cells"]["building"] == v["grid"]["cells"]
    fc = json.loads((tmp_path / "c.geojson").read_text())
    assert {f["properties"]["cell"] for f in fc["features"]} == set(v["grid"]["cells"])
    assert (tmp_path / "o.png").exists()


def test_verify_real_no_change_negative(shared_data, capsys):
    root = shared_data / "levircd"
    name = "train_386_0512_0768.png"
    rc = main(["verify", str(root / "A" / name), str(root / "B" / name), "--mask", str(root / "label" / name)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "changed: no" in out and "changed cells: none" in out


def test_verify_classical_on_dsifn_prints_an_honest_summary(shared_data, capsys):
    root = shared_data / "dsifn"
    assert main(["verify", str(root / "A" / "1_1.png"), str(root / "B" / "1_1.png")]) == 0
    out = capsys.readouterr().out
    assert "mask: classical" in out and "category unknown" in out and "no categories" in out


def test_bad_input_is_one_clear_line(shared_data, tmp_path, capsys):
    root = shared_data / "levircd"
    rc = main(["verify", str(root / "A" / "test_113_0256.png"), str(root / "B" / "test_113_0256.png")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("changeagent: error: t1 and t2 differ in size") and "Traceback" not in err
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((10, 10), np.uint8))
    rc = main(
        [
            "verify",
            str(root / "A" / "val_27_0000_0256.png"),
            str(root / "B" / "val_27_0000_0256.png"),
            "--mask",
            str(tmp_path / "m.png"),
        ]
    )
    assert rc == 2 and "m.png is 10×10 but the pair is 256×256" in capsys.readouterr().err


def test_the_chat_speaks_around_each_answer_in_the_questions_language(tmp_path, capsys, monkeypatch):
    """The line under an answer, how to continue, and a refused question are in the question's language; the
    tool's detail of a refusal stays as the tool wrote it."""
    from deltavlm.synthetic import write_example

    example = write_example(tmp_path / "pair", seed=7)
    common = [str(example.t1), str(example.t2), "--mask", str(example.mask), "--mask-kind", "levir-mci"]
    common += ["--db", str(tmp_path / "threads.sqlite"), "--artefacts", str(tmp_path / "a")]
    assert main(["ask", *common, "Combien de nouveaux bâtiments ?"]) == 0
    out = capsys.readouterr().out
    assert "confiance de la réponse 1,00]" in out and "masque user, confiance 1,00" in out
    assert "  fil : " in out and "(pour continuer : --thread " in out and "answer confidence" not in out
    questions = iter(["Wie viele neue Gebäude gibt es?", "Hat sich etwas verändert? " * 100, "quit"])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(questions))
    assert main(["chat", *common]) == 0
    out = capsys.readouterr().out
    assert "Konfidenz der Antwort" in out
    assert "Fehler: the question is 2599 characters; the limit is 2000" in out and "error:" not in out


@pytest.mark.parametrize(
    ("environ", "lang"),
    [
        ({"LANG": "fr_FR.UTF-8"}, "fr"),
        ({"LC_MESSAGES": "de_DE.UTF-8", "LANG": "fr_FR.UTF-8"}, "de"),
        ({"LC_ALL": "pt_BR.UTF-8", "LC_MESSAGES": "de_DE", "LANG": "fr_FR"}, "pt"),
        ({"LC_ALL": "ja_JP.UTF-8", "LANG": "fr_FR.UTF-8"}, "en"),  # the locale in force has no catalog
        ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh"),  # an empty variable is unset
        ({"LANG": "es"}, "es"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({}, "en"),
    ],
)
def test_the_chat_before_any_question_speaks_the_environments_language(environ, lang):
    from agent.answering.cli_messages import environment_language

    assert environment_language(environ) == lang


def test_the_chat_banner_is_in_the_locales_language(tmp_path, capsys, monkeypatch):
    from deltavlm.synthetic import write_example

    example = write_example(tmp_path / "pair", seed=7)
    common = [str(example.t1), str(example.t2), "--mask", str(example.mask), "--mask-kind", "levir-mci"]
    common += ["--db", str(tmp_path / "threads.sqlite"), "--artefacts", str(tmp_path / "a"), "--thread", "t1"]
    monkeypatch.setattr("builtins.input", lambda _prompt="": "quit")
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert main(["chat", *common]) == 0
    out = capsys.readouterr().out
    assert "fil t1 ; posez vos questions sur la paire, « quit » pour sortir." in out, out
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert main(["chat", *common]) == 0
    assert "thread t1; ask about the pair, 'quit' to leave." in capsys.readouterr().out
