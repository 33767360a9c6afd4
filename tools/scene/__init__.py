"""Whole scenes: windowed tiling of a large GeoTIFF pair and an exact, memory-bounded merge of tile masks.

A scene never sits in memory: :mod:`.inputs` reads windows of both dates, :mod:`.tiling` plans the tiles,
:mod:`.mask_making` writes each tile's mask into the on-disk class mask (:mod:`.disk_mask`), :mod:`.merge` applies
the ChangeChat rules at scene level without double counting, and :mod:`.outputs` writes the GeoTIFF and GeoJSON.
"""
