"""Issue 26, BAD 2: the page serves only its own outputs.

``app.py --artefacts .`` used to hand the working folder to Gradio as an allowed path, so
``GET /gradio_api/file=<cwd>/.env`` returned the file with no upload and no session. Now ``--artefacts`` is a root
under which the page makes its own folder, a root that is or contains the working folder, the home folder or the
repository is refused, nothing is passed as an allowed path, and a request naming a dotfile or ``..`` (plain,
percent-encoded or double-encoded) gets 404.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

import app
from tools.raster import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]

SECRET = "CHANGEAGENT_SECRET=do-not-serve-me"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _no_page(page):
    raise AssertionError("a refused --artefacts must not build a page")


@pytest.mark.parametrize("which", ["cwd", "parent of cwd", "home", "repo"])
def test_an_artefacts_root_that_exposes_the_users_folders_is_refused(tmp_path, monkeypatch, capsys, which):
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text(SECRET)
    monkeypatch.chdir(work)
    monkeypatch.setattr(app, "build_blocks", _no_page)
    root = {"cwd": ".", "parent of cwd": str(tmp_path), "home": str(Path.home()), "repo": str(REPO_ROOT)}[which]
    assert app.main(["--artefacts", root, "--examples"]) == 2
    err = capsys.readouterr().err
    assert f"--artefacts {root} " in err and "must not expose yours" in err


def test_page_folder_is_a_new_folder_under_the_root(tmp_path, monkeypatch):
    from agent.page.serving import page_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    first, second = page_folder(tmp_path / "root"), page_folder(tmp_path / "root")
    assert first != second and first.parent == second.parent == (tmp_path / "root").resolve()
    with pytest.raises(InputError, match="is the working folder"):
        page_folder(".")


@pytest.mark.parametrize(
    "path",
    [".env", "/a/.env", "/a/../b", "/a/%2e%2e/b", "/a/%252e%252e/b", "/a/%2Eenv", "a\\..\\b", "/a/%2F..%2Fb"],
)
def test_hidden_or_parent_parts_are_recognised_however_encoded(path):
    from agent.page.serving import names_hidden_file

    assert names_hidden_file(path)


def test_plain_names_are_not_hidden():
    from agent.page.serving import names_hidden_file

    assert not names_hidden_file("/tmp/gradio/3f2a/overlay.png")
    assert not names_hidden_file("/home/u/.cache/gradio/3f2a/overlay.png")  # a dot folder above the file


def test_the_served_page_gives_no_file_outside_its_own_outputs(tmp_path, monkeypatch):
    work, root = tmp_path / "work", tmp_path / "root"
    work.mkdir()
    root.mkdir()
    for folder in (work, root):
        (folder / ".env").write_text(SECRET)
        (folder / "secret.txt").write_text(SECRET)
    monkeypatch.chdir(work)
    launched: dict = {}
    real_build = app.build_blocks

    def build(page):
        blocks = real_build(page)
        launch = blocks.launch

        def launch_in_background(**kwargs):
            launched.update(kwargs, page=page, blocks=blocks)
            return launch(**kwargs, prevent_thread_lock=True, quiet=True)

        blocks.launch = launch_in_background
        return blocks

    monkeypatch.setattr(app, "build_blocks", build)
    port = _free_port()
    assert app.main(["--port", str(port), "--artefacts", str(root), "--examples"]) == 0
    try:
        page_dir = launched["page"].work_dir
        (page_dir / ".env").write_text(SECRET)
        (page_dir / "sessions").mkdir(exist_ok=True)
        targets = [
            f"{work}/.env",
            f"{root}/.env",
            f"{root}/secret.txt",
            f"{page_dir}/.env",
            f"{page_dir}/sessions/../.env",
            f"{page_dir}/sessions/../../secret.txt",
            "/etc/passwd",
            "../.env",
            ".env",
        ]
        requests = [f"/gradio_api/file={t}" for t in targets]
        requests += [f"/gradio_api/file={quote(t, safe='')}" for t in targets]
        requests += [f"/gradio_api/file={quote(quote(t, safe=''), safe='')}" for t in targets]
        requests += [f"/file={t}" for t in targets]
        for request in requests:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{request}", timeout=10) as response:
                    status, body = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read()
            assert status != 200 and SECRET.encode() not in body, request
        assert not launched.get("allowed_paths")
        assert page_dir.parent == root.resolve()
    finally:
        if "blocks" in launched:
            launched["blocks"].close()
