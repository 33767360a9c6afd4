"""The templated wording of answers in the six languages the reader understands.

Only first sentences and fixed replies are templated; the evidence that follows stays in English and is introduced
as such. Every template takes the same named slots in every language, so the composer never branches on language.
"""

from __future__ import annotations

import re

from deltavlm.rules import CELL_IDS, CELL_NAMES

T: dict[str, dict[str, str]] = {
    "yes": {"en": "Yes", "fr": "Oui", "es": "Sí", "de": "Ja", "pt": "Sim", "zh": "是的"},
    "no": {"en": "No", "fr": "Non", "es": "No", "de": "Nein", "pt": "Não", "zh": "否"},
    "probably": {
        "en": "Probably",
        "fr": "Probablement",
        "es": "Probablemente",
        "de": "Wahrscheinlich",
        "pt": "Provavelmente",
        "zh": "可能",
    },
    "and": {"en": "and", "fr": "et", "es": "y", "de": "und", "pt": "e", "zh": "和"},
    "details": {
        "en": "",
        "fr": "Détails (en anglais) :",
        "es": "Detalles (en inglés):",
        "de": "Details (auf Englisch):",
        "pt": "Detalhes (em inglês):",
        "zh": "详情（英文）：",
    },
    "region_changed": {
        "en": "{region} changed ({pct} of its pixels)",
        "fr": "{region} a changé ({pct} de ses pixels)",
        "es": "{region} cambió ({pct} de sus píxeles)",
        "de": "{region} hat sich verändert ({pct} der Pixel)",
        "pt": "{region} mudou ({pct} dos pixels)",
        "zh": "{region}有变化（{pct}的像素）",
    },
    "region_unchanged": {
        "en": "{region} did not change (no changed pixel)",
        "fr": "{region} n'a pas changé (aucun pixel modifié)",
        "es": "{region} no cambió (ningún píxel cambió)",
        "de": "{region} hat sich nicht verändert (kein veränderter Pixel)",
        "pt": "{region} não mudou (nenhum pixel mudou)",
        "zh": "{region}没有变化（没有像素变化）",
    },
    "region_below_rule": {
        "en": "{region} did not change by the grid rule: only {pct} of it changed, not more than {thr}",
        "fr": "{region} n'a pas changé selon la règle de la grille : seulement {pct}, pas plus de {thr}",
        "es": "{region} no cambió según la regla de la cuadrícula: solo el {pct}, no más del {thr}",
        "de": "{region} hat sich nach der Rasterregel nicht verändert: nur {pct}, nicht mehr als {thr}",
        "pt": "{region} não mudou pela regra da grelha: só {pct}, não mais de {thr}",
        "zh": "按网格规则{region}没有变化：只有{pct}，未超过{thr}",
    },
    "category_changed": {
        "en": "{count} changed in {region}",
        "fr": "{count} ont changé dans {region}",
        "es": "{count} cambiaron en {region}",
        "de": "in {region} haben sich {count} verändert",
        "pt": "{count} mudaram em {region}",
        "zh": "{region}中有{count}发生变化",
    },
    "category_unchanged": {
        "en": "no {noun} changed in {region}",
        "fr": "aucun {noun} n'a changé dans {region}",
        "es": "ningún {noun} cambió en {region}",
        "de": "in {region} hat sich kein {noun} verändert",
        "pt": "nenhum {noun} mudou em {region}",
        "zh": "{region}中没有{noun}发生变化",
    },
    "no_categories": {
        "en": "I can't tell {nouns} apart from other change: {mask} has no categories",
        "fr": "Je ne peux pas distinguer les {nouns} des autres changements : {mask} n'a pas de catégories",
        "es": "No puedo distinguir {nouns} de otros cambios: {mask} no tiene categorías",
        "de": "Ich kann {nouns} nicht von anderen Veränderungen unterscheiden: {mask} hat keine Kategorien",
        "pt": "Não consigo distinguir {nouns} de outras mudanças: {mask} não tem categorias",
        "zh": "我无法把{nouns}与其他变化区分开：{mask}没有类别",
    },
    "other_subject": {
        "en": "I can't tell {subject} changes apart from others: the masks know only roads and buildings",
        "fr": "Je ne peux pas isoler les changements de {subject} : les masques ne connaissent que routes et bâtiments",
        "es": "No puedo separar los cambios de {subject}: las máscaras solo conocen carreteras y edificios",
        "de": "Ich kann Veränderungen von {subject} nicht trennen: die Masken kennen nur Straßen und Gebäude",
        "pt": "Não consigo separar as mudanças de {subject}: as máscaras só conhecem estradas e edifícios",
        "zh": "我无法单独识别{subject}的变化：掩膜只区分道路和建筑",
    },
    "count": {
        "en": "I count {n} changed {noun} in {region}",
        "fr": "Je compte {n} {noun} qui ont changé dans {region}",
        "es": "Cuento {n} {noun} que cambiaron en {region}",
        "de": "Ich zähle {n} {noun} mit Veränderung in {region}",
        "pt": "Conto {n} {noun} que mudaram em {region}",
        "zh": "{region}中有{n}{noun}发生变化",
    },
    "where": {
        "en": "{what} {verb} in {cells}",
        "fr": "{what} : {cells}",
        "es": "{what}: {cells}",
        "de": "{what}: {cells}",
        "pt": "{what}: {cells}",
        "zh": "{what}：{cells}",
    },
    "where_none": {
        "en": "No cell of {region} changed by the grid rule (more than {thr} of a cell); the most changed is {top} "
        "with {pct}",
        "fr": "Aucune cellule de {region} n'a changé selon la règle de la grille (plus de {thr}) ; la plus touchée "
        "est {top} avec {pct}",
        "es": "Ninguna celda de {region} cambió según la regla (más del {thr}); la más cambiada es {top} con {pct}",
        "de": "Keine Zelle in {region} hat sich nach der Rasterregel verändert (mehr als {thr}); am stärksten {top} "
        "mit {pct}",
        "pt": "Nenhuma célula de {region} mudou pela regra da grelha (mais de {thr}); a mais alterada é {top} "
        "com {pct}",
        "zh": "按网格规则（超过{thr}）{region}中没有格子变化；变化最多的是{top}，{pct}",
    },
    "where_nothing": {
        "en": "Nothing changed in {region}, so no cell changed",
        "fr": "Rien n'a changé dans {region}, donc aucune cellule",
        "es": "Nada cambió en {region}, así que ninguna celda",
        "de": "In {region} hat sich nichts verändert, also keine Zelle",
        "pt": "Nada mudou em {region}, portanto nenhuma célula",
        "zh": "{region}没有任何变化，因此没有格子变化",
    },
    "rank_most": {
        "en": "{cell} has the most change: {pct} of it changed",
        "fr": "{cell} a le plus changé : {pct}",
        "es": "{cell} es la que más cambió: {pct}",
        "de": "{cell} hat sich am stärksten verändert: {pct}",
        "pt": "{cell} é a que mais mudou: {pct}",
        "zh": "{cell}变化最多：{pct}",
    },
    "rank_least": {
        "en": "{cell} has the least change: {pct} of it changed",
        "fr": "{cell} a le moins changé : {pct}",
        "es": "{cell} es la que menos cambió: {pct}",
        "de": "{cell} hat sich am wenigsten verändert: {pct}",
        "pt": "{cell} é a que menos mudou: {pct}",
        "zh": "{cell}变化最少：{pct}",
    },
    "share": {
        "en": "{pct} of {region} changed ({px} px)",
        "fr": "{pct} de {region} a changé ({px} px)",
        "es": "cambió el {pct} de {region} ({px} px)",
        "de": "{pct} von {region} haben sich verändert ({px} px)",
        "pt": "{pct} de {region} mudou ({px} px)",
        "zh": "{region}有{pct}发生变化（{px}像素）",
    },
    "pixels": {
        "en": "{px} pixels changed in {region} ({pct})",
        "fr": "{px} pixels ont changé dans {region} ({pct})",
        "es": "{px} píxeles cambiaron en {region} ({pct})",
        "de": "{px} Pixel haben sich in {region} verändert ({pct})",
        "pt": "{px} pixels mudaram em {region} ({pct})",
        "zh": "{region}中有{px}个像素发生变化（{pct}）",
    },
    "area": {
        "en": "{area} changed in {region} ({pct}, {px} px)",
        "fr": "{area} ont changé dans {region} ({pct}, {px} px)",
        "es": "cambiaron {area} en {region} ({pct}, {px} px)",
        "de": "{area} haben sich in {region} verändert ({pct}, {px} px)",
        "pt": "{area} mudaram em {region} ({pct}, {px} px)",
        "zh": "{region}中有{area}发生变化（{pct}，{px}像素）",
    },
    "area_unknown": {
        "en": "I can't give {unit}: the pixel size of this image is unknown; {pct} of {region} changed ({px} px)",
        "fr": "Je ne peux pas donner de {unit} : la taille du pixel est inconnue ; {pct} de {region} a changé "
        "({px} px)",
        "es": "No puedo dar {unit}: el tamaño del píxel es desconocido; cambió el {pct} de {region} ({px} px)",
        "de": "Ich kann keine {unit} angeben: die Pixelgröße ist unbekannt; {pct} von {region} haben sich verändert "
        "({px} px)",
        "pt": "Não posso dar {unit}: o tamanho do pixel é desconhecido; {pct} de {region} mudou ({px} px)",
        "zh": "无法给出{unit}：该图像的像素大小未知；{region}有{pct}发生变化（{px}像素）",
    },
    "compare_more": {
        "en": "{a} changed more than {b}: {va} vs {vb}",
        "fr": "{a} a plus changé que {b} : {va} contre {vb}",
        "es": "{a} cambió más que {b}: {va} frente a {vb}",
        "de": "{a} hat sich stärker verändert als {b}: {va} gegenüber {vb}",
        "pt": "{a} mudou mais do que {b}: {va} contra {vb}",
        "zh": "{a}的变化多于{b}：{va}对{vb}",
    },
    "compare_equal": {
        "en": "{a} and {b} changed about equally: {va} vs {vb}",
        "fr": "{a} et {b} ont changé à peu près autant : {va} contre {vb}",
        "es": "{a} y {b} cambiaron más o menos igual: {va} frente a {vb}",
        "de": "{a} und {b} haben sich etwa gleich stark verändert: {va} gegenüber {vb}",
        "pt": "{a} e {b} mudaram mais ou menos o mesmo: {va} contra {vb}",
        "zh": "{a}和{b}的变化差不多：{va}对{vb}",
    },
    "describe": {
        "en": "{pct} of the image changed, mostly in {cells}: {what}",
        "fr": "{pct} de l'image a changé, surtout dans {cells} : {what}",
        "es": "cambió el {pct} de la imagen, sobre todo en {cells}: {what}",
        "de": "{pct} des Bildes haben sich verändert ({what}), vor allem: {cells}",
        "pt": "{pct} da imagem mudou ({what}), sobretudo: {cells}",
        "zh": "图像有{pct}发生变化，主要在{cells}：{what}",
    },
    "nothing_changed": {
        "en": "Nothing changed between the two images",
        "fr": "Rien n'a changé entre les deux images",
        "es": "Nada cambió entre las dos imágenes",
        "de": "Zwischen den beiden Bildern hat sich nichts verändert",
        "pt": "Nada mudou entre as duas imagens",
        "zh": "两幅图像之间没有变化",
    },
    "export": {
        "en": "Here is the GeoJSON of the changed cells and objects",
        "fr": "Voici le GeoJSON des cellules et objets modifiés",
        "es": "Aquí está el GeoJSON de las celdas y objetos cambiados",
        "de": "Hier ist das GeoJSON der veränderten Zellen und Objekte",
        "pt": "Aqui está o GeoJSON das células e objetos alterados",
        "zh": "这是变化格子和对象的GeoJSON",
    },
    "export_empty": {
        "en": "Nothing changed, so the GeoJSON I wrote is an empty FeatureCollection",
        "fr": "Rien n'a changé : le GeoJSON écrit est une FeatureCollection vide",
        "es": "No cambió nada: el GeoJSON escrito es una FeatureCollection vacía",
        "de": "Nichts hat sich verändert: das geschriebene GeoJSON ist eine leere FeatureCollection",
        "pt": "Nada mudou: o GeoJSON escrito é uma FeatureCollection vazia",
        "zh": "没有变化，所以写出的GeoJSON是空的FeatureCollection",
    },
    "show": {
        "en": "Here is the change overlay: changed pixels tinted, changed 3×3 cells outlined",
        "fr": "Voici la superposition : pixels modifiés teintés, cellules 3×3 modifiées encadrées",
        "es": "Aquí está la superposición: píxeles cambiados teñidos, celdas 3×3 cambiadas marcadas",
        "de": "Hier ist die Überlagerung: veränderte Pixel eingefärbt, veränderte 3×3-Zellen umrandet",
        "pt": "Aqui está a sobreposição: pixels alterados coloridos, células 3×3 alteradas contornadas",
        "zh": "这是变化叠加图：变化像素已着色，变化的3×3格子已勾出",
    },
    "off_topic": {
        "en": "I can only help with the change between these two images: ask whether, where, how much or what "
        "changed, how many buildings or roads changed, or for a GeoJSON export",
        "fr": "Je ne peux répondre qu'au sujet des changements entre ces deux images : si, où, combien ou ce qui a "
        "changé, ou un export GeoJSON",
        "es": "Solo puedo ayudar con los cambios entre estas dos imágenes: si, dónde, cuánto o qué cambió, o una "
        "exportación GeoJSON",
        "de": "Ich kann nur bei den Veränderungen zwischen diesen beiden Bildern helfen: ob, wo, wie viel oder was "
        "sich verändert hat, oder ein GeoJSON-Export",
        "pt": "Só posso ajudar com as mudanças entre estas duas imagens: se, onde, quanto ou o que mudou, ou uma "
        "exportação GeoJSON",
        "zh": "我只能回答这两幅图像之间的变化：是否变化、在哪里、变化多少、变化了什么，或导出GeoJSON",
    },
    "hostile": {
        "en": "I won't do that: I only analyse the two images, and I don't read files, run code, change my "
        "instructions or write anywhere but my own output folder",
        "fr": "Je ne ferai pas cela : j'analyse seulement les deux images ; je ne lis pas de fichiers, n'exécute pas "
        "de code, ne change pas mes instructions et n'écris nulle part ailleurs",
        "es": "No haré eso: solo analizo las dos imágenes; no leo archivos, no ejecuto código, no cambio mis "
        "instrucciones ni escribo en otro lugar",
        "de": "Das mache ich nicht: ich analysiere nur die beiden Bilder; ich lese keine Dateien, führe keinen Code "
        "aus, ändere meine Anweisungen nicht und schreibe nirgendwo anders hin",
        "pt": "Não vou fazer isso: só analiso as duas imagens; não leio ficheiros, não executo código, não mudo as "
        "minhas instruções nem escrevo noutro lugar",
        "zh": "我不会这样做：我只分析这两幅图像，不读取文件、不运行代码、不更改指令，也不写入其他位置",
    },
    "open_no_model": {
        "en": "I can't answer that without DeltaVLM, which is not configured here: the verifiers only measure "
        "whether, where and how much changed",
        "fr": "Je ne peux pas répondre à cela sans DeltaVLM, qui n'est pas configuré : les vérificateurs mesurent "
        "seulement si, où et combien cela a changé",
        "es": "No puedo responder a eso sin DeltaVLM, que no está configurado: los verificadores solo miden si, "
        "dónde y cuánto cambió",
        "de": "Das kann ich ohne DeltaVLM, das hier nicht eingerichtet ist, nicht beantworten: die Prüfer messen nur, "
        "ob, wo und wie viel sich verändert hat",
        "pt": "Não posso responder a isso sem o DeltaVLM, que não está configurado: os verificadores só medem se, "
        "onde e quanto mudou",
        "zh": "没有配置DeltaVLM，我无法回答这个问题：验证器只能测量是否变化、在哪里以及变化多少",
    },
}

