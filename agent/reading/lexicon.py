"""The words the reader knows, per concept and language, as regular expressions over folded text.

Text is lower-cased and folded (accents removed, ``ß`` → ``ss``) before matching, so patterns are written without
accents and a user who types "batiments" or "Gebaude" is read like one who types "bâtiments" or "Gebäude". Chinese
patterns match characters directly. ``DOMAIN_WORDS`` is the vocabulary a misspelt word is corrected to.
"""

from __future__ import annotations

import re

LANGS = ("en", "fr", "es", "de", "pt", "zh")


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts))


def _words(*alternatives: str) -> str:
    """A word-bounded alternation of regex fragments."""
    return r"\b(?:" + "|".join(alternatives) + r")\b"


# ---------------------------------------------------------------- subjects
BUILDING = _rx(
    _words(
        r"buildings?",
        r"houses?",
        r"housing",
        r"homes?",
        r"structures?",
        r"roofs?",
        r"rooftops?",
        r"sheds?",
        r"warehouses?",
        r"factor(?:y|ies)",
        r"residences?",
        r"residential",
        r"villas?",
        r"apartments?",
        r"dwellings?",
        r"constructions?",
        r"blocks? of flats",
        r"flats",
        r"bldgs?",
        r"propert(?:y|ies)",
        r"cabins?",
        r"barns?",
        r"garages?",
        r"offices?",
        r"built[- ]up",
        # fr
        r"batiments?",
        r"maisons?",
        r"immeubles?",
        r"habitations?",
        r"logements?",
        r"constructions?",
        r"edifices?",
        # es / pt
        r"edificios?",
        r"edificacion(?:es)?",
        r"edificacoes",
        r"edificacao",
        r"casas?",
        r"viviendas?",
        r"construcciones",
        r"construccion",
        r"predios?",
        r"moradias?",
        r"construcoes",
        r"construcao",
        # de
        r"gebaude\w*",
        r"hauser\w*",
        r"haus",
        r"wohnhaus\w*",
        r"bauten",
        r"bauwerke?",
    ),
    r"建筑|房屋|房子|楼房|楼|住宅|厂房",
)
ROAD = _rx(
    _words(
        r"roads?",
        r"streets?",
        r"highways?",
        r"lanes?",
        r"paths?",
        r"driveways?",
        r"motorways?",
        r"freeways?",
        r"avenues?",
        r"tracks?",
        r"pavements?",
        r"rds",
        r"street network",
        # fr
        r"routes?",
        r"rues?",
        r"chemins?",
        r"voies?",
        r"autoroutes?",
        # es / pt
        r"carreteras?",
        r"calles?",
        r"caminos?",
        r"estradas?",
        r"ruas?",
        r"rodovias?",
        r"vias?",
        # de
        r"strassen?",
        r"wege?",
        r"autobahn\w*",
    ),
    r"道路|公路|街道|马路|路",
)
OTHER_SUBJECTS: dict[str, re.Pattern[str]] = {
    "vegetation": _rx(
        _words(
            r"trees?",
            r"forests?",
            r"woods?",
            r"woodland",
            r"vegetation",
            r"greenery",
            r"grass\w*",
            r"shrubs?",
            r"parks?",
            r"arbres?",
            r"foret",
            r"arboles?",
            r"bosques?",
            r"arvores?",
            r"baume?",
            r"wald",
        ),
        r"树|森林|植被|绿地",
    ),
    "water": _rx(
        _words(r"water", r"rivers?", r"lakes?", r"ponds?", r"floods?", r"flooding", r"eau", r"agua", r"wasser"),
        r"水|河|湖",
    ),
    "farmland": _rx(_words(r"farmland", r"fields?", r"crops?", r"agricultur\w*", r"cropland", r"champs?"), r"农田"),
    "vehicles": _rx(_words(r"cars?", r"vehicles?", r"parking( lots?)?", r"trucks?"), r"汽车|车辆"),
    "solar panels": _rx(_words(r"solar (?:panels?|farms?)", r"pv panels?")),
    "swimming pools": _rx(_words(r"(?:swimming )?pools?")),
}

