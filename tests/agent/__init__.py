"""Tests of the agent package (this folder mirrors agent/)."""
