"""Tests of engine/daemon."""