NOUNS: dict[str, dict[str, tuple[str, str]]] = {
    "building": {
        "en": ("building", "buildings"),
        "fr": ("bâtiment", "bâtiments"),
        "es": ("edificio", "edificios"),
        "de": ("Gebäude", "Gebäude"),
        "pt": ("edifício", "edifícios"),
        "zh": ("栋建筑", "栋建筑"),
    },
    "road": {
        "en": ("road", "roads"),
        "fr": ("route", "routes"),
        "es": ("carretera", "carreteras"),
        "de": ("Straße", "Straßen"),
        "pt": ("estrada", "estradas"),
        "zh": ("条道路", "条道路"),
    },
    "change": {
        "en": ("changed region", "changed regions"),
        "fr": ("zone modifiée", "zones modifiées"),
        "es": ("zona cambiada", "zonas cambiadas"),
        "de": ("veränderte Fläche", "veränderte Flächen"),
        "pt": ("zona alterada", "zonas alteradas"),
        "zh": ("处变化区域", "处变化区域"),
    },
}

_V = {
    "en": {"T": "top", "C": "center", "B": "bottom"},
    "fr": {"T": "en haut", "C": "au milieu", "B": "en bas"},
    "es": {"T": "superior", "C": "central", "B": "inferior"},
    "de": {"T": "oben", "C": "Mitte", "B": "unten"},
    "pt": {"T": "superior", "C": "central", "B": "inferior"},
    "zh": {"T": "上", "C": "中", "B": "下"},
}
_H = {
    "en": {"L": "left", "C": "center", "R": "right"},
    "fr": {"L": "à gauche", "C": "au centre", "R": "à droite"},
    "es": {"L": "izquierda", "C": "central", "R": "derecha"},
    "de": {"L": "links", "C": "Mitte", "R": "rechts"},
    "pt": {"L": "esquerda", "C": "central", "R": "direita"},
    "zh": {"L": "左", "C": "中", "R": "右"},
}
_CELL = {
    "en": "the {name} ({id}) cell",
    "fr": "la cellule {v} {h} ({id})",
    "es": "la celda {v} {h} ({id})",
    "de": "die Zelle {v} {h} ({id})",
    "pt": "a célula {v} {h} ({id})",
    "zh": "{h}{v}格（{id}）",
}
_CENTRE = {
    "en": "the center-center (CC) cell",
    "fr": "la cellule centrale (CC)",
    "es": "la celda central (CC)",
    "de": "die mittlere Zelle (CC)",
    "pt": "a célula central (CC)",
    "zh": "中心格（CC）",
}
_NAMED: dict[str, dict[str, str]] = {
    "image": {
        "en": "the image",
        "fr": "l'image",
        "es": "la imagen",
        "de": "das Bild",
        "pt": "a imagem",
        "zh": "整幅图像",
    },
    "row:top": {
        "en": "the top row (north)",
        "fr": "la rangée du haut (nord)",
        "es": "la fila superior (norte)",
        "de": "die obere Reihe (Norden)",
        "pt": "a linha superior (norte)",
        "zh": "上排（北部）",
    },
    "row:middle": {
        "en": "the middle row",
        "fr": "la rangée du milieu",
        "es": "la fila central",
        "de": "die mittlere Reihe",
        "pt": "a linha central",
        "zh": "中排",
    },
    "row:bottom": {
        "en": "the bottom row (south)",
        "fr": "la rangée du bas (sud)",
        "es": "la fila inferior (sur)",
        "de": "die untere Reihe (Süden)",
        "pt": "a linha inferior (sul)",
        "zh": "下排（南部）",
    },
    "col:left": {
        "en": "the left column (west)",
        "fr": "la colonne de gauche (ouest)",
        "es": "la columna izquierda (oeste)",
        "de": "die linke Spalte (Westen)",
        "pt": "a coluna esquerda (oeste)",
        "zh": "左列（西部）",
    },
    "col:center": {
        "en": "the center column",
        "fr": "la colonne du centre",
        "es": "la columna central",
        "de": "die mittlere Spalte",
        "pt": "a coluna central",
        "zh": "中列",
    },
    "col:right": {
        "en": "the right column (east)",
        "fr": "la colonne de droite (est)",
        "es": "la columna derecha (este)",
        "de": "die rechte Spalte (Osten)",
        "pt": "a coluna direita (leste)",
        "zh": "右列（东部）",
    },
    "half:top": {
        "en": "the top half (north)",
        "fr": "la moitié haute (nord)",
        "es": "la mitad superior (norte)",
        "de": "die obere Hälfte (Norden)",
        "pt": "a metade superior (norte)",
        "zh": "上半部分（北）",
    },
    "half:bottom": {
        "en": "the bottom half (south)",
        "fr": "la moitié basse (sud)",
        "es": "la mitad inferior (sur)",
        "de": "die untere Hälfte (Süden)",
        "pt": "a metade inferior (sul)",
        "zh": "下半部分（南）",
    },
    "half:left": {
        "en": "the left half (west)",
        "fr": "la moitié gauche (ouest)",
        "es": "la mitad izquierda (oeste)",
        "de": "die linke Hälfte (Westen)",
        "pt": "a metade esquerda (oeste)",
        "zh": "左半部分（西）",
    },
    "half:right": {
        "en": "the right half (east)",
        "fr": "la moitié droite (est)",
        "es": "la mitad derecha (este)",
        "de": "die rechte Hälfte (Osten)",
        "pt": "a metade direita (leste)",
        "zh": "右半部分（东）",
    },
}
UNIT_NAMES = {
    "m2": {
        "en": "square metres",
        "fr": "mètres carrés",
        "es": "metros cuadrados",
        "de": "Quadratmeter",
        "pt": "metros quadrados",
        "zh": "平方米",
    },
    "ha": {"en": "hectares", "fr": "hectares", "es": "hectáreas", "de": "Hektar", "pt": "hectares", "zh": "公顷"},
    "km2": {
        "en": "square kilometres",
        "fr": "kilomètres carrés",
        "es": "kilómetros cuadrados",
        "de": "Quadratkilometer",
        "pt": "quilómetros quadrados",
        "zh": "平方公里",
    },
    "acre": {"en": "acres", "fr": "acres", "es": "acres", "de": "Acres", "pt": "acres", "zh": "英亩"},
}
UNIT_SYMBOLS = {"m2": "m²", "ha": "ha", "km2": "km²", "acre": "acres"}


