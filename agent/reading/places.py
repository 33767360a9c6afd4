"""Regions named in a question: compass words, sides, corners, halves, rows, columns and cell ids.

Regions are read as on a north-up image: a single compass word names the grid's row or column ("the north" is the
top row, "the west" the left column), a compound one a corner cell ("south-west" is BL), and "half" turns a side
into that half of the image. Regions come back in the order the question names them, so comparisons keep the asked
order. :func:`names_compass` says whether the question placed them with compass words (map directions) rather than
image words (top, left, cell ids): only those are turned to the image's sides when the raster is not north-up
(``tools.orientation``).
"""

from __future__ import annotations

import re

from deltavlm.rules import CELL_IDS

_V = {"top": "T", "middle": "C", "bottom": "B"}
_H = {"left": "L", "center": "C", "right": "R"}

_COMPOUND: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), cell)
    for p, cell in [
        (r"\bnorth[- ]?west\w*|\bnw\b|\bnord[- ]?ouest\b|\bnoroeste\b|\bnordwest\w*|西北|左上", "TL"),
        (
            r"\bnorth[- ]?east\w*|\bne\b(?= (?:corner|part|quadrant|cell|side))|\bnord[- ]?est\b|\bnoreste\b"
            r"|\bnordeste\b|\bnordost\w*|东北|右上",
            "TR",
        ),
        (r"\bsouth[- ]?west\w*|\bsw\b|\bsud[- ]?ouest\b|\bsuroeste\b|\bsudoeste\b|\bsudwest\w*|西南|左下", "BL"),
        (
            r"\bsouth[- ]?east\w*|\bse\b(?= (?:corner|part|quadrant|cell|side))|\bsud[- ]?est\b|\bsureste\b"
            r"|\bsudeste\b|\bsudost\w*|东南|右下",
            "BR",
        ),
    ]
]

_VERTICAL: dict[str, str] = {
    r"north\w*|top|upper|uppermost|haut|nord|norte|arriba|superior\w*|oben|obere\w*|norden|nordlich\w*|cima|北"
    r"|上(?=[部方面边半侧行排])|顶(?=[部端边行排])": "top",
    r"south\w*|bottom|lower|lowermost|bas|sud|abajo|inferior\w*|unten|untere\w*|suden|sudlich\w*|sul|baixo|南"
    r"|下(?=[部方面边半侧行排])|底(?=[部端边行排])": "bottom",
}
_HORIZONTAL: dict[str, str] = {
    r"west\w*|left|leftmost|gauche|ouest|oeste|izquierd\w*|esquerd\w*|links|linke\w*|westlich\w*|西"
    r"|左(?=[部方面边半侧列栏])": "left",
    r"east|eastern|easterly|right|rightmost|droite|l'est|leste|derech\w*|direit\w*|rechts|rechte\w*|osten|ostlich\w*"
    r"|东|右(?=[部方面边半侧列栏])": "right",
}
_CENTRE = (
    r"middle|centre|center|centrale?s?|centro|mitte|mittlere\w*|milieu|zentrum|zentral\w*|meio|medio|中间|中部|中央|中心"
    r"|中(?=[列行栏排])"
)
_HALF = r"half|halves|moitie|mitad|metade|halfte|半"
_ROW = r"row|band|strip|ligne|fila|reihe|zeile|linha"
_COLUMN = r"column|colonne|columna|spalte|coluna"
_ZH_FILLER = r"[边侧部面端]?(?:的|那|这)?一?"
"""What may stand between a Chinese side and its row or column word: 左边的一列, 最上面那一行."""
_ORDINALS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p), place)
    for p, place in (
        (r"first|1st|premiere?|primer[oa]?|erste\w*|primeir[oa]|第一", 0),
        (r"second|2nd|deuxieme|seconde|segund[oa]|zweite\w*|第二", 1),
        (
            r"third|3rd|last|final|troisieme|derniere?|tercer[oa]?|ultim[oa]|dritte\w*|letzte\w*|terceir[oa]|第三|最后",
            2,
        ),
    )
)
"""Ordinals that place a row or column on the 3×3 grid: "the first row" is the top one, "the last column" the right."""
_ORDINAL = "|".join(p.pattern for p, _ in _ORDINALS)


