"""Shared pieces of the painter's tests: ``async def`` tests run on a fresh event loop (as in
tests/tui), the small scored project of tests/tui/conftest.py, no user config."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "_segtriage_tui_test_project", Path(__file__).parents[1] / "tui" / "conftest.py")
tui_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tui_conftest)
build_project = tui_conftest.build_project
SIZE = tui_conftest.SIZE


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {k: pyfuncitem.funcargs[k] for k in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


@pytest.fixture(autouse=True)
def _own_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in ("SEGTRIAGE_EDITOR", "VISUAL", "EDITOR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    return build_project(tmp_path / "demo", monkeypatch)
