"""Tests of the deltavlm package (this folder mirrors deltavlm/)."""
