"""Serving DeltaVLM over HTTP: the wire contract shared by the server and the agent's client."""
