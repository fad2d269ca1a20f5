"""The preview's line under its title follows the selected row's data, not only the cursor."""

from __future__ import annotations

from segtriage.engine.project.config import load_config
from segtriage.engine.store import Store

from .conftest import make_app, settle, wait_until


def db(root) -> Store:
    return Store(load_config(root).state_path(root) / "state.db")


def note(app) -> str:
    return str(app.query_one("#preview-note").render())


def row_line(app) -> str:
    """What the list says of the selected row, as the preview should say it."""
    row = app.current_row
    return row.status + (f" · {row.category}" if row.category else "")


def rescore(store: Store, name: str, category: str) -> None:
    """What the engine does after a mask change: a fresh score row for the current mask."""
    row = store.image(name)
    old = store.score(row.id)
    store.put_score(row.id, old.model_id, fold=None, image_sha256=row.img_sha256,
                    mask_sha256=row.mask_sha256, precision="fp32",
                    prob_path=old.prob_path, category=category,
                    metrics={"dice": 0.99, "confidence": 0.97})


async def test_a_decision_from_another_client_reaches_the_preview(project):
    app = make_app(project, poll_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert note(app).startswith("unreviewed · disagrees")
        other = db(project)  # another app on the same folder: pressing a there
        alpha = other.image("alpha.png").id
        other.set_status([alpha], "accepted", by="tui")
        await wait_until(pilot, lambda: app.model.by_id[alpha].status == "accepted",
                         "reload after another client's decision")
        await settle(pilot)
        assert app.current_row.name == "alpha.png"
        assert note(app).startswith("accepted · disagrees")


async def test_use_prediction_then_rescoring_and_undo_keep_the_preview_in_step(project):
    app = make_app(project, poll_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        store = db(project)
        alpha = store.image("alpha.png").id
        await pilot.press("P")
        await settle(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: app.model.by_id[alpha].status == "edited",
                         "the replaced mask marks the row edited")
        await settle(pilot)
        assert note(app).startswith(row_line(app))
        rescore(store, "alpha.png", "agrees")       # the engine re-scores the new mask
        await wait_until(pilot, lambda: app.model.by_id[alpha].category == "agrees",
                         "reload after re-scoring")
        await settle(pilot)
        assert "agrees" in str(app.query_one("#metrics").render())
        assert note(app).startswith("edited · agrees")
        await pilot.press("u")                      # back to the thresholded mask
        await wait_until(pilot, lambda: store.mask_versions("alpha_mask.png")[-1].source
                         == "revert", "undo")
        rescore(store, "alpha.png", "uncertain")
        await wait_until(pilot, lambda: app.model.by_id[alpha].category == "uncertain",
                         "reload after re-scoring the old mask")
        await settle(pilot)
        assert note(app).startswith(row_line(app)) and "uncertain" in note(app)


async def test_unflagging_in_place_updates_the_preview(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("x")                      # flag alpha, move to delta
        await settle(pilot)
        await pilot.press("k")
        await settle(pilot)
        assert note(app).startswith("flagged · disagrees")
        await pilot.press("x")                      # unflag: stays on alpha
        await settle(pilot)
        assert app.current_row.name == "alpha.png"
        assert note(app).startswith("unreviewed · disagrees")


async def test_flagging_the_last_row_updates_the_preview(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("G")
        await settle(pilot)
        assert app.current_row.name == "foxtrot.png"
        assert note(app).startswith("no-mask")
        await pilot.press("x")                      # the last row: the cursor cannot move on
        await settle(pilot)
        assert app.current_row.name == "foxtrot.png"
        assert note(app).startswith("flagged")
