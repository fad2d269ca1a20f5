"""Tests of engine/store."""
