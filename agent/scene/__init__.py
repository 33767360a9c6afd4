"""Whole-scene analysis of a large GeoTIFF pair, tile by tile, with scene-level counts and cells."""
