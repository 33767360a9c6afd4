"""Batch runs of a question list over a catalog of tile pairs: resumable, local processes or Ray."""
