"""Which mask provider reads a pair: one recipe for ``Agent.ask``, batch workers and anyone else.

The user's mask file when there is one, else the provider the settings name (the classical detector by default),
always on the pair's valid data. A batch worker that makes the mask itself builds it here too, so the agent's pair
store recognises the worker's mask (``graphs.pair_store.PairKey``) and does not make it again.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from agent.settings import AgentSettings
from tools.classical_mask import ClassicalMaskProvider, ClassicalSettings
from tools.masks import MaskKind, MaskProvider, UserMaskProvider, on_valid_data
from tools.provider_spec import build_provider


def default_provider(settings: AgentSettings) -> MaskProvider:
    """The provider ``settings.mask_provider`` names (built once per spec and classical settings)."""
    return _built(settings.mask_provider, settings.classical.model_dump_json())


@lru_cache(maxsize=8)
def _built(spec: str, classical: str) -> MaskProvider:
    if spec == "classical":
        return ClassicalMaskProvider(ClassicalSettings.model_validate_json(classical))
    return build_provider(spec)


def mask_provider(
    settings: AgentSettings,
    mask_file: str | Path | None = None,
    kind: MaskKind = "auto",
    category: str | None = None,
    default: MaskProvider | None = None,
) -> MaskProvider:
    """The user's mask file, else ``default`` (the agent's own), else the settings' provider; on valid data."""
    if mask_file is not None:
        return on_valid_data(UserMaskProvider(mask_file, kind=kind, binary_category=category))
    return on_valid_data(default or default_provider(settings))