def _token_pattern(lang: str) -> re.Pattern[str]:
    vertical = "|".join(_VERTICAL)
    horizontal = "|".join(_HORIZONTAL)
    if lang == "es":
        vertical += r"|sur"
        horizontal += r"|(?<=el )este|(?<=al )este"
    if lang == "zh":
        return re.compile(
            f"(?P<v>{vertical})|(?P<h>{horizontal})|(?P<c>{_CENTRE})|(?P<half>{_HALF})"
            f"|(?P<ord>(?:{_ORDINAL})(?=一?[行列排栏]))|(?P<row>{_ZH_FILLER}[行排])|(?P<col>{_ZH_FILLER}[列栏])"
        )
    return re.compile(
        rf"\b(?:(?P<v>{vertical})|(?P<h>{horizontal})|(?P<c>{_CENTRE})|(?P<half>{_HALF})|(?P<row>{_ROW})s?"
        rf"|(?P<col>{_COLUMN})s?|(?P<ord>{_ORDINAL}))\b"
    )


_PATTERNS = {lang: _token_pattern(lang) for lang in ("en", "fr", "es", "de", "pt", "zh")}
_COMPILED = {id(table): [(re.compile(p), side) for p, side in table.items()] for table in (_VERTICAL, _HORIZONTAL)}
_CELL_ID = re.compile(r"\b(" + "|".join(CELL_IDS) + r")\b")
_NOT_A_SIDE = re.compile(
    r"\b(?:is (?:that|this|it) right|that's right|right now|right away|all right|left over|what's left"
    r"|is left|are left|top of the|on top of|at the top of my)\b"
)


_COMPASS_WORDS = (
    r"north|south|east|west|nord|sud\b|sudl|suden|norte|\bsul\b|oeste|ouest|l'est|leste|osten|ostlich|noroeste"
    r"|noreste|nordeste|suroeste|sudoeste|sureste|sudeste|\bnw\b|\bsw\b"
    r"|\b(?:ne|se)\b(?= (?:corner|part|quadrant|cell|side))"
    r"|北|南|东|西"
)
_IMAGE_WORDS = re.compile(
    r"\b(?:top|bottom|upper|lower|uppermost|lowermost|left|right|leftmost|rightmost|haut|bas|gauche|droite|arriba"
    r"|abajo|superior\w*|inferior\w*|izquierd\w*|derech\w*|oben|unten|obere\w*|untere\w*|links|rechts|linke\w*"
    r"|rechte\w*|cima|baixo|esquerd\w*|direit\w*)\b|[上下左右](?=[部方面边半侧上下])|左上|右上|左下|右下"
)
_COMPASS = {
    lang: re.compile(_COMPASS_WORDS + (r"|\bsur\b|(?<=el )este|(?<=al )este" if lang == "es" else ""))
    for lang in ("en", "fr", "es", "de", "pt", "zh")
}


def names_compass(folded: str, original: str, lang: str) -> bool:
    """Whether the question places its regions with compass words only (no image side words, no cell ids)."""
    text = _NOT_A_SIDE.sub(" ", folded)
    if _CELL_ID.search(original) or _IMAGE_WORDS.search(text):
        return False
    return bool(_COMPASS.get(lang, _COMPASS["en"]).search(text))


def _side_of(match: re.Match[str], table: dict[str, str]) -> str:
    """The side a matched word names; a word with a look-ahead (下 in 下部) is matched again in place, so that the
    look-ahead sees what follows it."""
    compiled = _COMPILED[id(table)]
    for pattern, side in compiled:
        if pattern.fullmatch(match.group(0)):
            return side
    for pattern, side in compiled:
        found = pattern.match(match.string, match.start())
        if found and found.end() == match.end():
            return side
    return "top" if table is _VERTICAL else "left"  # es "sur" / "el este"


