"""The typed request: what a question asks, about what, where, in which unit and language.

Every question becomes one :class:`Request`, whoever reads it (the deterministic reader or a chat model checked by
it), and the answer is built from the request alone, so its first sentence can answer exactly what was asked.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from deltavlm.rules import CELL_IDS
from tools.regions import REGION_KEYS

Ask = Literal[
    "changed",  # yes/no: did anything (or this subject, or this region) change?
    "count",  # how many objects
    "where",  # which cells / which cell has the most
    "how_much",  # a share or an area
    "describe",  # a caption
    "compare",  # two regions or two categories against each other
    "export",  # GeoJSON
    "show",  # the overlay picture
    "explain",  # why? what is that based on?
    "confirm",  # are you sure?
    "open",  # an open question about the images that only DeltaVLM can try
    "off_topic",  # not about the images: a polite decline
    "hostile",  # read a file, run code, change instructions, write elsewhere: a refusal
    "unsupported_language",  # a language the reader does not understand
]
Direction = Literal["any", "new", "demolished"]
Polarity = Literal["positive", "negative"]
Unit = Literal["percent", "px", "m2", "ha", "km2", "acre"]
Category = Literal["road", "building"]
Language = Literal["en", "fr", "es", "de", "pt", "zh"]

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "fr": "French",
    "es": "Spanish",
    "de": "German",
    "pt": "Portuguese",
    "zh": "Chinese",
}
FACT_ASKS: frozenset[str] = frozenset(
    {"changed", "count", "where", "how_much", "describe", "compare", "export", "show"}
)
"""Asks answered from the verifiers' facts; the others need none (explain, confirm) or must get none."""


AOI_REGION = "aoi"
"""The region of the user's areas of interest (``Agent.ask(aoi=…)``, ``--aoi FILE``): every polygon, or one."""
ExportFormat = Literal["geojson", "gpkg", "shp"]


ReadingCode = Literal[
    # the rule that chose the ask
    "hostile",
    "unsupported_language",
    "off_topic",
    "explain",
    "confirm",
    "export",
    "largest",
    "compare_regions",
    "compare_categories",
    "size_scale",
    "count",
    "how_much",
    "rank",
    "where",
    "open",
    "describe",
    "yes_no",
    "sameness",
    "show",
    "follow_up",
    "change_with_subject",
    "category_alone",
    # what was done to the reading afterwards
    "corrected",
    "inherited",
    "one_sided_compare",
    "compass_turned",
    "no_aoi",
    # the chat-model planner
    "planner",
    "planner_corrected",
    "planner_failed",
    "planner_no_tool",
    "planner_invalid",
    "not_sent_to_planner",
]


class ReadingStep(BaseModel):
    """One step of reading a question, as a fact: which rule fired or what was done, with what it concerned.

    ``agent.answering.reading`` words the steps in the question's language; the reader writes no sentence."""

    code: ReadingCode
    value: str | None = Field(
        None, description="The step's one fact: the detected language, an ask, the direction the top faces, an error."
    )
    fixes: list[tuple[str, str]] = Field(
        default_factory=list, description="Typo → word the reader corrected, or field → value it put back."
    )
    fields: list[str] = Field(default_factory=list, description="Fields taken from the previous question.")


def valid_region(key: str) -> bool:
    """A named region (``REGION_KEYS``) or a union of cells written ``cells:TL+TC``."""
    if key in REGION_KEYS or key == AOI_REGION:
        return True
    if key.startswith("cells:"):
        cells = key[len("cells:") :].split("+")
        return bool(cells) and all(c in CELL_IDS for c in cells) and len(set(cells)) == len(cells)
    return False


class Request(BaseModel):
    """One question, read."""

    ask: Ask
    categories: list[Category] = Field(default_factory=list, description="Empty: any change.")
    other_subject: str | None = Field(
        None, description="A subject outside the mask's categories (trees, water…): answered as not separable."
    )
    direction: Direction = "any"
    region: str = Field("image", description="tools.regions.REGION_KEYS, cells:TL+TC, or aoi (areas of interest).")
    compared: list[str] = Field(default_factory=list, description="Regions compared (ask=compare), in asked order.")
    rank: Literal["most", "least"] | None = Field(None, description="'which cell has the most change?'")
    polarity: Polarity = Field("positive", description="'Is it unchanged?' is negative: yes means no change.")
    unit: Unit | None = None
    language: Language = "en"
    detected_language: str = Field("en", description="What the detector said, also for unsupported languages.")
    follow_up: bool = False
    wants_overlay: bool = False
    wants_export: bool = False
    export_format: ExportFormat = Field("geojson", description="The vector format asked for ('as a shapefile').")
    referent: Literal["largest"] | None = Field(None, description="'Which is the largest one?': an object counted.")
    size_scale: bool = Field(False, description="'Is the change big or small?': answered on the rules' size scale.")
    unwritten_format: str | None = Field(None, description="A format asked for that is not written ('as KML').")
    aoi_pick: str | None = Field(
        None, description="One area of interest named by a property value ('plot 12' → '12'); region is 'aoi'."
    )
    steps: list[ReadingStep] = Field(
        default_factory=list, description="How the question was read, in order (the rule first, then what was done)."
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if not valid_region(region):
            raise ValueError(f"unknown region {region!r}")
        return region

    @field_validator("compared")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        for region in regions:
            if not valid_region(region):
                raise ValueError(f"unknown region {region!r}")
        return regions

    def with_step(self, step: ReadingStep, **update: object) -> Request:
        """This request with ``update`` applied and ``step`` added to how it was read."""
        return self.model_copy(update={**update, "steps": [*self.steps, step]})

    @property
    def needs_facts(self) -> bool:
        """Whether the verifiers must run: explain and confirm rest on earlier turns, declines get no facts."""
        return self.ask in FACT_ASKS or self.ask == "open"

    @property
    def artefacts(self) -> frozenset[str]:
        """The files this request asks for: the overlay picture, the GeoJSON export."""
        wanted = set()
        if self.ask == "show" or self.wants_overlay:
            wanted.add("overlay")
        if self.ask == "export" or self.wants_export:
            wanted.add("geojson")
        return frozenset(wanted)

    def core(self) -> dict[str, object]:
        """The fields that define what was asked (compared against a phrasing set's expectations)."""
        return {
            "ask": self.ask,
            "categories": sorted(self.categories),
            "direction": self.direction,
            "region": self.region,
            "compared": list(self.compared),
            "rank": self.rank,
            "polarity": self.polarity,
            "unit": self.unit,
            "language": self.language,
        }