# ---------------------------------------------------------------- direction
NEW = _rx(
    _words(
        r"new(?:ly)?",
        r"built",
        r"build",
        r"constructed",
        r"erected",
        r"added",
        r"appear\w*",
        r"emerg\w*",
        r"went up",
        r"gone up",
        r"sprung up",
        r"sprang up",
        r"popped up",
        r"nouve(?:au|aux|lle|lles)",
        r"construit\w*",
        r"apparu\w*",
        r"nuev[oa]s?",
        r"construid[oa]s?",
        r"novos?",
        r"novas?",
        r"neue?[nsr]?",
        r"gebaut",
        r"errichtet",
        r"hinzugekommen",
    ),
    r"新建|新增|新的|新",
)
DEMOLISHED = _rx(
    _words(
        r"demolish\w*",
        r"torn down",
        r"tore down",
        r"knocked down",
        r"pulled down",
        r"removed",
        r"destroyed",
        r"disappear\w*",
        r"razed",
        r"gone",
        r"lost",
        r"vanished",
        r"taken down",
        r"detruit\w*",
        r"demoli\w*",
        r"disparu\w*",
        r"derribad\w*",
        r"destruid\w*",
        r"abgerissen",
        r"zerstort",
        r"verschwunden",
        r"abriss",
    ),
    r"拆除|拆掉|拆|消失|被毁",
)

# ---------------------------------------------------------------- asks
HOSTILE = _rx(
    r"\bignore\b.{0,40}\b(?:instructions?|rules?|prompts?|previous|above)\b",
    r"\b(?:forget|disregard|override)\b.{0,30}\b(?:instructions?|rules?|prompt|everything)\b",
    r"\bsystem prompt\b",
    r"\b(?:your|the) (?:instructions|prompt|settings|config(?:uration)?)\b.{0,30}\b(?:change|reveal|print|show)",
    r"\b(?:change|modify|update|set)\b.{0,30}\b(?:your|the) (?:instructions|rules|settings|endpoint|backend|model)\b",
    r"\bset (?:model|settings)\.",
    r"\bendpoint to\b",
    r"/etc/|\betc/passwd|\bpasswd\b|\bshadow\b|\.ssh\b|~/",
    r"\brm -rf\b|\$\(|`|\bsudo\b|\bchmod\b|\bcurl\b|\bwget\b",
    r"__import__|\bos\.system|\bsubprocess\b|\beval\(|\bexec\(|\bopen\(",
    r"\b(?:run|execute|eval(?:uate)?)\b.{0,20}\b(?:code|command|script|shell|python|bash)\b",
    r"\b(?:read|cat|print|show|dump|display)\b.{0,25}\b(?:file|contents?|env(?:ironment)?|api keys?|secrets?"
    r"|tokens?|credentials?|passwords?)\b",
    r"\b(?:write|save|export|copy|upload|send)\b.{0,40}(?:\bto\b|\binto\b) (?:/|[a-z]:\\|https?:|ftp:|\.\./)",
    r"\bdelete\b.{0,20}\b(?:files?|folders?|database|everything)\b",
    r"\bdrop table\b|<script|\{\{|\$\{jndi",
    r"\bjailbreak\b|\bdan mode\b|\bdeveloper mode\b|\bpretend (?:you are|to be)\b",
    r"\bignore(?:z)? (?:les|toutes) (?:les )?instructions\b|\bignora las instrucciones\b|\bignoriere\b",
    r"忽略.{0,6}指令|系统提示",
)

