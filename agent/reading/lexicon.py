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
        r"buildings?|houses?|housing|homes?|structures?|roofs?|rooftops?|sheds?|warehouses?|factor(?:y|ies)"
        r"|residences?|residential|villas?|apartments?|dwellings?|constructions?|blocks? of flats|flats|bldgs?"
        r"|propert(?:y|ies)|cabins?|barns?|garages?|offices?|built[- ]up|batiments?|maisons?|immeubles?"
        r"|habitations?|logements?|constructions?|edifices?|edificios?|edificacion(?:es)?|edificacoes"
        r"|edificacao|casas?|viviendas?|construcciones|construccion|predios?|moradias?|construcoes|construcao"
        r"|gebaude\w*|hauser\w*|haus|wohnhaus\w*|bauten|bauwerke?"
    ),
    r"建筑|房屋|房子|楼房|楼|住宅|厂房",
)
ROAD = _rx(
    _words(
        r"roads?|streets?|highways?|lanes?|paths?|driveways?|motorways?|freeways?|avenues?|tracks?|pavements?"
        r"|rds|street network|routes?|rues?|chemins?|voies?|autoroutes?|carreteras?|calles?|caminos?|estradas?"
        r"|ruas?|rodovias?|vias?|strassen?|wege?|autobahn\w*"
    ),
    r"道路|公路|街道|马路|路",
)
OTHER_SUBJECTS: dict[str, re.Pattern[str]] = {
    "vegetation": _rx(
        _words(
            r"trees?|forests?|woods?|woodland|vegetation|greenery|grass\w*|shrubs?|parks?|arbres?|foret"
            r"|arboles?|bosques?|arvores?|baume?|wald"
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
        r"new(?:ly)?|built|build|constructed|erected|added|appear\w*|emerg\w*"
        r"|(?:went|gone|go|going|goes|come|came|coming) up|sprung up|sprang up|popped up"
        r"|nouve(?:au|aux|lle|lles)|construit\w*|construy\w*|developed|apparu\w*|nuev[oa]s?|construid[oa]s?"
        r"|novos?|novas?|neue?[nsr]?|neubau\w*|gebaut|errichtet|hinzugekommen"
    ),
    r"新建|新增|新的|新",
)
DEMOLISHED = _rx(
    _words(
        r"demolish\w*|torn down|tore down|knocked down|pulled down|removed|destroyed|disappear\w*|razed"
        r"|gone(?! up)|lost|vanished|taken down|detruit\w*|demoli\w*|disparu\w*|derribad\w*|destruid\w*"
        r"|abgerissen\w*|abriss\w*|abreiss\w*|abgebrochen|ruckbau\w*|zerstor\w*|verschwunden|entfernt|beseitigt"
        r"|rase(?:e|es|s)?|derrib\w*|derrub\w*|demolic\w*"
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
    r"^\W*(?:vous etes|tu es|t'es) (?:sur|sure|certain)\b|^\W*(?:estas|esta) segur|^\W*bist du sicher",
    r"^\W*(?:tem|tens) (?:a )?certeza",
    r"^\W*(?:etes[- ]vous|es[- ]tu|en etes[- ]vous|en es[- ]tu|est[- ]ce que (?:vous etes|tu es)) (?:sur|certain)"
    r"|^\W*voce tem certeza|确定吗|你确定",
)
EXPORT = _rx(
    _words(
        r"export\w*|geojson|download\w*|shapefiles?|shp|geopackages?|gpkg|qgis|arcgis|gis (?:file|layer)|kml|kmz"
        r"|vector (?:file|layer)"
        r"|save (?:it|that|them|this|the (?:changes|results|cells|polygons))|telecharg\w*|exporta\w*"
        r"|descarga\w*|herunterladen|baixar"
    ),
    r"导出|下载",
)
SHOW = _rx(
    _words(
        r"show|display|visuali[sz]e|overlay|highlight|draw|picture|image of|map (?:it|them|the)|plot|montre\w*"
        r"|affiche\w*|muestra\w*|mostra\w*|zeig\w*"
    ),
    r"显示|展示|给我看",
)
COUNT = _rx(
    _words(
        r"how many|how mnay|hw many|number of|count\w*|cnt|tally|total (?:number|count)"
        r"|combien(?! de (?:surface|superficie|pourcent|%|la|l'|hectares?|m2|km2))|nombre de|cuant[oa]s"
        r"|numero de|wie ?viele|anzahl|quant[oa]s"
        r"|wie ?viel (?=(?:\w+ )?(?:gebaude|hauser|strassen|objekte|bauten|wege|veranderungen|anderungen)\b)"
    ),
    r"多少个|多少栋|多少座|多少条|几个|几栋|几座|几条|数量|多少(?:新|处|建筑|房|栋|座|条|道路|路)",
)
LARGEST_ONE = _rx(
    _words(
        r"(?:largest|biggest) (?:one|ones|of them|of those)|which (?:one )?is (?:the )?(?:largest|biggest)"
        r"|where is the (?:largest|biggest) (?:one|of them)|lequel est le plus grand|laquelle est la plus grande"
        r"|cual es (?:el|la) mas grande|welche[rs]? ist (?:das|der|die) grosste|qual e (?:o|a) maior"
    ),
    r"最大的是哪个|哪个最大",
)
"""A follow-up naming the largest of the objects just counted ("which is the largest one?")."""
SIZE = _rx(
    _words(
        r"(?:big|large|major|significant|huge|substantial|important) or (?:small|minor|little|tiny|insignificant)"
        r"|(?:small|minor|little|tiny) or (?:big|large|major|significant|huge)"
        r"|how (?:big|large|significant|extensive|major|serious|important) (?:is|was|are|were)"
        r"|(?:grand|gros|important)e? ou (?:petit|faible)e?|petite? ou (?:grand|gros|important)e?|quelle ampleur"
        r"|grande o pequen[oa]|pequen[oa] o grande|que tan grande"
        r"|gross oder klein|klein oder gross|wie gross (?:ist|war)"
        r"|grande ou pequen[oa]|pequen[oa] ou grande"
    ),
    r"大还是小|小还是大|大不大|有多大",
)
"""A question about how big the change is ("big or small?"): answered on the rules' size scale."""
HOW_MUCH = _rx(
    _words(
        r"how much"
        r"|what (?:share|percentage|percent|proportion|fraction|area|portion|part of the (?:image|area|scene|tile))"
        r"|which (?:share|percentage|proportion|fraction)|percentage|percent|proportion|fraction|share of"
        r"|how (?:large|big|extensive|widespread)|(?:total|changed) area|(?:surface|land) area|extent"
        r"|square (?:met(?:er|re)s|kilomet(?:er|re)s|km|m)|hectares?|acres?"
        r"|quelle (?:est la )?(?:proportion|part|surface|superficie|etendue)|quel (?:est le )?pourcentage|pourcentage"
        r"|cual es (?:la|el) (?:superficie|area|proporcion|porcentaje|extension)"
        r"|combien de (?:surface|superficie|terrain|territoire)|quelle (?:etendue|quantite)"
        r"|que (?:porcentaje|proporcion|area|superficie|percentagem|porcentagem)"
        r"|cuant[oa] (?:area|superficie|terreno|territorio|espacio|suelo)|quant[oa] (?:area|superficie|terreno"
        r"|territorio|espaco|solo)"
        r"|cuanto (?:ha cambiado|cambio|del)|porcentaje|percentagem|porcentagem|quanto (?:mudou|da|do)"
        r"|qual (?:e |foi )?(?:a )?(?:percentagem|porcentagem|proporcao|area|superficie|extensao)"
        r"|wie viel(?!e)|wieviel(?!e)"
        r"|welche?r? (?:anteil|flache|prozentsatz)|wie gross|prozent\w*|anteil|flache|hektar"
    ),
    r"多大|百分之|百分比|比例|面积|占比|多少公顷|多少平方",
    r"\bwhat ?%",
)
WHERE = _rx(
    _words(
        r"where(?:abouts)?|wher|locat\w*"
        r"|which (?:part|parts|area|areas|cell|cells|region|regions|side|quadrant|quadrants|zone|zones|section|corner)"
        r"|in which|what (?:part|parts|area|areas|cell|cells|region|regions|side|quadrant|section|corner)"
        r"|position|grid|concentrated|clustered|spread (?:out|over)|distributed|ou (?:se|sont|est|a|ont|y)"
        r"|dans quelle|quelle (?:zone|partie|cellule|region|case)|quel (?:quadrant|secteur|coin)"
        r"|quelles (?:zones|parties|cellules|cases)|donde"
        r"|en que (?:parte|zona|celda|region)|que (?:zona|zonas|parte|celda)|onde"
        r"|em que (?:parte|zona|celula|regiao)|qual (?:zona|parte|celula|regiao)|wo"
        r"|que (?:celula|celulas|regiao|regioes|quadrante|quadrantes|celdas?|region|regiones|sector|sectores)"
        r"|in welche[mnr]? (?:teil|bereich|zelle|region)|welche[rs]? (?:teil|bereich|zelle|region|zellen)"
    ),
    r"(?<!\w)où(?!\w)",
    r"哪里|哪儿|在哪|哪个区域|哪个位置|哪部分|哪一部分|什么位置|哪些区域|哪个格",
)
DESCRIBE = _rx(
    _words(
        r"describe\w*|description|summari[sz]\w*|summary|sum up|caption|overview"
        r"|what (?:has |have )?(?:changed|happened|is different|are the (?:changes|differences)|changes|differs)"
        r"|what(?:'s| is|s) (?:changed|different|new|going on)"
        r"|how(?:'s|s| does| is| do) (?:it|that|things|the \w+) look"
        r"|what (?:was|were) (?:built|added|changed|demolished|removed)|tell me (?:about|what)"
        r"|explain the changes?|what changes|give me (?:a|the) (?:rundown|gist|picture)|walk me through"
        r"|(?:the |some )?(?:numbers|stats|statistics|figures)"
        r"|decri\w*|resum\w*|qu'est-ce qui a change|qu.est ce qui a change|que s'est-il passe"
        r"|qu'est-ce qui est different|describ\w*|que (?:ha cambiado|cambio|paso)|descrev\w*|descreva"
        r"|o que (?:mudou|aconteceu)|beschreib\w*|was hat sich (?:verandert|geandert)|was ist (?:passiert|neu)"
        r"|zusammenfass\w*|fasse\w* zusammen"
        r"|qu.est[- ]ce qui (?:a|ont) (?:ete )?(?:demoli\w*|construit\w*|detruit\w*|rase\w*|ajoute\w*|disparu|apparu)"
        r"|que (?:se )?(?:ha )?(?:demoli\w*|constru\w*|derrib\w*|destru\w*)"
        r"|que (?:fue|fueron|ha sido|han sido) (?:demolid|construid|derribad|destruid)\w*"
        r"|o que (?:foi|foram|se) (?:demolid|construid|derrubad|destruid|removid|adicionad|demoliu|construiu)\w*"
        r"|was (?:wurde|wurden|ist|sind) (?:\w+ ){0,2}(?:abgerissen|gebaut|errichtet|entfernt|zerstort|verschwunden"
        r"|hinzugekommen)"
    ),
    r"描述|概括|总结|发生了什么|什么变化|哪些变化|(?:拆除|拆掉|拆|建|新建|建造|修建)了(?:哪些|什么)|什么被(?:拆除|拆|建)",
)
COMPARE = _rx(
    _words(
        r"compare\w*|comparison|versus|vs\.?|more than|less than|than|(?:more|less) then"
        r"|which (?:has|had|saw|got|shows?) (?:more|less|the most)|more (?:in|change|changes|changed|on)"
        r"|less (?:in|change|changes|changed|on)|more (?:roads?|buildings?|houses?|streets?)|compar\w*"
        r"|plus (?:de|dans|au|a)|mas (?:en|de|cambio|cambios)|mehr|weniger|mais (?:no|na|em|mudancas)"
        r"|(?:plus|moins) (?:\w+ ){0,3}qu[e']|(?:mas|menos) (?:\w+ ){0,3}que|(?:mais|menos) (?:\w+ ){0,3}(?:do )?que"
        r"|(?:starker|grosser) (?:\w+ ){0,3}als|davantage"
    ),
    r"比较|更多|对比|(?<!分)比(?!例|率)|哪个.{0,8}更|更(?:大|小|少)",
)
RANK_MOST = _rx(
    _words(
        r"am starksten|am meisten|(?:mudou|mudaram) mais|(?:cambio|cambiaron) mas|mas (?:cambio|cambios)",
        r"the most|most (?:change|changed|changes|affected|activity|of the)|biggest|largest|highest|greatest"
        r"|heaviest|le plus|el mas|la mas|mas cambio|am meisten|die meisten|meiste|o mais|a mais|mais mudou"
        r"|(?:chang\w*|differ\w*|affected|developed|built|grew|grown|transformed) most"
        r"|mais (?:mudancas?|alteracoes?)|maior (?:mudanca|alteracao)|(?:tiene|tuvo|con) mas cambios?"
        r"|mayor cambio|mas (?:ha )?cambiado|mais (?:se )?alterou|plus de changements?"
        r"|(?:la|les) plus (?:grande?s?|forte?s?|importante?s?)|(?:el|la|o|a) mayor|(?:o|a) maior"
        r"|(?:die|der|das|den) (?:starkste|grosste|meiste)\w*",
    ),
    r"最多|最大|最明显|最显著|最剧烈|最严重|最强",
)
REGION_NOUNS = _rx(
    _words(
        r"cells?|parts?|areas?|sides?|regions?|quadrants?|corners?|sectors?|sections?|zones?|halves|half"
        r"|cellules?|parties?|secteurs?|coins?|celdas?|partes?|sectores?|cuadrantes?|esquinas?|celulas?|regioes"
        r"|quadrantes?|cantos?|zellen?|teile?|bereiche?|sektore?n?|ecken?|quadranten?|regionen"
    ),
    r"格|区域|部分|块|象限|角",
)
"""Words that name a part of the image: with a rank word they ask which part ("which cell changed most?")."""
RANK_LEAST = _rx(
    _words(
        r"the least|least|fewest|smallest|lowest|le moins|am wenigsten|(?:cambio|cambiaron|mudou|mudaram) menos"
        r"|(?:el|la|o|a) menos|menos (?:cambio|cambios|mudou|mudancas?)|menor (?:cambio|mudanca|alteracao)"
        r"|wenigsten"
    ),
    r"最少|最小|最不明显",
)
YES_NO_START = _rx(
    r"(?:^|[:;.!?] )\W*(?:so |and |but |ok |okay |now |then |please )?"
    r"(?:has|have|had|did|does|do|is|are|was(?! (?:ist|sind|wurde|wurden|hat|haben|gibt)\b)|were|will|can|could|any"
    r"|anything|something)\b",
    r"\b(?:yes or no|changed or not|or not\b|true or false)",
    r"\b(?:whether|if) (?:any|anything|there|the|it|this|something|a |an )",
    r"^\W*(?:est-ce que|est ce que|y a-t-il|y a t il|il y a|a-t-il|ya-t-il|ha habido|hay|hubo|ha cambiado|gibt es"
    r"|hat sich|haben sich|ist|sind|wurde|wurden|houve|ha |mudou|existe|existem|tem)\b",
    r"(?:a|ont|as)(?:-| )t(?:-| )(?:il|elle|ils|elles) (?:change|ete|eu)",
    r"有变化吗|变化了吗|有没有|是否|变了吗|吗[？?]?$",
)
CHANGE_WORDS = _rx(
    _words(
        r"chang\w*|differ\w*|modif\w*|alter\w*|transform\w*|new|built|demolish\w*|construct\w*|appear\w*"
        r"|disappear\w*|developed|development|happen\w*|same|identical|stable|intact|untouched|cambi\w*|mud\w*"
        r"|verander\w*|ander\w*|evolu\w*"
    ),
    r"变化|改变|变了|不同|一样|相同|变",
)
NEGATIVE = _rx(
    _words(
        r"unchanged|(?:stay|stayed|stays|remain|remained|remains|look|looks|looked|still) (?:the )?same"
        r"|(?:the )?same as (?:before|the first)"
        r"|(?:is|are|was|were|it|they|images|scenes?|area|tile) (?:exactly |completely |all )?(?:the )?same"
        r"|identical|no (?:change|changes|difference|differences)|nothing (?:changed?|happened|new|different)"
        r"|(?:show|shows|showing|depict|depicts) (?:exactly |really )?(?:the )?same"
        r"|(?:la )?meme chose|lo mismo|la misma cosa|(?:a )?mesma coisa|dasselbe|das selbe"
        r"|not (?:changed|change|touched|modified)"
        r"|(?:hasn't|haven't|didn't|did not|has not|have not|wasn't|weren't) (?:\w+ )?(?:changed|change)"
        r"|stable|untouched|intact|inchange\w*|rien (?:n'a )?change|pas (?:de )?change\w*|sin cambios?"
        r"|no (?:ha )?cambi\w*|igual(?:es)?|unverandert|keine (?:veranderung|anderung)\w*|gleich"
        r"|sem (?:mudancas?|alteracoes?)|nao mudou|inalterad[oa]s?"
    ),
    r"没有变化|没变|不变|一样|相同|无变化",
)
OFF_TOPIC_HINTS = _rx(
    _words(
        r"jokes?|poems?|songs?|stor(?:y|ies)|capital of|weather|recipes?|football|world cup|president|stock"
        r"|bitcoin|meaning of life|who are you|your name|translate|homework|essay|hello|hi|hey|thanks?"
        r"|thank you|how are you|movie|blague|chiste|witz|piada"
    ),
    r"笑话|天气|首都",
)
IMAGE_WORDS = _rx(
    _words(
        r"images?|pictures?|photos?|scenes?|tiles?|pair|before|after|area|site|place|neighbou?rhood"
        r"|land(?:[- ]?(?:use|cover))?|urban\w*|season|satellite|aerial|region|town|city|village|district"
    ),
    r"图像|影像|图片|区域",
)

# ---------------------------------------------------------------- units
UNITS: list[tuple[str, re.Pattern[str]]] = [
    (
        "km2",
        _rx(
            r"\bkm2\b|\bkm²|\bsq\.? ?km\b|\bsquare kilomet\w+|\bkilometres? carres?|\bkilometros? cuadrados?"
            r"|\bquadratkilometer|\bquilometros? quadrados?|平方公里|平方千米"
        ),
    ),
    ("ha", _rx(r"\bhectares?\b|\bhectareas?\b|\bhektar\b|(?:\d|\b(?:in|en|em)) ?ha\b|公顷")),
    ("acre", _rx(r"\bacres?\b|英亩")),
    (
        "m2",
        _rx(
            r"\bm2\b|m²|\bsq\.? ?m\b|\bsqm\b|\bsquare met\w+|\bsquare feet\b|\bmetres? carres?|\bmetros? cuadrados?"
            r"|\bquadratmeter|\bmetros? quadrados?|平方米"
        ),
    ),
    ("px", _rx(r"\bpixels?\b|\bpx\b|\bpixeles\b|\bpixeis\b|像素")),
    (
        "percent",
        _rx(
            r"%|\bpercent\w*|\bper cent\b|\bshare\b|\bproportion\b|\bfraction\b|\bpourcentage\b|\bporcentaje\b"
            r"|\bpercentagem\b|\bporcentagem\b|\bprozent\w*|\banteil\b|百分|比例|占比"
        ),
    ),
]

# ---------------------------------------------------------------- follow-ups
FOLLOW_UP_START = _rx(
    r"^\W*(?:and|what about|how about|same (?:for|with|question for)|also|now|ok(?:ay)?|then|but|what of|and in"
    r"|and on|and for|and the|et|y|und|e|qu'en est-il|quid|(?:y )?que (?:hay|pasa) (?:de|con)|e quanto"
    r"|o que dizer|was ist mit|wie (?:steht|sieht) es (?:mit|aus mit))\b",
    r"^\W*(?:那么|那|还有)|呢\W*$",
    r"^\W*(?:and )?(?:which|what) (?:one|cell|part|area|side)\b",
)
ELLIPTIC_PRONOUNS = _rx(_words(r"they", r"them", r"those", r"these", r"it", r"that", r"ones", r"there"))

# ---------------------------------------------------------------- language signals
LANGUAGE_SIGNALS: dict[str, re.Pattern[str]] = {
    "en": _rx(
        _words(
            r"the|is|are|was|were|has|have|had|how|what|where|which|who|why|when|did|does|do|any|many|much|of|and|in"
            r"|to|for|with|from|that|this|these|those|there|it|its|me|my|you|your|we|our|they|them|be|been|by|at|an"
            r"|can|could|would|should|will|please|tell|show|give|get|good|new|changed|all|not|or|if|so|just|about"
            r"|some|more|most|than|then|like|want|need|make|made|see|look|write|help|know|recommend|export"
        )
    ),
    "fr": _rx(
        _words(
            r"est-ce|combien|les|des|du|quelle|quel|quelles|y a-t-il|il y a|a-t-il|batiments?|maisons?|change"
            r"|nouveaux|nouvelles|decri\w*|partie|zone|au|aux|dans|sont|ont|qu'est-ce|s'il|vous|plait"
            r"|exporte[rz]?|moitie|routes?|l'image|quoi|ce|cette"
        ),
        r"(?<!\w)où(?!\w)",
    ),
    "es": _rx(
        _words(
            r"cuant[oa]s|donde|hay|ha|han|edificios?|casas?|cambio|cambiado|cambios|nuev[oa]s|que|el|los|las"
            r"|del|una?|describe|zona|parte|carreteras?|calles?|hubo|por favor|exporta|mitad|porcentaje|imagen"
            r"|algo"
        )
    ),
    "de": _rx(
        _words(
            r"wie|viele?|wo|gibt|es|sich|hat|haben|ist|sind|gebaude\w*|neue?[nsr]?|verandert|geandert|die|der"
            r"|das|den|dem|im|welche[mnrs]?|beschreib\w*|veranderungen|anderungen|strassen?|bitte|exportier\w*"
            r"|teil|bild|und|etwas|was"
        )
    ),
    "pt": _rx(
        _words(
            r"quant[oa]s|onde|houve|mudou|mudancas|predios?|edificios?|novos|novas|o que|os|as|da|do|das|dos"
            r"|na|no|em|descreva|descreve|zona|parte|estradas?|ruas?|por favor|exporte|metade|imagem|alguma"
            r"|algo|ha|sao|foi|foram|construid[oa]s|mudanca|alteracoes|percentagem|porcentagem|voce"
        )
    ),
}
FRENCH_ONLY = _rx(
    _words(
        r"est-ce|combien|quel|quelle|quelles|y a-t-il|a-t-il|batiments?|quelque|chose|l'image|pourcentage"
        r"|partie|les|des|exporte[rz]?|changements|a-t-elle|qu'est-ce|surface|et|ou|nouveaux|qu'est-ce"
        r"|decri\w*|moitie|s'il vous plait|sont|ont|parcelles?|es-tu|etes-vous|vous etes sure?|tu es sure?|t'es sure?"
    ),
    r"(?<!\w)où(?!\w)",
)
SPANISH_ONLY = _rx(
    _words(
        r"cuant[oa]s|donde|hay|cambio|cambiado|cambios|cambiaron|nuev[oa]s|hubo|los|las|del|el|mitad|porcentaje"
        r"|carreteras?|calles?|demoliciones|demolicion|demolio|demolieron|derrib\w*|construyo|construyeron|celdas?"
        r"|columna|fila|izquierda|derecha|cuanta|cuanto"
    )
)
PORTUGUESE_ONLY = _rx(
    _words(
        r"em",
        r"onde|houve|mudou|mud\w+|quant[oa]s|alguma|coisa|mudancas|predios?|novos|novas|o que|metade|estradas?"
        r"|ruas?|dos|das|na|sao|foram|alteracoes|percentagem|porcentagem|voce|mudanca|talhoes|talhao"
        r"|demolicoes|demolicao|demolid[oa]s?|derrubad[oa]s?|construcoes|celulas?|coluna|linha|esquerda|direita"
        r"|sul|do que|baixo|cima|meio"
        r"|(?:tem|tens) (?:a )?certeza",
    )
)
GERMAN_ONLY = _rx(
    _words(
        r"wie|viele?|wo|gibt|sich|gebaude\w*|verandert|geandert|welche[mnrs]?|beschreib\w*|veranderungen"
        r"|anderungen|strassen?|bitte|im|und|ist|sind|hat|parzellen?|flurstucke?|wurden?|worden|mit|dem|die"
        r"|abgerissen\w*|abriss\w*|gebaut|zerstort\w*|neubau\w*|flache|spalte|zeile"
    )
)

# ---------------------------------------------------------------- areas of interest (the user's own polygons)
_AOI_NOUNS = (
    r"parcels?|plots?|fields?|polygons?|aois?|areas? of interest|my (?:areas|zones|polygons)|features?"
    r"|parcelles?|champs?|polygones?|zones? d'interet|parcelas?|campos?|poligonos?|areas? de interes(?:se)?"
    r"|parzellen?|felder[n]?|feld|flurstucke?|polygone?|talhoes|talhao"
)
AOI = _rx(_words(_AOI_NOUNS), r"地块|田块|多边形|感兴趣区")
"""Words that name the user's areas of interest as a region ("inside the parcels", "which fields changed?")."""
AOI_PICK = re.compile(
    r"\b(?:parcel|plot|field|polygon|zone|aoi|feature|parcelle|champ|polygone|parcela|campo|poligono|parzelle|feld"
    r"|flurstuck|talhao)\s*(?:#|no\.?|n°|nr\.?|number|numero|nummer)?\s*(\d[\w.-]*|\"[^\"]+\"|'[^']+')"
    r"|(?:地块|田块)\s*(\d[\w.-]*)"
)
"""One area of interest named by a property value: "plot 12", "parcel #A3", 'field "North"'."""
AOI_RANK = _rx(
    _words(r"rank\w*|order\w*|sort\w*|classe[rz]?|classement|ordena\w*|clasifica\w*|sortier\w*|rangliste|reihenfolge"),
    r"排名|排序",
)
EXPORT_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("shp", _rx(_words(r"shapefiles?|shp|esri"))),
    ("gpkg", _rx(_words(r"geopackages?|gpkg"))),
)
"""A vector format the question names ("as a shapefile"); GeoJSON otherwise."""
UNWRITTEN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("KML", _rx(_words(r"kml|kmz|google earth"))),
    ("CSV", _rx(_words(r"csv|excel|xlsx?|spreadsheet"))),
    ("DXF", _rx(_words(r"dxf|autocad|cad"))),
    ("GeoParquet", _rx(_words(r"geoparquet|parquet"))),
    ("FlatGeobuf", _rx(_words(r"flatgeobuf|fgb"))),
    ("GML", _rx(_words(r"gml"))),
    ("PDF", _rx(_words(r"pdf"))),
)
"""Formats a question may name that the agent does not write: the answer says so and names what it wrote."""
