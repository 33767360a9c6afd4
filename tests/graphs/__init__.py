"""Tests of the graphs package (this folder mirrors graphs/)."""
