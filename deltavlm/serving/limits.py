"""Request limits and input decoding: everything a client sends is checked here before it costs memory or time.

A server shared by many clients must refuse a 50 000 × 50 000 PNG before decoding it (a few kilobytes of
compressed zeros can inflate to gigabytes), so sizes are read from the PNG header first. Each refusal is
a :class:`RequestRejected` with the HTTP status and a sentence naming the limit, which the app turns into
a JSON error; nothing a client sends reaches the model unchecked.
"""

from __future__ import annotations

import base64
import binascii
import struct
from pathlib import Path

import cv2
import numpy as np

from deltavlm.serving.schema import ChatRequest, RequestLimits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class RequestRejected(Exception):
    """A request the server will not serve, with its HTTP status and a reason a person can act on."""

    def __init__(self, status: int, detail: str, reason: str = "invalid") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason


def png_header(data: bytes, role: str) -> tuple[int, int, int]:
    """Width, height and bit depth from a PNG's IHDR chunk, without decoding the pixels."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise RequestRejected(415, f"{role} is not a PNG file (the server accepts PNG only)", "not_png")
    width, height, bit_depth = struct.unpack(">IIB", data[16:25])
    return width, height, bit_depth


def decode_png(data: bytes, role: str, limits: RequestLimits) -> np.ndarray:
    """An 8-bit PNG (gray, RGB, RGBA or palette) → H×W×3 uint8 RGB, or a clear refusal."""
    if len(data) > limits.max_image_bytes:
        raise RequestRejected(
            413, f"{role} is {len(data)} bytes; the limit is {limits.max_image_bytes} bytes", "image_bytes"
        )
    width, height, bit_depth = png_header(data, role)
    if width == 0 or height == 0:
        raise RequestRejected(422, f"{role} is empty ({width}×{height})", "empty_image")
    if width * height > limits.max_pixels:
        raise RequestRejected(
            413,
            f"{role} is {width}×{height} = {width * height} pixels; the limit is {limits.max_pixels} "
            "(split the scene into tiles)",
            "pixels",
        )
    if bit_depth > 8:
        raise RequestRejected(422, f"{role} is a {bit_depth}-bit PNG; send 8-bit RGB", "bit_depth")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8:
        raise RequestRejected(422, f"{role} could not be decoded as an 8-bit PNG", "undecodable")
    if image.ndim == 2:
        rgb = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 3:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 4:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        raise RequestRejected(422, f"{role} has {image.shape[2]} channels; send gray, RGB or RGBA", "channels")
    return np.ascontiguousarray(rgb)


def decode_png_b64(text: str, role: str, limits: RequestLimits) -> np.ndarray:
    """Base64 text of a PNG → RGB array; the encoded length is bounded before anything is decoded."""
    if len(text) > (limits.max_image_bytes + 2) // 3 * 4 + 4:
        size = len(text) * 3 // 4
        raise RequestRejected(
            413, f"{role} is about {size} bytes; the limit is {limits.max_image_bytes} bytes", "image_bytes"
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestRejected(422, f"{role} is not valid base64: {exc}", "base64") from exc
    return decode_png(data, role, limits)


def read_png_under(root: Path | None, relative: str, role: str, limits: RequestLimits) -> np.ndarray:
    """A PNG named by a path below ``root``; paths leading outside it (``..``, absolute, links) are refused."""
    if root is None:
        raise RequestRejected(403, "this server reads no files: start it with --data-root to allow paths", "paths")
    if "\x00" in relative:
        raise RequestRejected(422, f"{role} path {relative!r} contains a NUL byte", "paths")
    base = root.resolve()
    try:
        path = (base / relative).resolve()
    except (OSError, ValueError) as exc:
        raise RequestRejected(422, f"{role} path {relative!r} is not a usable path: {exc}", "paths") from exc
    if not path.is_relative_to(base):
        raise RequestRejected(403, f"{role} path {relative!r} leads outside the server's data root", "paths")
    if not path.is_file():
        raise RequestRejected(404, f"{role} path {relative!r} does not exist below the data root", "paths")
    if path.stat().st_size > limits.max_image_bytes:
        raise RequestRejected(
            413, f"{role} file is {path.stat().st_size} bytes; the limit is {limits.max_image_bytes}", "image_bytes"
        )
    return decode_png(path.read_bytes(), role, limits)


def check_pair(t1: np.ndarray, t2: np.ndarray) -> None:
    if t1.shape != t2.shape:
        raise RequestRejected(
            422,
            f"t1 and t2 differ in size: t1 is {t1.shape[1]}×{t1.shape[0]}, t2 is {t2.shape[1]}×{t2.shape[0]} "
            "(width×height); the dates must be co-registered",
            "pair_size",
        )


def check_chat(request: ChatRequest, limits: RequestLimits) -> None:
    """Refuse a chat request beyond the server's limits (the schema already bounds the question)."""
    if len(request.history) > limits.max_turns:
        raise RequestRejected(422, f"{len(request.history)} earlier turns; the limit is {limits.max_turns}", "turns")
    chars = sum(len(t.question) + len(t.answer) for t in request.history)
    if chars > limits.max_history_chars:
        raise RequestRejected(
            422, f"the earlier turns hold {chars} characters; the limit is {limits.max_history_chars}", "history"
        )
    options = request.options
    if options.max_new_tokens > limits.max_new_tokens:
        raise RequestRejected(
            422, f"max_new_tokens {options.max_new_tokens} exceeds this server's {limits.max_new_tokens}", "tokens"
        )
    if options.num_beams > limits.max_beams:
        raise RequestRejected(422, f"num_beams {options.num_beams} exceeds this server's {limits.max_beams}", "beams")
