"""The one error a caller of DeltaVLM's loading needs to catch.

Building a runner reads a config, tokenizer folders and weight files the user pointed at; any of them can
be missing, broken, or need a package that is not installed. :class:`ModelLoadError` carries one readable
line that names the file or folder and what is wrong, so the agent can fall back to its verifiers and say
why instead of printing a traceback. It subclasses ``OSError`` because every cause is a file the user named,
so callers that already turn file errors into input errors keep doing so.
"""

from __future__ import annotations


class ModelLoadError(OSError):
    """DeltaVLM could not be built from its configured files; the message names the file and the problem."""
