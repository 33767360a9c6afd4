"""The vocabulary of typo correction: domain words a misspelt word may become, and common words that never change.

Kept as plain word lists so that adding a word is one edit; ``agent.reading.matching`` reads them.
"""

from __future__ import annotations

_DOMAIN_TEXT = """
building buildings house houses structure structures warehouse warehouses residential apartment apartments
construction road roads street streets highway highways driveway motorway avenue pavement north south east west
northern southern eastern western northwest northeast southwest southeast north-west north-east south-west
south-east top bottom left right upper lower middle centre center central corner half quadrant changed change
changes different difference differences demolished destroyed removed disappeared appeared constructed built
describe description summarise summarize summary export download geojson percentage percent proportion fraction
hectares hectare square metres meters kilometres kilometers pixels count number many where which locate location
compare unchanged identical anything something overlay display show area image images scene tile happened about
what whether there new batiments batiment maisons combien nouveaux edificios edificio cuantos cuantas donde
cambiado gebaude verandert veranderungen predios quantos mudou decrire decris beschreibe descreva exporter
exporta exportiere demolition demolitions demolish column columns
"""
_KNOWN_TEXT = """
numbers stats figures statistics
a about after again all also an and any anyone anything are area areas around at be been before best between but
by can cell cells column columns cost could days did do does done down each east eight else entire every
everything few find five for four from get give grid had has have he her here him his home homes horse hose host
house houses how hows i image images in into is it its just last least less like lol look lost lot lots made
make many map maps may me might more most much must my near next nine no noone not nothing now of off on one
only onto or other others our out over overall pair part parts past photo photos please post really region rest
road roads roof roofs row rows same scene scenes see seven shall share shares she should show shown shows side
sides since six some someone still street streets such sure tell ten test text than that thats the their them
then there theres these they this those three tile tiles to total two under up us very want wants was ways we
well went were west what whats when wheres which while who whole whom whose why will with would yes you your
zone
"""

DOMAIN_WORDS: tuple[str, ...] = tuple(dict.fromkeys(_DOMAIN_TEXT.split()))
"""Words a misspelt token may be corrected to (English and the other languages' core words, folded)."""
KNOWN_WORDS: frozenset[str] = frozenset(_KNOWN_TEXT.split())
"""Common words that are never "corrected" to a domain word (rest → west, roof → road, went → west …)."""
