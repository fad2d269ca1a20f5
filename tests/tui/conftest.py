"""A small, deterministic project for the TUI tests: real PNGs, a real state database built by
the real scan, one model and hand-written scores (so every shown number is known)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from segtriage.engine.project.project import Project

T0 = 1_700_000_000.0   # every store timestamp in the fixture project
NOW = T0 + 2 * 3600    # the app's clock in tests: two hours later
SIZE = 24

# name → (has mask, has prediction, metrics); circles of different radius and place
SPEC = {
    "alpha": (True, True, dict(priority=2.41, confidence=0.71, region_confidence=0.55,
                               label_quality=0.12, dice=0.52, iou=0.35, ce=0.81, n_pred=2,
                               n_mask=1, missed=0, extra=1, category="disagrees")),
    "bravo": (True, True, dict(priority=0.31, confidence=0.97, region_confidence=0.93,
                               label_quality=0.88, dice=0.96, iou=0.92, ce=0.05, n_pred=1,
                               n_mask=1, missed=0, extra=0, category="agrees")),
    "charlie": (True, True, dict(priority=1.52, confidence=0.83, region_confidence=0.62,
                                 label_quality=0.45, dice=0.81, iou=0.68, ce=0.33, n_pred=3,
                                 n_mask=3, missed=1, extra=1, category="uncertain")),
    "delta": (False, True, dict(priority=2.10, confidence=0.90, region_confidence=0.80,
                                label_quality=0.30, dice=0.0, iou=0.0, ce=1.20, n_pred=2,
                                n_mask=0, missed=0, extra=2, category="disagrees")),
    "echo": (True, False, None),
    "foxtrot": (False, False, None),
}


def pytest_configure(config):
    # textual-image 0.12 (pinned for Python 3.11) calls a Pillow API deprecated in Pillow 12
    config.addinivalue_line(
        "filterwarnings", "ignore:Image.Image.getdata is deprecated:DeprecationWarning")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests (Pilot) on a fresh event loop; no async plugin needed."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {k: pyfuncitem.funcargs[k] for k in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


@pytest.fixture(autouse=True)
def _own_config_home(tmp_path, monkeypatch):
    """User themes of whoever runs the tests must not leak in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in ("SEGTRIAGE_EDITOR", "VISUAL", "EDITOR"):
        monkeypatch.delenv(var, raising=False)


def _disk(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r)


def build_project(root: Path, monkeypatch) -> Path:
    """Seed layout (NAME.png beside NAME_mask.png), scanned, scored by model v1."""
    from segtriage.engine.store import db as store_db
    from segtriage.engine.project.config import load_config
    from segtriage.engine.project.index import scan
    from segtriage.engine.store import Store

    monkeypatch.setattr(store_db, "now", lambda: T0)
    root.mkdir(parents=True)
    for i, (name, (has_mask, _p, _m)) in enumerate(SPEC.items()):
        disk = _disk(8 + i, 12, 4 + i % 3)
        img = np.where(disk, 200, 40).astype(np.uint8)
        img = np.stack([img, (img * 0.8).astype(np.uint8), img // 2], axis=2)
        Image.fromarray(img, "RGB").save(root / f"{name}.png")
        if has_mask:
            Image.fromarray(disk.astype(np.uint8) * 255, "L").save(root / f"{name}_mask.png")
    cfg = load_config(root)
    store = Store(cfg.state_path(root) / "state.db")
    scan(Project(root, cfg, store))
    mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=8,
                          train_loss=0.21, valid_loss=0.25, valid_dice=0.874, n_train=42,
                          n_valid=8, manifest=[])
    preds = cfg.state_path(root) / "preds"
    preds.mkdir(exist_ok=True)
    for i, (name, (_m, has_pred, metrics)) in enumerate(SPEC.items()):
        if not has_pred:
            continue
        row = store.image(f"{name}.png")
        prob = np.where(_disk(9 + i, 12, 5), 230, 20).astype(np.uint8)
        prob[0:3, :] = 128  # a band of doubt for the uncertainty map
        rel = f"preds/{name}.png"
        Image.fromarray(prob, "L").save(preds / f"{name}.png")
        metrics = dict(metrics)
        category = metrics.pop("category")
        mask_sha = row.mask_sha256
        if name == "charlie":
            mask_sha = "0" * 64  # scored against an older mask: stale
        store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                        mask_sha256=mask_sha, precision="fp32", prob_path=rel,
                        category=category, metrics={**metrics, "solidity": 0.93})
    store.close()
    return root


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    return build_project(tmp_path / "demo", monkeypatch)


@pytest.fixture(autouse=True)
def no_engine(monkeypatch):
    """No engine processes from TUI tests: the app sees 'engine offline'."""
    from segtriage.tui.app import app as app_mod

    monkeypatch.setattr(app_mod, "ensure_engine", lambda root: None)
    monkeypatch.setattr(app_mod, "engine_pid", lambda root: None)


def make_app(root: Path, **kw):
    from segtriage.tui.app.app import SegtriageApp
    from segtriage.tui.app.widgets.preview import select_renderer

    kw.setdefault("renderer", select_renderer("halfcell"))
    kw.setdefault("clock", lambda: NOW)
    return SegtriageApp(root, **kw)


async def settle(pilot, rounds: int = 3) -> None:
    """Let workers (loading, preview, writes) finish and their messages land."""
    from textual.worker import WorkerCancelled

    app = pilot.app
    for _ in range(rounds):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # a preview superseded by a newer one
            pass
        await pilot.pause(0.05 if app._detail_timer is not None else None)
    await asyncio.sleep(0)


async def wait_until(pilot, pred, what: str, rounds: int = 200) -> None:
    for _ in range(rounds):
        if pred():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"never happened: {what}")


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