def say(key: str, lang: str, **slots: object) -> str:
    """A template in ``lang`` (English when the template has no such language) with its slots filled."""
    table = T[key]
    return grammar(table.get(lang, table["en"]).format(**slots), lang)


def _german_dative(name: str) -> str:
    """ "die obere Reihe" → "der oberen Reihe", "das Bild" → "dem Bild" (the region names' only cases)."""
    if name.startswith("das "):
        return "dem " + name[4:]
    return re.sub(r"^die (\w+e) ", r"der \1n ", name) if re.match(r"^die \w+e [A-ZÄÖÜ]", name) else "der " + name[4:]


def grammar(text: str, lang: str) -> str:
    """Contractions and cases after the slots are filled: pt "de a" → "da", de "in die Zelle" → "in der Zelle"."""
    if lang == "pt":
        for a, b in (("de a ", "da "), ("de o ", "do "), ("em a ", "na "), ("em o ", "no ")):
            text = re.sub(rf"\b{a}", b, text)
    elif lang == "es":
        text = re.sub(r"\bde el ", "del ", text)
    elif lang == "de":
        for name in _GERMAN_NAMES:
            for prep in ("in", "von"):
                text = text.replace(f"{prep} {name}", f"{prep} {_german_dative(name)}")
        text = text.replace("in dem ", "im ").replace("von dem ", "vom ")
    return text


