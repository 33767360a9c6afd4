"""DeltaVLM's modules: Bi-VE, CSRM, Q-former glue, LLM, mask head, batches and generation."""

from deltavlm.modeling.batch import DeltaVLMBatch, TextBatch, TrainingExample, collate_text, make_batch
from deltavlm.modeling.generation import GenerationOptions
from deltavlm.modeling.model import DeltaVLM, DeltaVLMOutput, PairFeatures, resolve_device

__all__ = [
    "DeltaVLM",
    "DeltaVLMBatch",
    "DeltaVLMOutput",
    "GenerationOptions",
    "PairFeatures",
    "TextBatch",
    "TrainingExample",
    "collate_text",
    "make_batch",
    "resolve_device",
]