EXPLAIN = _rx(
    r"^\W*(?:and )?why\b",
    r"^\W*how (?:do|did|can) you (?:know|tell|say)",
    r"\bwhat (?:is|was|'s) (?:that|this|it|your answer) based on\b",
    r"\bon what basis\b",
    r"\b(?:explain|justify) (?:that|this|your answer|yourself|it|how)\b",
    r"\bwhat evidence\b",
    r"\bshow (?:me )?your (?:work|working|reasoning)\b",
    r"\bwhere does (?:that|this) (?:number|figure|come)",
    r"^\W*pourquoi\b|^\W*por ?que\b|^\W*warum\b|^\W*por que\b|为什么|依据",
)
CONFIRM = _rx(
    r"^\W*(?:are|r) (?:you|u) (?:sure|certain|confident)\b",
    r"^\W*(?:really|sure|certain|seriously)\W*$",
    r"^\W*(?:is that|is this) (?:right|correct|true|accurate)\b",
    r"\bhow (?:sure|confident|certain) are you\b",
    r"\bdouble[- ]check\b|\bcan i trust\b|\bhow reliable\b",
    r"^\W*(?:vous etes|tu es|t'es) (?:sur|sure|certain)\b|^\W*(?:estas|esta) segur|^\W*bist du sicher|^\W*tem certeza"
    r"|^\W*voce tem certeza|确定吗|你确定",
)
EXPORT = _rx(
    _words(
        r"export\w*",
        r"geojson",
        r"download\w*",
        r"shapefiles?",
        r"shp",
        r"qgis",
        r"arcgis",
        r"gis (?:file|layer)",
        r"vector (?:file|layer)",
        r"save (?:it|that|them|this|the (?:changes|results|cells|polygons))",
        r"telecharg\w*",
        r"exporta\w*",
        r"descarga\w*",
        r"herunterladen",
        r"baixar",
    ),
    r"导出|下载",
)
SHOW = _rx(
    _words(
        r"show",
        r"display",
        r"visuali[sz]e",
        r"overlay",
        r"highlight",
        r"draw",
        r"picture",
        r"image of",
        r"map (?:it|them|the)",
        r"plot",
        r"montre\w*",
        r"affiche\w*",
        r"muestra\w*",
        r"mostra\w*",
        r"zeig\w*",
    ),
    r"显示|展示|给我看",
)
COUNT = _rx(
    _words(
        r"how many",
        r"how mnay",
        r"hw many",
        r"number of",
        r"count\w*",
        r"cnt",
        r"tally",
        r"total (?:number|count)",
        r"combien(?! de (?:surface|superficie|pourcent|%|la|l'|hectares?|m2|km2))",
        r"nombre de",
        r"cuant[oa]s",
        r"numero de",
        r"wie viele?",
        r"anzahl",
        r"quant[oa]s",
    ),
    r"多少个|多少栋|多少座|多少条|几个|几栋|几座|几条|数量|多少(?:新|处|建筑|房|栋|座|条|道路|路)",
)
HOW_MUCH = _rx(
    _words(
        r"how much",
        r"what (?:share|percentage|percent|proportion|fraction|area|portion|part of the (?:image|area|scene|tile))",
        r"which (?:share|percentage|proportion|fraction)",
        r"percentage",
        r"percent",
        r"proportion",
        r"fraction",
        r"share of",
        r"how (?:large|big|extensive|widespread)",
        r"(?:total|changed) area",
        r"(?:surface|land) area",
        r"extent",
        r"square (?:met(?:er|re)s|kilomet(?:er|re)s|km|m)",
        r"hectares?",
        r"acres?",
        r"quelle (?:proportion|part|surface|superficie)",
        r"quel pourcentage",
        r"pourcentage",
        r"combien de (?:surface|superficie)",
        r"que (?:porcentaje|proporcion|parte|area|superficie|percentagem|porcentagem)",
        r"cuanta superficie",
        r"cuanto (?:ha cambiado|cambio|del)",
        r"porcentaje",
        r"percentagem",
        r"porcentagem",
        r"quanto (?:mudou|da|do)",
        r"qual (?:a )?(?:percentagem|porcentagem|proporcao|area)",
        r"wie viel",
        r"wieviel",
        r"welche?r? (?:anteil|flache|prozentsatz)",
        r"wie gross",
        r"prozent\w*",
        r"anteil",
        r"flache",
        r"hektar",
    ),
    r"多大|百分之|百分比|比例|面积|占比|多少公顷|多少平方",
)
WHERE = _rx(
    _words(
        r"where(?:abouts)?",
        r"wher",
        r"locat\w*",
        r"which (?:part|parts|area|areas|cell|cells|region|regions|side|quadrant|quadrants|zone|zones|section|corner)",
        r"in which",
        r"what (?:part|parts|area|areas|cell|cells|region|regions|side|quadrant|section|corner)",
        r"position",
        r"grid",
        r"ou (?:se|sont|est|a|ont|y)",
        r"dans quelle",
        r"quelle (?:zone|partie|cellule|region)",
        r"quelles (?:zones|parties|cellules)",
        r"donde",
        r"en que (?:parte|zona|celda|region)",
        r"que (?:zona|zonas|parte|celda)",
        r"onde",
        r"em que (?:parte|zona|celula|regiao)",
        r"qual (?:zona|parte|celula|regiao)",
        r"wo",
        r"in welche[mnr]? (?:teil|bereich|zelle|region)",
        r"welche[rs]? (?:teil|bereich|zelle|region|zellen)",
    ),
    r"(?<!\w)où(?!\w)",
    r"哪里|哪儿|在哪|哪个区域|哪个位置|哪部分|哪一部分|什么位置|哪些区域|哪个格",
)
DESCRIBE = _rx(
    _words(
        r"describe\w*",
        r"description",
        r"summari[sz]\w*",
        r"summary",
        r"sum up",
        r"caption",
        r"overview",
        r"what (?:has |have )?(?:changed|happened|is different|are the (?:changes|differences)|changes|differs)",
        r"what(?:'s| is) (?:changed|different|new|going on)",
        r"what (?:was|were) (?:built|added|changed|demolished|removed)",
        r"tell me (?:about|what)",
        r"explain the changes?",
        r"what changes",
        r"give me (?:a|the) (?:rundown|gist|picture)",
        r"walk me through",
        r"decri\w*",
        r"resum\w*",
        r"qu'est-ce qui a change",
        r"qu.est ce qui a change",
        r"que s'est-il passe",
        r"qu'est-ce qui est different",
        r"describ\w*",
        r"que (?:ha cambiado|cambio|paso)",
        r"descrev\w*",
        r"descreva",
        r"o que (?:mudou|aconteceu)",
        r"beschreib\w*",
        r"was hat sich (?:verandert|geandert)",
        r"was ist (?:passiert|neu)",
        r"zusammenfass\w*",
        r"fasse\w* zusammen",
    ),
    r"描述|概括|总结|发生了什么|什么变化|哪些变化",
)
COMPARE = _rx(
    _words(
        r"compare\w*",
        r"comparison",
        r"versus",
        r"vs\.?",
        r"more than",
        r"less than",
        r"than",
        r"which (?:has|had|saw|got|shows?) (?:more|less|the most)",
        r"more (?:in|change|changes|changed|on)",
        r"less (?:in|change|changes|changed|on)",
        r"more (?:roads?|buildings?|houses?|streets?)",
        r"compar\w*",
        r"plus (?:de|dans|au|a)",
        r"mas (?:en|de|cambio|cambios)",
        r"mehr",
        r"weniger",
        r"mais (?:no|na|em|mudancas)",
    ),
    r"比较|更多|对比",
)
RANK_MOST = _rx(
    _words(
        r"the most",
        r"most (?:change|changed|changes|affected|activity)",
        r"biggest",
        r"largest",
        r"highest",
        r"greatest",
        r"heaviest",
        r"le plus",
        r"el mas|la mas|mas cambio",
        r"am meisten|die meisten|meiste",
        r"o mais|a mais|mais mudou",
    ),
    r"最多|最大",
)
RANK_LEAST = _rx(_words(r"the least", r"least", r"fewest", r"smallest", r"lowest", r"le moins", r"am wenigsten"), r"最少")
YES_NO_START = _rx(
    r"^\W*(?:so |and |but |ok |okay |now |then |please )?(?:has|have|had|did|does|do|is|are|was|were|will|can|could"
    r"|any|anything|something)\b",
    r"\b(?:yes or no|changed or not|or not\b|true or false)",
    r"\b(?:whether|if) (?:any|anything|there|the|it|this|something|a |an )",
    r"^\W*(?:est-ce que|est ce que|y a-t-il|y a t il|il y a|a-t-il|ya-t-il|ha habido|hay|hubo|ha cambiado|gibt es"
    r"|hat sich|haben sich|ist|sind|wurde|wurden|houve|ha |mudou|existe|existem|tem)\b",
    r"(?:a|ont|as)(?:-| )t(?:-| )(?:il|elle|ils|elles) (?:change|ete|eu)",
    r"有变化吗|变化了吗|有没有|是否|变了吗|吗[？?]?$",
)
CHANGE_WORDS = _rx(
    _words(
        r"chang\w*",
        r"differ\w*",
        r"modif\w*",
        r"alter\w*",
        r"transform\w*",
        r"new",
        r"built",
        r"demolish\w*",
        r"construct\w*",
        r"appear\w*",
        r"disappear\w*",
        r"developed",
        r"development",
        r"happen\w*",
        r"same",
        r"identical",
        r"stable",
        r"intact",
        r"untouched",
        r"cambi\w*",
        r"mud\w*",
        r"verander\w*",
        r"ander\w*",
        r"evolu\w*",
    ),
    r"变化|改变|变了|不同|一样|相同|变",
)
NEGATIVE = _rx(
    _words(
        r"unchanged",
        r"(?:stay|stayed|stays|remain|remained|remains|look|looks|looked|still) (?:the )?same",
        r"(?:the )?same as (?:before|the first)",
        r"(?:is|are|was|were|it|they|images|scenes?|area|tile) (?:exactly |completely |all )?(?:the )?same",
        r"identical",
        r"no (?:change|changes|difference|differences)",
        r"nothing (?:changed|happened|new|different)",
        r"not (?:changed|change|touched|modified)",
        r"(?:hasn't|haven't|didn't|did not|has not|have not|wasn't|weren't) (?:\w+ )?(?:changed|change)",
        r"stable",
        r"untouched",
        r"intact",
        r"inchange\w*",
        r"rien (?:n'a )?change",
        r"pas (?:de )?change\w*",
        r"sin cambios?",
        r"no (?:ha )?cambi\w*",
        r"igual(?:es)?",
        r"unverandert",
        r"keine (?:veranderung|anderung)\w*",
        r"gleich",
        r"sem (?:mudancas?|alteracoes?)",
        r"nao mudou",
        r"inalterad[oa]s?",
    ),
    r"没有变化|没变|不变|一样|相同|无变化",
)
OFF_TOPIC_HINTS = _rx(
    _words(
        r"jokes?",
        r"poems?",
        r"songs?",
        r"stor(?:y|ies)",
        r"capital of",
        r"weather",
        r"recipes?",
        r"football",
        r"world cup",
        r"president",
        r"stock",
        r"bitcoin",
        r"meaning of life",
        r"who are you",
        r"your name",
        r"translate",
        r"homework",
        r"essay",
        r"hello",
        r"hi",
        r"hey",
        r"thanks?",
        r"thank you",
        r"how are you",
        r"movie",
        r"blague",
        r"chiste",
        r"witz",
        r"piada",
    ),
    r"笑话|天气|首都",
)
IMAGE_WORDS = _rx(
    _words(
        r"images?",
        r"pictures?",
        r"photos?",
        r"scenes?",
        r"tiles?",
        r"pair",
        r"before",
        r"after",
        r"area",
        r"site",
        r"place",
        r"neighbou?rhood",
        r"land(?:[- ]?(?:use|cover))?",
        r"urban\w*",
        r"season",
        r"satellite",
        r"aerial",
        r"region",
        r"town",
        r"city",
        r"village",
        r"district",
    ),
    r"图像|影像|图片|区域",
)

