"""The default router on a table of varied phrasings, and follow-ups that lean on the previous turn."""

from __future__ import annotations

import pytest

from agent.intents import Route, route_question

TABLE = [
    # binary
    ("Has anything changed?", "binary", []),
    ("Have these two images changed?", "binary", []),
    ("Did anything change between the two dates?", "binary", []),
    ("Is there any change?", "binary", []),
    ("Are the two images the same?", "binary", []),
    ("Are the scenes identical?", "binary", []),
    ("Please judge whether these two images have changed. Please answer yes or no.", "binary", []),
    ("changed or not?", "binary", []),
    ("Were any buildings demolished?", "binary", ["building"]),
    ("Has a new road been built?", "binary", ["road"]),
    ("Is anything new here?", "binary", []),
    ("Any differences?", "binary", []),
    # caption
    ("Describe the changes.", "caption", []),
    ("Please briefly describe the changes in these two images.", "caption", []),
    ("What changed?", "caption", []),
    ("What has changed in this area?", "caption", []),
    ("Summarize what happened here", "caption", []),
    ("Give me a caption of the change", "caption", []),
    ("Tell me about the changes", "caption", []),
    ("Can you give an overview of the differences?", "caption", []),
    ("what is different between before and after", "caption", []),
    ("Describe the changes of the buildings", "caption", ["building"]),
    # count
    ("How many new buildings?", "count", ["building"]),
    ("How many roads were built?", "count", ["road"]),
    ("Count the new houses", "count", ["building"]),
    ("Please determine how many roads and buildings have changed?", "count", ["road", "building"]),
    ("What is the number of demolished buildings?", "count", ["building"]),
    ("how many changes are there", "count", []),
    ("How much of the area changed?", "count", []),
    ("What percentage of the tile changed?", "count", []),
    ("Quantify the road changes", "count", ["road"]),
    ("how many new streets appeared", "count", ["road"]),
    ("How many warehouses were added?", "count", ["building"]),
    ("what fraction changed", "count", []),
    # locate
    ("Where did the roads change?", "locate", ["road"]),
    ("Where are the new buildings?", "locate", ["building"]),
    ("Where is the change?", "locate", []),
    ("Which part of the image changed?", "locate", []),
    ("In which cells did buildings change?", "locate", ["building"]),
    ("Locate the new roads", "locate", ["road"]),
    (
        "Please indicate the locations where changes have occurred in the buildings and roads, using a 3x3 grid",
        "locate",
        ["road", "building"],
    ),
    ("which areas were affected", "locate", []),
    ("Show me where the houses were built", "locate", ["building"]),
    ("Give the grid position of the new road", "locate", ["road"]),
    # export
    ("Export the changed cells", "export", []),
    ("Export that as GeoJSON", "export", []),
    ("Can I download the changes?", "export", []),
    ("save it for QGIS", "export", []),
    ("export the building changes", "export", ["building"]),
    # show
    ("Show me", "show", []),
    ("Show the change overlay", "show", []),
    ("Display the changed areas", "show", []),
    ("highlight the buildings", "show", ["building"]),
    ("visualise it", "show", []),
    # open questions
    ("What replaced the trees in the north?", "open_qa", []),
    ("Were the new buildings built on farmland?", "open_qa", ["building"]),
    ("What kind of buildings are these?", "open_qa", ["building"]),
    ("Is the vegetation healthier now?", "open_qa", []),
    ("What season was the first image taken in?", "open_qa", []),
    ("What is the land use in the after image?", "open_qa", []),
    ("Could this be a flood?", "open_qa", []),
    # explain
    ("Why?", "explain", []),
    ("Are you sure?", "explain", []),
    ("How do you know?", "explain", []),
    ("really?", "explain", []),
]


@pytest.mark.parametrize(("question", "intent", "categories"), TABLE)
def test_route_table(question, intent, categories):
    route = route_question(question)
    assert (route.intent, route.categories) == (intent, categories), route.reason


def test_table_is_large_and_covers_every_intent():
    assert len(TABLE) >= 60
    assert {row[1] for row in TABLE} == {"binary", "caption", "count", "locate", "export", "show", "open_qa", "explain"}


PREVIOUS_COUNT = Route(intent="count", categories=["building"])
PREVIOUS_LOCATE = Route(intent="locate", categories=["road"])

FOLLOW_UPS = [
    ("and roads?", PREVIOUS_COUNT, "count", ["road"]),
    ("What about roads?", PREVIOUS_COUNT, "count", ["road"]),
    ("roads?", PREVIOUS_COUNT, "count", ["road"]),
    ("where?", PREVIOUS_COUNT, "locate", ["building"]),
    ("And where are they?", PREVIOUS_COUNT, "locate", ["building"]),
    ("how many?", PREVIOUS_LOCATE, "count", ["road"]),
    ("and buildings?", PREVIOUS_LOCATE, "locate", ["building"]),
    ("same for buildings", PREVIOUS_LOCATE, "locate", ["building"]),
    ("export that", PREVIOUS_COUNT, "export", []),
    ("show me", PREVIOUS_LOCATE, "show", []),
]


@pytest.mark.parametrize(("question", "previous", "intent", "categories"), FOLLOW_UPS)
def test_follow_ups_use_the_previous_turn(question, previous, intent, categories):
    route = route_question(question, previous)
    assert (route.intent, route.categories) == (intent, categories), route.reason


def test_flags_for_combined_requests():
    route = route_question("Show me where the roads changed and export it as GeoJSON")
    assert route.intent == "export" and route.wants_overlay and route.wants_export
