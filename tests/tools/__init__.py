"""Tests of the tools package (this folder mirrors tools/)."""
