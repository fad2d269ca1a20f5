"""Tests of engine/project."""
