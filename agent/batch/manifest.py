"""``manifest.json``: the questions, a digest of each catalog item and the settings of a run, so a rerun with
different ones is refused and the difference named."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.batch.catalog import FORMAT, Catalog
from agent.batch.outputs import MANIFEST
from agent.batch.pair_work import BatchConfig, compact_json
from tools.raster import InputError

# ------------------------------------------------------------------------------------------------ manifest


def _settings_record(config: BatchConfig) -> dict[str, Any]:
    """The settings that decide the answers (no secrets, no output paths)."""
    agent = config.agent.model_dump(mode="json", exclude={"artefact_dir", "checkpoint_db"})
    agent["model"].pop("token", None)
    return {"agent": agent, "mask_kind": config.mask_kind, "mask_category": config.mask_category}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat |= _flatten(inner, f"{prefix}{key}.")
        return flat
    return {prefix.rstrip("."): value}


def build_manifest(catalog: Catalog, questions_path: Path, config: BatchConfig) -> dict[str, Any]:
    items = [[item.key, item.digest(catalog.folder)] for item in catalog.items]
    return {
        "format": FORMAT,
        "catalog": {
            "path": str(catalog.path),
            "kind": catalog.kind,
            "root": str(catalog.root),
            "items": items,
            "sha256": hashlib.sha256(compact_json(items).encode()).hexdigest(),
        },
        "questions": {
            "path": str(Path(questions_path).resolve()),
            "items": config.questions,
            "sha256": hashlib.sha256(compact_json(config.questions).encode()).hexdigest(),
        },
        "settings": _settings_record(config),
    }


def _names(keys: Iterable[str], limit: int = 3) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def compare_manifest(old: dict[str, Any], new: dict[str, Any], out: Path) -> None:
    """Refuse to mix two different jobs in one folder; name what changed."""
    if old.get("format") != FORMAT:
        raise InputError(f"{out / MANIFEST} is not a {FORMAT} manifest; use --force or another --out")
    problems = []
    if old["catalog"]["sha256"] != new["catalog"]["sha256"]:
        before = dict(map(tuple, old["catalog"]["items"]))
        after = dict(map(tuple, new["catalog"]["items"]))
        added = [k for k in after if k not in before]
        removed = [k for k in before if k not in after]
        changed = [k for k in after if k in before and before[k] != after[k]]
        details = []
        if added:
            details.append(f"{len(added)} pair(s) added ({_names(added)})")
        if removed:
            details.append(f"{len(removed)} removed ({_names(removed)})")
        if changed:
            details.append(f"{len(changed)} with other paths ({_names(changed)})")
        if not details:
            details.append("the same pairs in another order")
        problems.append(f"the catalog {new['catalog']['path']} changed: {'; '.join(details)}")
    if old["questions"]["sha256"] != new["questions"]["sha256"]:
        before, after = old["questions"]["items"], new["questions"]["items"]
        diffs = [
            f"question {i + 1} was {before[i]!r}, now {after[i]!r}"
            for i in range(min(len(before), len(after)))
            if before[i] != after[i]
        ]
        if len(before) != len(after):
            diffs.append(f"{len(before)} question(s) before, {len(after)} now")
        problems.append(f"the questions in {new['questions']['path']} changed: {'; '.join(diffs[:3])}")
    old_settings, new_settings = _flatten(old["settings"]), _flatten(new["settings"])
    moved = [
        f"{k}: {old_settings.get(k)!r} → {new_settings.get(k)!r}"
        for k in sorted(set(old_settings) | set(new_settings))
        if old_settings.get(k) != new_settings.get(k)
    ]
    if moved:
        problems.append(f"the settings changed ({'; '.join(moved[:4])})")
    if problems:
        raise InputError(
            f"{out} holds a run of a different job: {'. '.join(problems)}. Rerun with --force to start over, "
            "or choose another --out"
        )