def noun(category: str, lang: str, count: int = 2) -> str:
    singular, plural = NOUNS[category].get(lang, NOUNS[category]["en"])
    return singular if count == 1 else plural


def region_name(key: str, lang: str, facing: dict[str, str] | None = None) -> str:
    """A region key in words: ``BL`` → "the bottom-left cell (BL)", ``half:top`` → "the top half (north)".

    ``facing`` maps each image side to the compass direction it faces when the raster is not north-up
    (``tools.orientation``): a side's name then carries that direction ("the top half (south)")."""
    if key in _NAMED:
        phrase = _NAMED[key].get(lang, _NAMED[key]["en"])
        side = key.split(":")[-1]
        return _with_compass(phrase, key, facing[side], lang) if facing and side in facing else phrase
    if key == "CC":
        return _CENTRE.get(lang, _CENTRE["en"])
    if key in CELL_IDS:
        return _CELL[lang].format(v=_V[lang][key[0]], h=_H[lang][key[1]], id=key, name=CELL_NAMES[key])
    if key.startswith("cells:"):
        return join([region_name(c, lang, facing) for c in key[len("cells:") :].split("+")], lang)
    raise ValueError(f"unknown region {key!r}")


def join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    sep = "、" if lang == "zh" else ", "
    return sep.join(items[:-1]) + f" {T['and'][lang]} " + items[-1] if lang != "zh" else sep.join(items)


