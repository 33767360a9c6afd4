"""The HTTP contract of the DeltaVLM server (``POST /v1/pairs``, ``POST /v1/chat``, ``GET /health``).

Server and client import these models from one place so that the two sides cannot drift apart.
Images travel as base64 PNG: lossless, so the server hashes exactly the pixels the client holds and
both agree on the pair id (the content hash of the decoded RGB arrays, :func:`deltavlm.serving.hashing.pair_hash`).

Every field added after the first version has a default, so an older client still speaks to a newer server.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator


class PairUpload(BaseModel):
    """A pair, given one of three ways: both dates as base64 PNG, the id of a pair the server holds, or two
    PNG paths below the server's ``--data-root`` (off unless the operator sets one)."""

    t1_png_b64: str | None = Field(None, description="Before image: base64 of an 8-bit PNG (gray, RGB or RGBA).")
    t2_png_b64: str | None = Field(None, description="After image, same size as t1.")
    pair_id: str | None = Field(
        None, max_length=128, description="Reference a pair already uploaded; 404 when the server no longer holds it."
    )
    t1_path: str | None = Field(None, max_length=1024, description="PNG path relative to the server's data root.")
    t2_path: str | None = Field(None, max_length=1024, description="PNG path relative to the server's data root.")

    @model_validator(mode="after")
    def _one_way(self) -> PairUpload:
        images = (self.t1_png_b64, self.t2_png_b64)
        paths = (self.t1_path, self.t2_path)
        ways = [any(v is not None for v in group) for group in (images, (self.pair_id,), paths)]
        if sum(ways) != 1:
            raise ValueError("give exactly one of: t1_png_b64 + t2_png_b64, pair_id, or t1_path + t2_path")
        if ways[0] and None in images:
            raise ValueError("both t1_png_b64 and t2_png_b64 are needed")
        if ways[2] and None in paths:
            raise ValueError("both t1_path and t2_path are needed")
        return self

    @property
    def mode(self) -> Literal["images", "reference", "paths"]:
        if self.t1_png_b64 is not None:
            return "images"
        return "reference" if self.pair_id is not None else "paths"


class PairCreated(BaseModel):
    pair_id: str = Field(description="Content hash of the decoded pair; the key of the feature cache.")
    encoded: bool = Field(description="False when the pair was already cached.")
    width: int | None = Field(None, description="Pixels per row of each date.")
    height: int | None = Field(None, description="Rows of each date.")


class ChatTurn(BaseModel):
    question: str
    answer: str


class GenerationOptions(BaseModel):
    """Decoding settings a caller may choose; requests with equal options share one batched ``generate``."""

    max_new_tokens: int = Field(64, ge=1, le=512)
    num_beams: int = Field(1, ge=1, le=8)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0.0, le=5.0)
    repetition_penalty: float = Field(1.5, ge=1.0, le=5.0)


class ChatRequest(BaseModel):
    pair_id: str
    history: list[ChatTurn] = Field(default_factory=list, description="Earlier turns, oldest first.")
    question: str = Field(min_length=1, max_length=2000)
    options: GenerationOptions = Field(default_factory=GenerationOptions)


class ChatResponse(BaseModel):
    text: str
    tokens: int = Field(description="Tokens generated for this answer (EOS and padding excluded).")
    timings: dict[str, float] = Field(
        default_factory=dict, description="Seconds per stage: queue_s, generate_s (the whole batch), total_s."
    )
    model: str = ""
    batch_size: int = Field(1, description="Rows decoded together with this one.")
    pair_encodes: int | None = Field(
        None, description="Vision-encoder passes this server has run for the pair so far (1 = encoded once)."
    )


class RequestLimits(BaseModel):
    """What one request may ask of the server; anything beyond is refused with a 4xx naming the limit."""

    max_image_bytes: int = Field(8 * 2**20, ge=1024, description="One encoded PNG, after base64 decoding.")
    max_pixels: int = Field(2048 * 2048, ge=1, description="Width × height of one date.")
    max_turns: int = Field(16, ge=0, description="Earlier turns in a chat request.")
    max_history_chars: int = Field(16_000, ge=0, description="Characters of all earlier turns together.")
    max_new_tokens: int = Field(256, ge=1, le=512)
    max_beams: int = Field(5, ge=1, le=8)

    @property
    def max_body_bytes(self) -> int:
        """Two base64 images (4 bytes per 3) plus room for the JSON around them."""
        return 2 * (-(-self.max_image_bytes // 3) * 4) + 2**20


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "failed"]
    ready: bool = Field(description="True once the model is loaded and requests are answered.")
    model: str = Field(description="Config name of the loaded model.")
    device: str = ""
    dtype: str = Field("", description="Weights of the LLM; autocast dtype in brackets when it differs.")
    engine: str = Field("", description="What serves HTTP and batching: uvicorn or ray-serve.")
    detail: str | None = Field(None, description="Why the model is not ready, when it is not.")
    max_batch_size: int = 1
    max_wait_ms: float = 0.0
    pairs: int = Field(0, description="Pairs held (pixels) for chat by id.")
    feature_cache: dict[str, int] = Field(default_factory=dict)
    limits: RequestLimits = Field(default_factory=RequestLimits)


class ErrorResponse(BaseModel):
    detail: str | list = Field(description="What was wrong, in words (or pydantic's list for malformed fields).")