# ---------------------------------------------------------------- units
UNITS: list[tuple[str, re.Pattern[str]]] = [
    ("km2", _rx(r"\bkm2\b|\bkm²|\bsq\.? ?km\b|\bsquare kilomet\w+|\bkilometres? carres?|\bkilometros? cuadrados?"
                r"|\bquadratkilometer|\bquilometros? quadrados?|平方公里|平方千米")),
    ("ha", _rx(r"\bhectares?\b|\bhectareas?\b|\bhektar\b|\bha\b(?!s)|公顷")),
    ("acre", _rx(r"\bacres?\b|英亩")),
    ("m2", _rx(r"\bm2\b|m²|\bsq\.? ?m\b|\bsqm\b|\bsquare met\w+|\bsquare feet\b|\bmetres? carres?|\bmetros? cuadrados?"
               r"|\bquadratmeter|\bmetros? quadrados?|平方米")),
    ("px", _rx(r"\bpixels?\b|\bpx\b|\bpixeles\b|\bpixeis\b|像素")),
    ("percent", _rx(r"%|\bpercent\w*|\bper cent\b|\bshare\b|\bproportion\b|\bfraction\b|\bpourcentage\b|\bporcentaje\b"
                    r"|\bpercentagem\b|\bporcentagem\b|\bprozent\w*|\banteil\b|百分|比例|占比")),
]

