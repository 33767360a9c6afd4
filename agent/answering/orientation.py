"""The sentence that says a raster is not north-up, in the question's language.

Compass words were read on the image sides that face them (``tools.orientation``); the grid's cell names
(TL…BR) and the words top, bottom, left and right stay as the image is drawn. An answer about places on such a
raster says both, so a reader who looks at the picture and at a map can tell which is which.
"""

from __future__ import annotations

from agent.answering.wording import sentence
from tools.orientation import Orientation

_DIRECTION: dict[str, dict[str, str]] = {
    "en": {"north": "north", "south": "south", "east": "east", "west": "west"},
    "fr": {"north": "le nord", "south": "le sud", "east": "l'est", "west": "l'ouest"},
    "es": {"north": "el norte", "south": "el sur", "east": "el este", "west": "el oeste"},
    "de": {"north": "Norden", "south": "Süden", "east": "Osten", "west": "Westen"},
    "pt": {"north": "o norte", "south": "o sul", "east": "o leste", "west": "o oeste"},
    "zh": {"north": "北", "south": "南", "east": "东", "west": "西"},
}
_EXACT = {
    "en": "This raster is not north-up: its top edge faces {top}, so compass words were read on the sides that face "
    "them; the cell names TL…BR and top, bottom, left, right are as the image is drawn",
    "fr": "Ce raster n'est pas orienté nord en haut : son bord supérieur fait face vers {top}, donc les points "
    "cardinaux ont été lus sur les côtés qui leur font face ; les noms de cellules TL…BR et haut, bas, gauche, "
    "droite suivent l'image telle qu'elle est dessinée",
    "es": "Este ráster no tiene el norte arriba: su borde superior mira hacia {top}, así que los puntos cardinales se "
    "leyeron en los lados que miran hacia ellos; los nombres de celda TL…BR y arriba, abajo, izquierda, derecha "
    "siguen la imagen tal como se dibuja",
    "de": "Dieses Raster ist nicht genordet: seine Oberkante zeigt nach {top}, daher wurden Himmelsrichtungen auf den "
    "Seiten gelesen, die zu ihnen zeigen; die Zellnamen TL…BR und oben, unten, links, rechts gelten für das Bild, "
    "wie es gezeichnet ist",
    "pt": "Este raster não está com o norte para cima: sua borda superior está voltada para {top}, então os pontos "
    "cardeais foram lidos nos lados voltados para eles; os nomes de célula TL…BR e cima, baixo, esquerda, direita "
    "seguem a imagem como é desenhada",
    "zh": "此栅格不是北朝上：其上边朝向{top}，因此方位词按朝向该方位的图像边解读；"
    "格子名称 TL…BR 以及上、下、左、右均指图像本身的方向",
}
_NEAREST = {
    "en": "This raster is turned about {deg}° from north-up, so compass words were read on the nearest sides (its top "
    "edge faces nearest {top}); the cell names TL…BR and top, bottom, left, right are as the image is drawn",
    "fr": "Ce raster est tourné d'environ {deg}° par rapport au nord en haut, donc les points cardinaux ont été lus "
    "sur les côtés les plus proches (son bord supérieur fait face vers {top}) ; les noms de cellules TL…BR et "
    "haut, bas, gauche, droite suivent l'image telle qu'elle est dessinée",
    "es": "Este ráster está girado unos {deg}° respecto al norte arriba, así que los puntos cardinales se leyeron en "
    "los lados más cercanos (su borde superior mira hacia {top}); los nombres de celda TL…BR y arriba, abajo, "
    "izquierda, derecha siguen la imagen tal como se dibuja",
    "de": "Dieses Raster ist um etwa {deg}° gegenüber genordet gedreht, daher wurden Himmelsrichtungen auf den "
    "nächstliegenden Seiten gelesen (seine Oberkante zeigt am ehesten nach {top}); die Zellnamen TL…BR und oben, "
    "unten, links, rechts gelten für das Bild, wie es gezeichnet ist",
    "pt": "Este raster está girado cerca de {deg}° em relação ao norte para cima, então os pontos cardeais foram lidos "
    "nos lados mais próximos (sua borda superior está voltada para {top}); os nomes de célula TL…BR e cima, baixo, "
    "esquerda, direita seguem a imagem como é desenhada",
    "zh": "此栅格相对北朝上旋转约{deg}°，因此方位词按最接近的图像边解读（其上边大致朝向{top}）；"
    "格子名称 TL…BR 以及上、下、左、右均指图像本身的方向",
}


def facing(orientation: Orientation | None) -> dict[str, str] | None:
    """Image side → the compass direction it faces, when the pair is not north-up; else None."""
    if orientation is None or orientation.north_up:
        return None
    return dict(orientation.facing)


def orientation_sentence(orientation: Orientation | None, lang: str) -> str | None:
    """The note for an answer about places on a raster that is not north-up; None on a north-up or plain one."""
    sides = facing(orientation)
    if orientation is None or sides is None:
        return None
    top = _DIRECTION.get(lang, _DIRECTION["en"])[sides["top"]]
    if orientation.exact:
        return sentence(_EXACT.get(lang, _EXACT["en"]).format(top=top))
    degrees = round(min(orientation.rotation_deg, 360.0 - orientation.rotation_deg))
    return sentence(_NEAREST.get(lang, _NEAREST["en"]).format(top=top, deg=degrees))