def regions_in(folded: str, original: str, lang: str) -> list[str]:
    """Region keys the text names, in order of appearance (``tools.regions.REGION_KEYS`` or ``cells:…``)."""
    text = _NOT_A_SIDE.sub(" ", folded)
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for pattern, cell in _COMPOUND:
        for m in pattern.finditer(text):
            found.append((m.start(), cell))
            taken.append(m.span())
    for m in _CELL_ID.finditer(original):
        found.append((m.start(), m.group(1)))
    tokens = []
    for m in _PATTERNS[lang].finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        kind = m.lastgroup
        value = ""
        if kind == "v":
            value = _side_of(m, _VERTICAL) if m.group(0) != "sur" else "bottom"
        elif kind == "h":
            value = "right" if m.group(0) == "este" else _side_of(m, _HORIZONTAL)
        tokens.append((m.start(), m.end(), kind, value))
    gap = 1 if lang == "zh" else 12
    i = 0
    while i < len(tokens):
        start, end, kind, value = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1][0] - end <= gap else None
        after = tokens[i + 2] if nxt and i + 2 < len(tokens) and tokens[i + 2][0] - nxt[1] <= gap else None
        if kind == "ord" and nxt and nxt[2] in ("row", "col"):  # "the first row", "la dernière colonne", 第一行
            place = next(p for pattern, p in _ORDINALS if pattern.fullmatch(text[start:end]))
            sides = ("top", "middle", "bottom") if nxt[2] == "row" else ("left", "center", "right")
            found.append((start, f"{nxt[2]}:{sides[place]}"))
            i += 2
            continue
        if kind in ("row", "col") and nxt and nxt[2] == "c":  # "la colonne du milieu", "a linha do meio"
            found.append((start, "row:middle" if kind == "row" else "col:center"))
            i += 2
            continue
        if kind == "c" and nxt and after and {nxt[2], after[2]} == {"v", "h"}:
            found.append((start, "CC"))
            i += 1
            continue
        if nxt and {kind, nxt[2]} in ({"v", "h"}, {"v", "c"}, {"h", "c"}):
            vertical = value if kind == "v" else (nxt[3] if nxt[2] == "v" else "middle")
            horizontal = value if kind == "h" else (nxt[3] if nxt[2] == "h" else "center")
            found.append((start, _V[vertical] + _H[horizontal]))
            i += 2
            continue
        if kind in ("v", "h") and nxt and nxt[2] == "half":
            found.append((start, f"half:{value}"))
            i += 2
            continue
        if kind == "half" and nxt and nxt[2] in ("v", "h"):
            found.append((start, f"half:{nxt[3]}"))
            i += 2
            continue
        if kind in ("v", "c") and nxt and nxt[2] == "row":
            found.append((start, f"row:{value or 'middle'}"))
            i += 2
            continue
        if kind in ("h", "c") and nxt and nxt[2] == "col":
            found.append((start, f"col:{value or 'center'}"))
            i += 2
            continue
        if kind == "v":
            found.append((start, f"row:{value}"))
        elif kind == "h":
            found.append((start, f"col:{value}"))
        elif kind == "c" and not (nxt and nxt[2] in ("row", "col")):
            found.append((start, "CC"))
        i += 1
    if any(t[2] == "half" for t in tokens):  # "which half changed more, the top or the bottom?"
        found = [
            (
                pos,
                "half:" + key.split(":")[1]
                if key.startswith(("row:", "col:")) and key.split(":")[1] in ("top", "bottom", "left", "right")
                else key,
            )
            for pos, key in found
        ]
    ordered: list[str] = []
    for _, key in sorted(found):
        if key not in ordered:
            ordered.append(key)
    return ordered
