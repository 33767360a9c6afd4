"""The phrasing set: questions with their expected requests, and answers checked against truth from the label.

Truth is computed here from the label mask with numpy and the ChangeChat rules (``deltavlm.rules``), never from the
agent's own answer code: region boxes, object centroids, shares and areas are recomputed, and the first sentence of
the answer must state them (yes/no in the question's polarity, the number, the cell, the unit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.answering.catalog import message
from agent.answering.numbers import decimal, integer, percent
from deltavlm.rules import CELL_IDS, cell_is_changed, change_mask, find_objects, grid_bounds
from tools.areas import pixel_area
from tools.masks import load_change_mask
from tools.pairs import load_pair

DATA = Path(__file__).parent / "data"
PAIRS: dict[str, tuple[str, str, str, str | None]] = {
    **{
        f"L{name.split('_')[1]}": (
            f"levircd/A/{name}.png",
            f"levircd/B/{name}.png",
            f"levircd/label/{name}.png",
            "building",
        )
        for name in ("train_36_0512_0512", "train_386_0512_0768", "train_412_0512_0768", "val_27_0000_0256")
    },
    **{
        f"D{n[0]}": (f"dsifn/A/{n}.png", f"dsifn/B/{n}.png", f"dsifn/label/{n}.png", None)
        for n in ("0_2", "1_1", "2_4", "3_4", "4_4")
    },
    "PISA": ("oscd/pisa/t1.tif", "oscd/pisa/t2.tif", "oscd/pisa/label.tif", None),
    "BEIRUT": ("oscd/beirut/t1.tif", "oscd/beirut/t2.tif", "oscd/beirut/label.tif", None),
}
DEFAULTS: dict[str, Any] = {
    "categories": [],
    "direction": "any",
    "region": "image",
    "compared": [],
    "rank": None,
    "polarity": "positive",
    "unit": None,
    "language": "en",
}
_KEYS = {
    "ask": "ask",
    "cat": "categories",
    "dir": "direction",
    "region": "region",
    "cmp": "compared",
    "rank": "rank",
    "pol": "polarity",
    "unit": "unit",
    "lang": "language",
    "other": "other_subject",
}
YES = {"en": "Yes", "fr": "Oui", "es": "Sí", "de": "Ja", "pt": "Sim", "zh": "是的"}
NO = {"en": "No", "fr": "Non", "es": "No", "de": "Nein", "pt": "Não", "zh": "否"}
CANNOT = ("can't tell", "ne peux pas distinguer", "No puedo distinguir", "kann", "Não consigo", "无法")
DECLINE = {
    "off_topic": ("I can only help", "Je ne peux répondre", "Solo puedo", "Ich kann nur", "Só posso", "我只能"),
    "hostile": ("I won't do that", "Je ne ferai pas", "No haré", "Das mache ich nicht", "Não vou", "我不会"),
    "unsupported_language": ("I understand these languages",),
    "open": (
        "I can't answer that without DeltaVLM",
        "sans DeltaVLM",
        "sin DeltaVLM",
        "ohne DeltaVLM",
        "sem o DeltaVLM",
        "没有配置DeltaVLM",
    ),
}


@dataclass
class Item:
    kind: str
    pair: str
    question: str
    expected: dict[str, Any]
    thread: int
    line: int


def load_items(path: Path) -> list[Item]:
    items: list[Item] = []
    thread = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, pair, question, spec = (part.strip() for part in line.split(" | "))
        if pair == "+":
            pair = items[-1].pair
        else:
            thread += 1
        expected = {**DEFAULTS, "other_subject": None}
        for field in spec.split():
            key, value = field.split("=", 1)
            name = _KEYS[key]
            if name in ("categories", "compared"):
                expected[name] = value.split(",")
            elif name == "polarity":
                expected[name] = "negative" if value == "neg" else "positive"
            else:
                expected[name] = value
        expected["categories"] = sorted(expected["categories"])
        items.append(Item(kind, pair, question, expected, thread, number))
    return items


def request_matches(expected: dict[str, Any], core: dict[str, Any], other: str | None) -> list[str]:
    """The fields the reader got wrong (empty when the request was read exactly)."""
    wrong = [k for k in DEFAULTS if k in core and core[k] != expected[k]]
    if core["ask"] != expected["ask"]:
        wrong.insert(0, "ask")
    if (expected.get("other_subject") or None) != other:
        wrong.append("other_subject")
    return wrong


class Truth:
    """What the label says about every region a question can name."""

    def __init__(self, shared: Path, pair_key: str) -> None:
        t1, t2, label, category = PAIRS[pair_key]
        self.paths = (shared / t1, shared / t2, shared / label)
        self.category = category
        mask = load_change_mask(self.paths[2], kind="binary", binary_category=category)
        self.any = change_mask(mask.class_mask)
        self.categorical = category is not None
        h, w = self.any.shape
        cells = grid_bounds(h, w)
        self.boxes = {"image": (0, h, 0, w), **cells}
        rows = {"top": "TL", "middle": "CL", "bottom": "BL"}
        cols = {"left": "TL", "center": "TC", "right": "TR"}
        for name, cell in rows.items():
            self.boxes[f"row:{name}"] = (cells[cell][0], cells[cell][1], 0, w)
        for name, cell in cols.items():
            self.boxes[f"col:{name}"] = (0, h, cells[cell][2], cells[cell][3])
        self.boxes.update(
            {
                "half:top": (0, h // 2, 0, w),
                "half:bottom": (h // 2, h, 0, w),
                "half:left": (0, h, 0, w // 2),
                "half:right": (0, h, w // 2, w),
            }
        )
        self.centroids = np.array([o.centroid for o in find_objects(self.any, "change")] or np.zeros((0, 2)))
        georef = load_pair(self.paths[0], self.paths[1]).georef if self.paths[0].suffix == ".tif" else None
        self.row_m2 = pixel_area(georef, h, None)[1]

    def _cells(self, region: str) -> list[str]:
        if region.startswith("cells:"):
            return region[6:].split("+")
        return [region]

    def share(self, region: str, category: str | None = None) -> float:
        mask = self.any if category is None or category == self.category else np.zeros_like(self.any)
        changed = total = 0
        for part in self._cells(region):
            r0, r1, c0, c1 = self.boxes[part]
            changed += int(np.count_nonzero(mask[r0:r1, c0:c1]))
            total += (r1 - r0) * (c1 - c0)
        return changed / total

    def changed_px(self, region: str) -> int:
        return sum(
            int(np.count_nonzero(self.any[r0:r1, c0:c1])) for r0, r1, c0, c1 in map(self.boxes.get, self._cells(region))
        )

    def area_m2(self, region: str) -> float | None:
        if self.row_m2 is None:
            return None
        r0, r1, c0, c1 = self.boxes[region]
        return float(np.count_nonzero(self.any[r0:r1, c0:c1], axis=1) @ self.row_m2[r0:r1])

    def region_changed(self, region: str) -> bool:
        changed, total = 0, 0
        for part in self._cells(region):
            r0, r1, c0, c1 = self.boxes[part]
            changed += int(np.count_nonzero(self.any[r0:r1, c0:c1]))
            total += (r1 - r0) * (c1 - c0)
        return cell_is_changed(changed, total, 0.05)

    def objects(self, region: str, category: str | None = None) -> int:
        if category is not None and category != self.category:
            return 0
        n = 0
        for part in self._cells(region):
            r0, r1, c0, c1 = self.boxes[part]
            xy = self.centroids
            n += int(np.count_nonzero((xy[:, 1] >= r0) & (xy[:, 1] < r1) & (xy[:, 0] >= c0) & (xy[:, 0] < c1)))
        return n

    def cells_of(self, region: str) -> list[str]:
        if region == "image":
            return list(CELL_IDS)
        if region in CELL_IDS or region.startswith("cells:"):
            return self._cells(region)
        r0, r1, c0, c1 = self.boxes[region]
        out = []
        for cell in CELL_IDS:
            b = self.boxes[cell]
            cy, cx = (b[0] + b[1]) / 2, (b[2] + b[3]) / 2
            if r0 <= cy < r1 and c0 <= cx < c1:
                out.append(cell)
        return out


def _num(n: int) -> re.Pattern[str]:
    return re.compile(rf"(?<![\d.,]){n}(?![\d.,]*\d)")


def check_answer(item: Item, truth: Truth, answer: Any) -> str | None:
    """None when the first sentence states the truth for the expected request, else what is wrong."""
    e = item.expected
    first = answer.first_sentence or answer.text
    lang = e["language"]
    ask = e["ask"]
    cats = e["categories"]
    if ask in DECLINE:
        return (
            None if first.startswith(DECLINE[ask]) or any(m in first for m in DECLINE[ask]) else f"no decline: {first}"
        )
    if ask in ("explain", "confirm"):
        openings = [
            message(key, lang).split("{")[0]
            for key in ("previous_explain", "previous_confirm_yes", "previous_confirm_no", "previous_none")
        ]
        return None if first.startswith(tuple(openings)) else f"not about the last answer: {first}"
    if ask == "export":  # the first sentence names the format written ("a shapefile or GeoJSON": the Shapefile)
        fmt = answer.evidence.route.export_format
        named = {"geojson": "GeoJSON", "shp": "Shapefile", "gpkg": "GeoPackage"}[fmt]
        return None if {"geojson", fmt} <= set(answer.artefacts) and named in first else f"no export: {first}"
    if ask == "show":
        return None if "overlay" in answer.artefacts else "no overlay"
    if e.get("other_subject"):
        return None if "can't tell" in first or "ne peux pas" in first else f"claims other subject: {first}"
    if cats and not truth.categorical and ask in ("changed", "count", "where", "how_much", "compare"):
        return None if any(m in first for m in CANNOT) else f"category claim from a category-free mask: {first}"
    region = e["region"]
    if ask == "changed":
        if cats:
            n = sum(truth.objects(region, c) for c in cats)
            if n and e["direction"] != "any":
                return None if _num(n).search(first) else f"expected {n} in: {first}"
            value = n > 0
        else:
            value = bool(truth.changed_px("image")) if region == "image" else truth.region_changed(region)
        word = (YES if value == (e["polarity"] == "positive") else NO)[lang]
        return None if first.startswith(word) else f"expected {word!r}: {first}"
    if ask == "count":
        counts = [truth.objects(region, c) for c in cats] if cats else [truth.objects(region)]
        missing = [n for n in counts if not _num(n).search(first)]
        return None if not missing else f"expected {counts}: {first}"
    if ask == "how_much":
        category = cats[0] if len(cats) == 1 else None
        share = truth.share(region, category)
        if e["unit"] == "px":
            return (
                None
                if integer(truth.changed_px(region), lang) in first
                else f"expected {integer(truth.changed_px(region), lang)} px: {first}"
            )
        if e["unit"] in ("m2", "ha", "km2"):
            area = truth.area_m2(region)
            if area is None:
                return (
                    None
                    if percent(share, lang) in first and ("pixel" in first or "像素" in first)
                    else f"expected unknown size: {first}"
                )
            value = area / {"m2": 1, "ha": 1e4, "km2": 1e6}[e["unit"]]
            shown = decimal(value, lang, {"m2": 0, "ha": 2, "km2": 3}[e["unit"]])
            return None if shown in first else f"expected {shown} {e['unit']}: {first}"
        return None if percent(share, lang) in first else f"expected {percent(share, lang)}: {first}"
    if ask == "where":
        cells = truth.cells_of(region)
        category = cats[0] if len(cats) == 1 else None
        shares = {c: truth.share(c, category) for c in cells}
        named = re.findall(r"\((TL|TC|TR|CL|CC|CR|BL|BC|BR)\)|（(TL|TC|TR|CL|CC|CR|BL|BC|BR)）", first)
        named = [a or b for a, b in named]
        if e["rank"]:
            pick = max(cells, key=lambda c: shares[c]) if e["rank"] == "most" else min(cells, key=lambda c: shares[c])
            if e["rank"] == "most" and shares[pick] == 0:
                return None if not named else f"named a cell with no change: {first}"
            return None if named and shares[named[0]] == shares[pick] else f"expected {pick}: {first}"
        size = {c: (truth.boxes[c][1] - truth.boxes[c][0]) * (truth.boxes[c][3] - truth.boxes[c][2]) for c in cells}
        expected = [c for c in cells if cell_is_changed(round(shares[c] * size[c]), size[c], 0.05)]
        if expected:
            return None if sorted(named) == sorted(expected) else f"expected {expected}: {first}"
        return None if len(named) <= 1 else f"expected no changed cell: {first}"
    if ask == "compare":
        if e["compared"]:
            a, b = e["compared"]
            category = cats[0] if len(cats) == 1 else None
            if e["unit"] in ("m2", "ha", "km2") and truth.area_m2(a) is not None:
                va, vb = truth.area_m2(a) / 1e4, truth.area_m2(b) / 1e4
                shown = [decimal(max(va, vb), lang, 2), decimal(min(va, vb), lang, 2)]
            else:
                va, vb = truth.share(a, category), truth.share(b, category)
                shown = [percent(max(va, vb), lang), percent(min(va, vb), lang)]
            if abs(va - vb) < 1e-12:
                return None if all(s in first for s in shown) else f"expected {shown}: {first}"
            positions = [first.find(s) for s in shown]
            return (
                None if -1 not in positions and positions[0] <= positions[1] else f"expected {shown} in order: {first}"
            )
        counts = {c: truth.objects(region, c) for c in cats}
        big = max(counts, key=lambda c: counts[c])
        return None if _num(counts[big]).search(first) else f"expected {counts}: {first}"
    if ask == "describe":
        share = truth.share(region)
        if share == 0:
            return (
                None
                if re.search(r"Nothing|did not change|Rien|Nada|nichts|没有", first)
                else f"expected no change: {first}"
            )
        return None if percent(share, lang) in first else f"expected {percent(share, lang)}: {first}"
    return f"unchecked ask {ask}"
