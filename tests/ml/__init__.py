"""Tests of engine/ml."""
