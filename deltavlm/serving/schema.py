"""The HTTP contract of the DeltaVLM server (``POST /v1/pairs``, ``POST /v1/chat``).

Server and client import these models from one place so that the two sides cannot drift apart.
Images travel as base64 PNG: lossless, so the server hashes exactly the pixels the client holds and
both agree on the pair id (the content hash of the decoded RGB arrays).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PairUpload(BaseModel):
    """Both dates of a pair as base64-encoded 8-bit RGB PNG files."""

    t1_png_b64: str
    t2_png_b64: str


class PairCreated(BaseModel):
    pair_id: str = Field(description="Content hash of the decoded pair; the key of the feature cache.")
    encoded: bool = Field(description="False when the pair was already cached.")


class ChatTurn(BaseModel):
    question: str
    answer: str


class GenerationOptions(BaseModel):
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
    tokens: int
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage (queue, generate…).")
    model: str = ""
