"""The early ranking in the app: rows an early ranking's checkpoint scored are marked c, the
status pane says which checkpoint, and when the final model's scores replace them (a new
order) the cursor stays on its image."""

from __future__ import annotations

from .conftest import make_app, screen_text, settle, wait_until
from .test_app import cursor_name, db, shown


def _score(store, name, model_id, priority, category="agrees"):
    row = store.image(name)
    store.put_score(row.id, model_id, fold=None, image_sha256=row.img_sha256,
                    mask_sha256=row.mask_sha256, precision="fp32", prob_path=None,
                    category=category, metrics={"priority": priority})


def _line(app, name: str) -> str:
    """The list's line of ``name``, from its marker column on."""
    line = next(line for line in screen_text(app).splitlines()
                if f"{name} " in line and ("unreviewed" in line or "no-mask" in line))
    return line.lstrip("│▌ ")


async def test_checkpoint_rows_are_marked_and_the_final_ranking_keeps_the_cursor(project):
    store = db(project)
    ck = store.add_checkpoint(arch="resnet18", config={}, step=40, steps=200, job_id=9)
    _score(store, "echo.png", ck, 0.0015)     # echo and foxtrot: no model version scored them
    _score(store, "foxtrot.png", ck, 0.002)   # (below bravo's 0.004: last)
    app = make_app(project, poll_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert shown(app) == ["alpha.png", "delta.png", "charlie.png", "bravo.png",
                              "foxtrot.png", "echo.png"]
        marks = {r.name: r.checkpoint for r in app.model.view}
        assert marks == {"alpha.png": False, "delta.png": False, "charlie.png": False,
                         "bravo.png": False, "foxtrot.png": True, "echo.png": True}
        assert _line(app, "echo.png").startswith("c echo.png")
        assert _line(app, "bravo.png").startswith("bravo.png")
        status = str(app.query_one("#status").render())
        assert "c 2 from checkpoint (step 40 of 200)" in status
        await pilot.press("G")                      # the cursor on echo, the last row
        assert cursor_name(app) == "echo.png" and app.result_list.cursor == 5

        # the final model (v1 here) scores them: echo goes to the top, the checkpoint goes
        _score(store, "echo.png", 1, 0.9, "disagrees")
        _score(store, "foxtrot.png", 1, 0.001)
        assert store.drop_checkpoints() == [ck]
        await wait_until(pilot, lambda: shown(app)[0] == "echo.png", "the final ranking")
        await settle(pilot)
        assert shown(app) == ["echo.png", "alpha.png", "delta.png", "charlie.png",
                              "bravo.png", "foxtrot.png"]
        assert cursor_name(app) == "echo.png" and app.result_list.cursor == 0
        assert not any(r.checkpoint for r in app.model.view)
        assert _line(app, "echo.png").startswith("echo.png")
        await wait_until(pilot, lambda: "checkpoint" not in str(
            app.query_one("#status").render()), "the status without the checkpoint")


async def test_no_model_yet_the_status_names_the_checkpoint(tmp_path, monkeypatch):
    from .conftest import build_project

    root = build_project(tmp_path / "demo", monkeypatch)
    store = db(root)
    store.conn.execute("DELETE FROM meta WHERE key = 'current_model'")
    store.conn.execute("DELETE FROM scores")
    store.conn.execute("DELETE FROM models")
    ck = store.add_checkpoint(arch="resnet18", config={}, step=15, steps=200, job_id=2)
    store.finish_checkpoint(ck, valid_dice=0.4123, info={"images": 6})
    for i, name in enumerate(("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")):
        _score(store, f"{name}.png", ck, 0.1 * i)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert shown(app)[0] == "foxtrot.png" and all(r.checkpoint for r in app.model.view)
        status = str(app.query_one("#status").render())
        assert ("c ranking from checkpoint (step 15 of 200) · valid Dice 0.412 · "
                "no training running") in status
        metrics = str(app.query_one("#metrics").render())
        assert "checkpoint of the running training" in metrics and "model v-" not in metrics


def test_report_and_status_say_which_rows_a_checkpoint_scored(project, capsys):
    import json

    from segtriage.tui import cli

    store = db(project)
    ck = store.add_checkpoint(arch="resnet18", config={}, step=40, steps=200, job_id=9)
    store.finish_checkpoint(ck, valid_dice=0.5, info={})
    _score(store, "echo.png", ck, 0.20)
    assert cli.main(["report", str(project), "--format", "json"]) == 0
    rows = {r["image"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["echo.png"]["checkpoint"], rows["echo.png"]["model"]) == (40, None)
    assert (rows["alpha.png"]["checkpoint"], rows["alpha.png"]["model"]) == (None, 1)
    assert cli.main(["report", str(project)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(x for x in lines if "echo.png" in x).startswith("c echo.png")
    assert next(x for x in lines if "charlie.png" in x).startswith("~ charlie.png")  # stale
    assert cli.main(["status", str(project)]) == 0
    assert ("ranking  1 row(s) from the checkpoint at step 40 of 200, valid Dice 0.500\n"
            in capsys.readouterr().out)
    assert cli.main(["models", str(project), "--json"]) == 0
    assert [m["id"] for m in json.loads(capsys.readouterr().out)] == [1]
    assert cli.main(["rollback", str(project), str(ck)]) == 2
    assert "an early ranking's checkpoint, not a model version" in capsys.readouterr().err