_NORTH_UP_SIDE = {"north": "top", "south": "bottom", "west": "left", "east": "right"}


def _with_compass(phrase: str, key: str, direction: str, lang: str) -> str:
    """``phrase`` (a side's name on a north-up image, "the top row (north)") with its compass word replaced by that
    of ``direction``, borrowed from the north-up name of the same kind that faces it ("the top row (south)")."""
    kind = key.split(":")[0]
    side = _NORTH_UP_SIDE[direction]
    donor_kind = kind if kind == "half" else ("row" if side in ("top", "bottom") else "col")
    donor = _NAMED[f"{donor_kind}:{side}"].get(lang, _NAMED[f"{donor_kind}:{side}"]["en"])
    opening = "（" if "（" in phrase else "("
    closing = "）" if opening == "（" else ")"
    if opening not in phrase or opening not in donor:
        return phrase
    word = donor[donor.rindex(opening) + 1 : donor.rindex(closing)]
    return phrase[: phrase.rindex(opening) + 1] + word + phrase[phrase.rindex(closing) :]


_SIDED = [key for key in _NAMED if key.split(":")[-1] in ("top", "bottom", "left", "right")]
_GERMAN_NAMES = sorted(
    {names["de"] for names in _NAMED.values()}
    | {_with_compass(_NAMED[key]["de"], key, d, "de") for key in _SIDED for d in _NORTH_UP_SIDE}
    | {_CENTRE["de"]}
    | {_CELL["de"].format(v=_V["de"][c[0]], h=_H["de"][c[1]], id=c, name="") for c in CELL_IDS if c != "CC"},
    key=len,
    reverse=True,
)


def sentence(text: str) -> str:
    """Capitalised, with a full stop (Chinese: 。)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".。!?" else text + ("。" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else ".")