# ---------------------------------------------------------------- follow-ups
FOLLOW_UP_START = _rx(
    r"^\W*(?:and|what about|how about|same (?:for|with|question for)|also|now|ok(?:ay)?|then|but|what of|and in"
    r"|and on|and for|and the|et|y|und|e|那|还有|那么)\b",
    r"^\W*(?:and )?(?:which|what) (?:one|cell|part|area|side)\b",
)
ELLIPTIC_PRONOUNS = _rx(_words(r"they", r"them", r"those", r"these", r"it", r"that", r"ones", r"there"))

# ---------------------------------------------------------------- language signals
LANGUAGE_SIGNALS: dict[str, re.Pattern[str]] = {
    "en": _rx(_words(r"the", r"is", r"are", r"has", r"have", r"how", r"what", r"where", r"did", r"any", r"many",
                     r"which", r"of", r"and", r"in", r"does", r"was", r"were", r"show", r"changed?", r"tell",
                     r"please", r"can", r"you", r"me", r"there", r"this", r"it", r"new", r"export", r"why")),
    "fr": _rx(_words(r"est-ce", r"combien", r"les", r"des", r"du", r"quelle", r"quel", r"quelles", r"y a-t-il",
                     r"il y a", r"a-t-il", r"batiments?", r"maisons?", r"change", r"nouveaux", r"nouvelles",
                     r"decri\w*", r"partie", r"zone", r"au", r"aux", r"dans", r"sont", r"ont", r"qu'est-ce",
                     r"s'il", r"vous", r"plait", r"exporte[rz]?", r"moitie", r"routes?", r"l'image", r"quoi",
                     r"ce", r"cette"), r"(?<!\w)où(?!\w)"),
    "es": _rx(_words(r"cuant[oa]s", r"donde", r"hay", r"ha", r"han", r"edificios?", r"casas?", r"cambio",
                     r"cambiado", r"cambios", r"nuev[oa]s", r"que", r"el", r"los", r"las", r"del", r"una?",
                     r"describe", r"zona", r"parte", r"carreteras?", r"calles?", r"hubo", r"por favor",
                     r"exporta", r"mitad", r"porcentaje", r"imagen", r"algo")),
    "de": _rx(_words(r"wie", r"viele?", r"wo", r"gibt", r"es", r"sich", r"hat", r"haben", r"ist", r"sind",
                     r"gebaude\w*", r"neue?[nsr]?", r"verandert", r"geandert", r"die", r"der", r"das", r"den",
                     r"dem", r"im", r"welche[mnrs]?", r"beschreib\w*", r"veranderungen", r"anderungen",
                     r"strassen?", r"bitte", r"exportier\w*", r"teil", r"bild", r"und", r"etwas", r"was")),
    "pt": _rx(_words(r"quant[oa]s", r"onde", r"houve", r"mudou", r"mudancas", r"predios?", r"edificios?",
                     r"novos", r"novas", r"o que", r"os", r"as", r"da", r"do", r"das", r"dos", r"na", r"no",
                     r"em", r"descreva", r"descreve", r"zona", r"parte", r"estradas?", r"ruas?", r"por favor",
                     r"exporte", r"metade", r"imagem", r"alguma", r"algo", r"ha", r"sao", r"foi", r"foram",
                     r"construid[oa]s", r"mudanca", r"alteracoes", r"percentagem", r"porcentagem", r"voce")),
}
FRENCH_ONLY = _rx(_words(r"est-ce", r"combien", r"quelle", r"quelles", r"y a-t-il", r"a-t-il", r"batiments?",
                         r"nouveaux", r"qu'est-ce", r"decri\w*", r"moitie", r"s'il vous plait", r"sont", r"ont"),
                  r"(?<!\w)où(?!\w)")
