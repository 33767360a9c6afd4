"""LEVIR-CC-style captions of a scene's changes: five per pair, lower case, naming what, how many and where."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deltavlm import rules
from deltavlm.rules import CELL_NAMES
from deltavlm.synthetic.layout import Building, Road, Scene
from deltavlm.synthetic.palette import LAND_WORDS
from deltavlm.text import NO_CHANGE_CAPTIONS

# --------------------------------------------------------------------------------------------- captions

_NUMBER = {1: "a", 2: "two", 3: "three"}


def _number(n: int, rng: np.random.Generator) -> str:
    return _NUMBER.get(n) or str(rng.choice(["several", "many", "some"]))


def _location(cells: set[str], rng: np.random.Generator) -> str | None:
    """A natural phrase for a set of grid cells, or ``None`` when they are spread over the scene."""
    parts = [CELL_NAMES[c].split("-") for c in cells]
    rows, cols = {p[0] for p in parts}, {p[1] for p in parts}
    if len(cells) == 1:
        ((v, h),) = parts
        if v == h == "center":
            options = ["in the center", "in the middle of the scene"]
        elif v == "center":
            options = [f"on the {h}", f"on the {h} side"]
        elif h == "center":
            options = [f"at the {v}", f"at the {v} of the scene"]
        else:
            options = [f"in the {v} {h}", f"at the {v} {h} corner"]
    elif len(rows) == 1:
        (v,) = rows
        options = ["across the middle"] if v == "center" else [f"at the {v}", f"at the {v} of the scene"]
    elif len(cols) == 1:
        (h,) = cols
        options = ["in the middle"] if h == "center" else [f"on the {h}", f"on the {h} side"]
    else:
        return None
    return str(rng.choice(options))


@dataclass(frozen=True)
class _Group:
    kind: str  # new_building | demolished | new_road
    n: int
    cells: frozenset[str]
    lands: tuple[str, ...]
    by_road: bool
    turning: bool
    branch: bool
    concrete: bool
    big: bool


_TEMPLATES = {
    "new_building": [
        "{num} {noun} {be} built{loc}",
        "{num} {noun} {appear}{loc}",
        "{num} new {noun} {be} constructed{loc}",
        "{num} {noun} {be} built {land}{loc}",
        "{num} {noun} {show} up{loc}",
    ],
    "demolished": [
        "{num} {noun} {be} demolished{loc}",
        "{num} {noun} {disappear}{loc}",
        "{num} {noun} {be} removed{loc}",
        "{num} {noun} {be} torn down{loc}",
        "{num} {noun} {be} replaced by bare land{loc}",
    ],
    "new_road": [
        "{num} {noun} {be} built{loc}",
        "{num} new {noun} {appear}{loc}",
        "{num} {noun} {be} constructed {land}{loc}",
        "{num} {adj}{noun} {appear}{loc}",
    ],
}


def _clause(g: _Group, rng: np.random.Generator, with_location: bool) -> str:
    templates = list(_TEMPLATES[g.kind])
    if g.kind == "new_building" and g.by_road:
        templates += [
            "{num} {noun} {be} built along the road{loc}",
            "{num} {noun} {appear} beside the road{loc}",
        ]
    if g.kind == "new_road" and g.branch:
        templates += [
            "{num} {noun} {be} built to join the old road{loc}",
            "{num} {noun} {branch} off the main road{loc}",
        ]
    one = g.n == 1
    if g.kind == "new_road":
        noun = "road"
        adjs = (
            ["new "] + (["turning ", "curved "] if g.turning else ["straight "]) + (["cement "] if g.concrete else [])
        )
    else:
        nouns = ["building", "house", "villa"] if g.kind == "new_building" else ["building", "house"]
        noun = "building" if g.big else str(rng.choice(nouns))
        adjs = [""]
    loc = _location(set(g.cells), rng) if with_location else None
    words = {
        "num": _number(g.n, rng),
        "noun": noun if one else noun + "s",
        "adj": str(rng.choice(adjs)),
        "be": "is" if one else "are",
        **{verb: verb + "s" if one else verb for verb in ("appear", "show", "disappear")},
        "branch": "branches" if one else "branch",
        "land": str(rng.choice(g.lands)),
        "loc": f" {loc}" if loc else "",
    }
    return str(rng.choice(templates)).format(**words)


def _groups(scene: Scene, rng: np.random.Generator) -> list[_Group]:
    groups = []
    kinds = (
        ("new_building", "building", "new"),
        ("demolished", "building", "demolished"),
        ("new_road", "road", "new"),
    )
    for kind, category, change in kinds:
        members = [(c, m, o) for c, m, o in scene.placed if c.category == category and c.change == change]
        if not members:
            continue
        union = np.any([m for _, m, _ in members], axis=0)
        land = int(np.bincount(scene.cover[union], minlength=4).argmax())
        objs = [o for _, _, o in members]
        # A building is where its centroid is; a road is where it covers enough of a cell to change it.
        cells = rules.changed_cells(union) if category == "road" else [c.cell for c, _, _ in members]
        roads = [o for o in objs if isinstance(o, Road)]
        buildings = [o for o in objs if isinstance(o, Building)]
        groups.append(
            _Group(
                kind=kind,
                n=len(members),
                cells=frozenset(cells),
                lands=LAND_WORDS[land],
                by_road=bool(buildings) and all(b.road is not None for b in buildings),
                turning=any(r.turning for r in roads),
                branch=bool(roads) and all(r.branch for r in roads),
                concrete=bool(roads) and all(r.concrete for r in roads),
                big=any(b.width * b.depth > 1500 for b in buildings),
            )
        )
    return [groups[i] for i in rng.permutation(len(groups))]


def captions_of(scene: Scene, rng: np.random.Generator) -> tuple[str, ...]:
    """Five different captions; the first always names the location, as most LEVIR-CC annotators do."""
    if not scene.placed:
        return NO_CHANGE_CAPTIONS
    groups = _groups(scene, rng)
    out: list[str] = []
    for attempt in range(60):
        order = groups if attempt == 0 else [groups[i] for i in rng.permutation(len(groups))]
        text = " and ".join(_clause(g, rng, attempt == 0 or rng.random() < 0.5) for g in order)
        if text not in out:
            out.append(text)
        if len(out) == 5:
            break
    while len(out) < 5:  # a tiny template space can run dry; repeat rather than invent
        out.append(out[len(out) % len(out)])
    return tuple(out)
