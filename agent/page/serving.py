"""What the page may serve: only its own output folders, never a dotfile, never the folders a user works in.

Gradio serves a file by path (``/gradio_api/file=<path>``) when it lies under an allowed path, its upload folder
or its cache. Passing a user's folder as an allowed path serves everything in it to anyone who can reach the
page, ``.env`` included, with no upload and no session. So ``--artefacts`` is a *root* under which the page makes
a folder of its own; that root may not be, or contain, the working folder, the home folder or this repository;
the page's files reach the browser through Gradio's components (copied into its cache), never through an allowed
path; and :class:`HiddenFileGuard` answers 404 to any file request naming a dotfile or a parent folder, however
it is encoded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tools.raster import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]
FILE_ROUTES = ("/file=", "/gradio_api/file=", "/gradio_api/file/", "/file/")
_MAX_UNQUOTE = 4


def page_folder(root: str | Path) -> Path:
    """A new folder of the page's own under ``root`` (made if absent), after refusing a root that would expose
    the working folder, the home folder or the repository (the root is, or contains, one of them)."""
    resolved = Path(root).expanduser().resolve()
    guarded = {"the working folder": Path.cwd().resolve(), "your home folder": Path.home().resolve()}
    guarded["the changeagent repository"] = REPO_ROOT
    for name, folder in guarded.items():
        if folder == resolved or folder.is_relative_to(resolved):
            relation = "is" if folder == resolved else "contains"
            raise InputError(
                f"--artefacts {root} {relation} {name} ({folder}); the page makes its own folders under this root "
                "and must not expose yours: pass an empty folder of its own, e.g. --artefacts /srv/changeagent"
            )
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="changeagent-page-", dir=resolved))
    except OSError as exc:
        raise InputError(f"--artefacts {root} cannot hold the page's folders: {exc.strerror or exc}") from exc


def names_hidden_file(request_path: str) -> bool:
    """Whether a file request names a dotfile or steps into a parent folder (``..`` in any part), after
    percent-decoding (repeatedly, so ``%252e`` is caught) and with either slash. Folders above the file may start
    with a dot (a temporary folder under ``~/.cache``), the file itself may not."""
    text = request_path
    for _ in range(_MAX_UNQUOTE):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    parts = [part for part in text.replace("\\", "/").split("/") if part]
    return any(part.startswith("..") for part in parts) or bool(parts and parts[-1].startswith("."))


class HiddenFileGuard:
    """ASGI middleware: a file request that names a dotfile or ``..`` gets 404, whatever the allowed paths say."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            raw = scope.get("raw_path")
            path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
            if any(marker in unquote(path) for marker in FILE_ROUTES) and names_hidden_file(path.split("?")[0]):
                await send(
                    {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"Not found"})
                return
        await self.app(scope, receive, send)