SPANISH_ONLY = _rx(_words(r"cuant[oa]s", r"donde", r"hay", r"cambio", r"cambiado", r"cambios", r"nuev[oa]s", r"hubo",
                          r"los", r"las", r"del", r"el", r"mitad", r"porcentaje", r"carreteras?", r"calles?"))
PORTUGUESE_ONLY = _rx(_words(r"onde", r"houve", r"mudou", r"mudancas", r"predios?", r"novos", r"novas", r"o que",
                             r"metade", r"estradas?", r"ruas?", r"dos", r"das", r"na", r"sao", r"foram", r"alteracoes",
                             r"percentagem", r"porcentagem", r"voce", r"mudanca"))
GERMAN_ONLY = _rx(_words(r"wie", r"viele?", r"wo", r"gibt", r"sich", r"gebaude\w*", r"verandert", r"geandert",
                         r"welche[mnrs]?", r"beschreib\w*", r"veranderungen", r"anderungen", r"strassen?", r"bitte",
                         r"im", r"und", r"ist", r"sind", r"hat"))

DOMAIN_WORDS: tuple[str, ...] = (
    "building", "buildings", "house", "houses", "structure", "structures", "warehouse", "warehouses",
    "residential", "apartment", "apartments", "construction", "road", "roads", "street", "streets", "highway",
    "highways", "driveway", "motorway", "avenue", "pavement", "north", "south", "east", "west", "northern",
    "southern", "eastern", "western", "northwest", "northeast", "southwest", "southeast", "north-west",
    "north-east", "south-west", "south-east", "top", "bottom", "left", "right", "upper", "lower", "middle",
    "centre", "center", "central", "corner", "half", "quadrant", "changed", "change", "changes", "different",
    "difference", "differences", "demolished", "destroyed", "removed", "disappeared", "appeared", "constructed",
    "built", "describe", "description", "summarise", "summarize", "summary", "export", "download", "geojson",
    "percentage", "percent", "proportion", "fraction", "hectares", "hectare", "square", "metres", "meters",
    "kilometres", "kilometers", "pixels", "count", "number", "many", "where", "which", "locate", "location",
    "compare", "unchanged", "identical", "anything", "something", "overlay", "display", "show", "area",
    "image", "images", "scene", "tile", "happened", "about", "what", "whether", "there", "new",
    "batiments", "batiment", "maisons", "combien", "nouveaux", "change", "edificios", "edificio", "cuantos",
    "cuantas", "donde", "cambiado", "gebaude", "verandert", "veranderungen", "predios", "quantos", "mudou",
    "describe", "decrire", "decris", "beschreibe", "descreva", "exporter", "exporta", "exportiere",
)
"""Words a misspelt token may be corrected to (English and the other languages' core words, folded)."""

KNOWN_WORDS: frozenset[str] = frozenset(
    "the a an is are was were be been has have had do does did any anything there their them they this that these "
    "those it its of in on at to for from by with and or but not no yes how what when who whom whose why which "
    "much more most less least many few some all each every one two three four five six seven eight nine ten "
    "please can could would should will shall may might must me my i we you your our us he she his her him "
    "rest best past post most host cost lost last east west test text next part parts side sides just only "
    "still same now then than also very really sure well here near over under into onto out off up down "
    "about around between before after since while again tell give make see look find show shows shown get "
    "area areas image images tile tiles scene scenes pair photo photos map maps region zone cell cells grid row "
    "rows column columns share shares total whole entire overall like such other others else done made "
    "road roads roof roofs home homes hose horse street streets house houses ways days lots lot".split()
)
"""Common words that are never "corrected" to a domain word (rest → west, roof → road …)."""
