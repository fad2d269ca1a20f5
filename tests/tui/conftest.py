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

# name → (has mask, what the model predicts); the masks are circles of different radius and
# place, the scores are what the real scorer makes of each prediction and mask:
# alpha   the mask lacks an object the model sees clearly: disagrees, priority 0.642
# delta   no mask; the model sees two objects, one of them unsure: uncertain, 0.076
# charlie the model agrees on the outline but is unsure inside: uncertain, 0.066 (and its
#         score is from an older mask: stale)
# bravo   the model agrees, sure of it: agrees, 0.004
# echo    a mask, no prediction yet; foxtrot neither
SPEC = {
    "alpha": (True, "extra"),
    "bravo": (True, "sure"),
    "charlie": (True, "unsure"),
    "delta": (False, "two"),
    "echo": (True, None),
    "foxtrot": (False, None),
}


def _prediction(kind: str, mask: np.ndarray) -> np.ndarray:
    """P(object) of the fixture's model for one image (see SPEC)."""
    if kind == "extra":
        p = np.where(mask, 0.97, 0.03)
        p[2:7, 15:21] = 0.97
    elif kind == "sure":
        p = np.where(mask, 0.98, 0.02)
    elif kind == "unsure":
        p = np.where(mask, 0.70, 0.04)
        p[9:11, 14:16] = 0.3  # and a small hole it half believes in
    else:  # two: one object unsure, one sure
        p = np.where(_disk(11, 12, 5), 0.62, 0.03)
        p[3:7, 3:7] = 0.95
    return p


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
    from segtriage.engine.project import scoring
    from segtriage.engine.project.config import load_config
    from segtriage.engine.project.index import scan
    from segtriage.engine.store import Store

    monkeypatch.setattr(store_db, "now", lambda: T0)
    root.mkdir(parents=True)
    for i, (name, (has_mask, _kind)) in enumerate(SPEC.items()):
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
    for i, (name, (has_mask, kind)) in enumerate(SPEC.items()):
        if kind is None:
            continue
        row = store.image(f"{name}.png")
        mask = _disk(8 + i, 12, 4 + i % 3)
        png = np.rint(_prediction(kind, mask) * 255).astype(np.uint8)
        rel = f"preds/{name}.png"
        Image.fromarray(png, "L").save(preds / f"{name}.png")
        metrics = scoring.score_image(png / 255.0, mask.astype(np.uint8) if has_mask else None)
        mask_sha = row.mask_sha256
        if name == "charlie":
            mask_sha = "0" * 64  # scored against an older mask: stale
        store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                        mask_sha256=mask_sha, precision="fp32", prob_path=rel,
                        category=metrics["category"], metrics=metrics)
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
    from segtriage.tui.paint.renderers import select_renderer

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
