"""Pilot tests: every action against a real state database and real files."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtriage.engine.project.config import load_config
from segtriage.engine.store import Store

from .conftest import make_app, screen_text, settle, wait_until

REVIEW_ORDER = ["alpha.png", "delta.png", "charlie.png", "bravo.png", "echo.png",
                "foxtrot.png"]


def shown(app) -> list[str]:
    return [r.name for r in app.model.view]


def header(app) -> str:
    return screen_text(app).splitlines()[0]


def cursor_name(app) -> str:
    return app.current_row.name


def db(root: Path) -> Store:
    return Store(load_config(root).state_path(root) / "state.db")


def mask_array(path: Path) -> np.ndarray:
    return (np.asarray(Image.open(path).convert("L")) > 0).astype(np.uint8)


@contextmanager
def no_suspend(app):
    """run_test cannot suspend; the real terminal path is the tmux test's job."""
    @contextmanager
    def suspend():
        yield
    app.suspend = suspend
    yield


async def test_startup_shows_rows_in_review_order_and_engine_offline(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert shown(app) == REVIEW_ORDER
        assert cursor_name(app) == "alpha.png"
        top = header(app)
        assert "6 images" in top and "4 unreviewed" in top and "2 no-mask" in top
        status = str(app.query_one("#status").render())
        assert "engine offline" in status and "model v1" in status
        assert "valid Dice 0.874" in status and "no backup yet" in status
        metrics = str(app.query_one("#metrics").render())
        assert "Dice 0.766" in metrics and "disagrees" in metrics and "outline_bias -0.021" in metrics
        # the client registered itself so the engine does not idle-exit under it
        assert db(project).live_clients(max_age_s=10 ** 10) == 1
    assert db(project).live_clients(max_age_s=10 ** 10) == 0


async def test_vim_keys_arrows_and_mouse_move_the_cursor(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")
        assert cursor_name(app) == "charlie.png"
        await pilot.press("k")
        assert cursor_name(app) == "delta.png"
        await pilot.press("G")
        assert cursor_name(app) == "foxtrot.png"
        await pilot.press("g")
        assert cursor_name(app) == "alpha.png"
        await pilot.press("down", "ctrl+d")          # half a page: clamped to the last row
        assert cursor_name(app) == "foxtrot.png"
        await pilot.press("ctrl+u", "up")
        assert cursor_name(app) == "alpha.png"
        await pilot.click("#list", offset=(5, 4))   # line 0 is the header: row index 3
        assert cursor_name(app) == "bravo.png"
        await settle(pilot)
        assert app.preview.row.name == "bravo.png"
        assert "Dice 1.000" in str(app.query_one("#metrics").render())


async def test_sort_cycles_and_reverses_keeping_the_selected_row(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("j")                      # delta
        await pilot.press("s")                      # confidence, least confident first
        assert app.model.sort.id == "confidence"
        assert shown(app) == ["charlie.png", "delta.png", "alpha.png", "bravo.png", "echo.png",
                              "foxtrot.png"]
        assert cursor_name(app) == "delta.png"
        assert "sort: confidence ▲" in header(app)
        await pilot.press("S")
        assert shown(app)[:4] == ["bravo.png", "alpha.png", "delta.png", "charlie.png"]
        assert shown(app)[4:] == ["echo.png", "foxtrot.png"]   # unscored stay last
        assert "sort: confidence ▼" in header(app)


async def test_name_filter_and_escape(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "h", "a")
        assert shown(app) == ["alpha.png", "charlie.png"]
        await pilot.press("enter")
        assert app.focused is app.result_list
        assert "name~ha" in header(app)
        await pilot.press("escape")
        assert shown(app) == REVIEW_ORDER


async def test_status_filter_dialog(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        options = app.screen.query_one("#filter-options")
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index("status:no-mask")
        await pilot.press("enter")
        await settle(pilot)
        assert shown(app) == ["delta.png", "foxtrot.png"]
        await pilot.press("f")
        await settle(pilot)
        options = app.screen.query_one("#filter-options")
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index("category:uncertain")
        await pilot.press("enter")
        await settle(pilot)
        assert shown(app) == ["delta.png", "charlie.png"]


async def test_accept_writes_the_status_and_moves_on(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        assert cursor_name(app) == "delta.png"
        await settle(pilot)
        assert db(project).image("alpha.png").status == "accepted"
        assert "1 accepted" in header(app)


async def test_flag_toggles(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        assert db(project).image("alpha.png").status == "flagged"
        assert cursor_name(app) == "delta.png"     # flagging moves on, like accepting
        await pilot.press("k", "x")
        await settle(pilot)
        assert db(project).image("alpha.png").status == "unreviewed"
        # unflagging stays: a second x is the same row again, not the next one flagged
        assert cursor_name(app) == "alpha.png"
        await pilot.press("x", "k", "x", "x")
        await settle(pilot)
        assert db(project).image("alpha.png").status == "flagged"
        assert db(project).image("delta.png").status == "no-mask"  # untouched


async def test_next_needing_review(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("a", "a")                # alpha accepted; delta has no mask
        await settle(pilot)
        assert cursor_name(app) == "delta.png"
        assert any("delta.png: not accepted: it has no mask yet" in n.message
                   for n in app._notifications)
        await pilot.press("x")                      # flagged instead; cursor on charlie
        await settle(pilot)
        await pilot.press("G", "n")                 # from foxtrot, wrap to the first unreviewed
        assert cursor_name(app) == "charlie.png"
        await pilot.press("k", "x")                 # unflagged: no mask, so 'no-mask' again
        await settle(pilot)
        assert db(project).image("delta.png").status == "no-mask"


async def test_changes_from_other_processes_appear(project):
    app = make_app(project, poll_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        other = db(project)
        other.set_status([other.image("bravo.png").id], "accepted", by="cli")
        await wait_until(pilot, lambda: app.model.by_id[other.image("bravo.png").id].status
                         == "accepted", "reload after an outside write")
        assert cursor_name(app) == "alpha.png"      # the cursor stays where it was


def _fake_editor(calls, paint):
    def run(argv, cwd):
        calls.append(argv)
        mask = Path(argv[-1])
        a = mask_array(mask)
        paint(a)
        Image.fromarray(a * 255, "L").save(mask)
        return 0
    return run


async def test_edit_runs_the_editor_and_marks_the_row_edited(project, monkeypatch):
    monkeypatch.setenv("SEGTRIAGE_EDITOR", "fake-editor --wait")
    app = make_app(project)
    calls = []
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        before = mask_array(project / "alpha_mask.png")
        app.run_terminal_editor = _fake_editor(calls, lambda a: a.__setitem__((0, 0), 1))
        with no_suspend(app):
            await pilot.press("e")
            await settle(pilot)
        assert calls == [["fake-editor", "--wait", str(project / "alpha_mask.png")]]
        after = mask_array(project / "alpha_mask.png")
        assert after[0, 0] == 1 and (after != before).sum() == 1
        store = db(project)
        assert store.image("alpha.png").status == "edited"
        sources = [v.source for v in store.mask_versions("alpha_mask.png")]
        assert sources[-1] == "editor" and "scan" in sources
        await wait_until(pilot, lambda: app.model.by_id[store.image("alpha.png").id].status
                         == "edited", "row turns edited")


async def test_edit_without_a_mask_makes_one_first(project, monkeypatch):
    monkeypatch.setenv("SEGTRIAGE_EDITOR", "fake")
    app = make_app(project)
    calls = []
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.run_terminal_editor = _fake_editor(calls, lambda a: None)
        await pilot.press("G")                      # foxtrot: no mask, no prediction
        with no_suspend(app):
            await pilot.press("enter")
            await settle(pilot)
        assert calls and calls[0][-1] == str(project / "foxtrot_mask.png")
        store = db(project)
        assert store.image("foxtrot.png").mask_path == "foxtrot_mask.png"
        assert store.mask_versions("foxtrot_mask.png")[0].source == "segment"
        assert mask_array(project / "foxtrot_mask.png").sum() > 0   # a threshold found the disk
        # delta has no mask but a prediction: its first mask is the prediction
        await pilot.press("g", "j")
        with no_suspend(app):
            await pilot.press("e")
            await settle(pilot)
        prob = np.asarray(Image.open(project / ".segtriage/preds/delta.png"))
        assert (mask_array(project / "delta_mask.png") == (prob > 127)).all()
        assert store.mask_versions("delta_mask.png")[0].source == "prediction"


async def test_edit_where_the_terminal_cannot_suspend_says_so(project, monkeypatch):
    monkeypatch.setenv("SEGTRIAGE_EDITOR", "fake")
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.run_terminal_editor = lambda argv, cwd: pytest.fail("must not run")
        await pilot.press("e")
        await settle(pilot)
        assert any("cannot hand itself to an editor" in n.message
                   for n in app._notifications)


async def test_gui_editor_starts_detached(project, tmp_path):
    marker = tmp_path / "gui-ran"
    script = tmp_path / "gui.sh"
    script.write_text(f"#!/bin/sh\necho \"$1\" > '{marker}'\n")
    script.chmod(0o755)
    (project / "segtriage.toml").write_text(f'[editor]\ncommand = "{script} {{mask}}"\n'
                                            'mode = "gui"\n')
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        await wait_until(pilot, marker.exists, "the GUI editor ran")
        assert marker.read_text().strip() == str(project / "alpha_mask.png")


async def test_replace_with_prediction_confirms_and_undo_restores(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        original = (project / "alpha_mask.png").read_bytes()
        await pilot.press("P")
        await settle(pilot)
        await pilot.press("n")                      # "No" leaves the mask alone
        await settle(pilot)
        assert (project / "alpha_mask.png").read_bytes() == original
        await pilot.press("P")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        prob = np.asarray(Image.open(project / ".segtriage/preds/alpha.png"))
        assert (mask_array(project / "alpha_mask.png") == (prob > 127)).all()
        store = db(project)
        assert store.mask_versions("alpha_mask.png")[-1].source == "prediction"
        assert store.image("alpha.png").status == "edited"
        await pilot.press("u")
        await settle(pilot)
        assert (project / "alpha_mask.png").read_bytes() == original
        assert store.mask_versions("alpha_mask.png")[-1].source == "revert"
        assert any(n.message == "alpha_mask.png: back to version 1 (u again undoes the undo)"
                   for n in app._notifications)


async def test_undo_with_nothing_to_undo_says_so(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert any("alpha_mask.png: nothing to undo" in n.message for n in app._notifications)


async def test_replace_without_prediction_is_refused(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("G", "P")
        await settle(pilot)
        assert not app.screen.is_modal
        assert any("no prediction yet" in n.message for n in app._notifications)


async def test_retrain_dialog_submits_train_and_crossval_jobs(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        epochs = app.screen.query_one("#epochs")
        assert epochs.value == "8"
        hint = str(app.screen.query(".dialog-detail").last().render())
        assert "Trains at least 200 steps ([model] min_steps)" in hint
        epochs.value = "3"
        await pilot.press("enter")
        await settle(pilot)
        jobs = db(project).jobs()
        assert [(j.kind, j.params) for j in jobs] == [("train", {"epochs": 3, "gpus": 1})]
        await pilot.press("r")
        await settle(pilot)
        await pilot.click("#crossval")
        app.screen.query_one("#folds").value = "4"
        await pilot.click("#start")
        await settle(pilot)
        jobs = db(project).jobs()
        assert (jobs[0].kind, jobs[0].params) == ("crossval", {"folds": 4, "epochs": 8,
                                                           "gpus": 1})
        assert jobs[0].state == "queued"
        # a bad value keeps the dialog open with a message
        await pilot.press("r")
        await settle(pilot)
        app.screen.query_one("#epochs").value = "0"
        await pilot.press("enter")
        await settle(pilot)
        assert "epochs" in str(app.screen.query_one("#retrain-error").render())
        await pilot.press("backspace", "5")   # fixing the value clears the message
        await settle(pilot)
        assert str(app.screen.query_one("#retrain-error").render()).strip() == ""
        await pilot.press("escape")
        assert len(db(project).jobs()) == 2
        # the engine's own check of a job's values, with the config's message: folds 1 (2 to
        # 20), a cleared field, GPUs 0
        for field, value, crossval, message in [
                ("#folds", "1", True, "model.folds = 1 is not allowed; expected an integer ≥ 2 "
                                      "and ≤ 20"),
                ("#folds", "21", True, "model.folds = 21 is not allowed"),
                ("#epochs", "", False, "model.epochs = '' is not allowed; expected an integer "
                                       "≥ 1 and ≤ 10000"),
                ("#gpus", "0", False, "model.gpus = 0 is not allowed; expected an integer ≥ 1 "
                                      "and ≤ 1024")]:
            await pilot.press("r")
            await settle(pilot)
            if crossval:
                await pilot.click("#crossval")
            app.screen.query_one(field).value = value
            await pilot.click("#start")
            await settle(pilot)
            shown = " ".join(str(app.screen.query_one("#retrain-error").render()).split())
            assert shown == " ".join(message.split()) or shown.startswith(message), shown
            await pilot.press("escape")
            await settle(pilot)
        assert len(db(project).jobs()) == 2
        # more than one GPU: the job asks for torchrun ranks
        await pilot.press("r")
        await settle(pilot)
        app.screen.query_one("#gpus").value = "2"
        await pilot.click("#start")
        await settle(pilot)
        jobs = db(project).jobs()
        assert (jobs[0].kind, jobs[0].params) == ("train", {"epochs": 8, "gpus": 2})


async def test_retrain_dialog_one_gpu_overrides_the_configured_number(project):
    (project / "segtriage.toml").write_text("[model]\ngpus = 4\n")
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        gpus = app.screen.query_one("#gpus")
        assert gpus.value == "4"
        gpus.value = "1"
        await pilot.click("#start")
        await settle(pilot)
        (job,) = db(project).jobs()
        assert job.params == {"epochs": 8, "gpus": 1}


async def test_predict_backup_and_cancel(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("p", "b")
        await settle(pilot)
        jobs = db(project).jobs()
        assert [(j.kind, j.params) for j in jobs][::-1] == [("predict", {"scope": "stale"}),
                                                            ("backup", {})]
        await pilot.press("c")                      # nothing runs: the next job to run
        await settle(pilot)
        assert "Cancel predict job #1" in str(app.screen.query_one("#question").render())
        await pilot.press("y")
        await settle(pilot)
        states = {j.kind: j.state for j in db(project).jobs()}
        assert states == {"predict": "cancelled", "backup": "queued"}


async def test_cancel_with_nothing_to_cancel(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        assert not app.screen.is_modal
        assert any("no job" in n.message for n in app._notifications)


async def test_cancel_says_so_when_the_jobs_cannot_be_read(project, monkeypatch):
    import sqlite3

    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)

        def locked():
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(app.store, "active_jobs", locked)
        await pilot.press("c")
        await settle(pilot)
        assert not app.screen.is_modal and app.is_running
        assert any(n.message == "cannot read the jobs: database is locked"
                   for n in app._notifications)


async def test_help_lists_every_action_with_its_key(project):
    from segtriage.tui.app.actions import ACTIONS
    from segtriage.tui.app.screens.help import help_rows

    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        rows = {a_id: keys for _g, items in help_rows(app, app.keymap)
                for keys, _what, a_id in items}
        assert set(rows) == {a.id for a in ACTIONS}
        assert rows["edit"] == "e ⏎" and rows["help"] == "?" and rows["page_down"] == "pgdn ^d"
        text = screen_text(app)
        assert "open the mask in the external editor" in text and "replace_with_prediction" in text
        await pilot.press("escape")
        assert not app.screen.is_modal


async def test_keymap_from_config_rebinds_and_help_follows(project):
    (project / "segtriage.toml").write_text(
        '[keymap]\naccept = "A"\ncursor_down = "ctrl+n"\nnope = "z"\n')
    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert any("keymap.nope: no such action" in n.message for n in app._notifications)
        await pilot.press("a")
        await settle(pilot)
        assert db(project).image("alpha.png").status == "unreviewed"
        await pilot.press("A")
        await settle(pilot)
        assert db(project).image("alpha.png").status == "accepted"
        assert cursor_name(app) == "delta.png"
        await pilot.press("j")                       # rebound away: j does nothing now
        assert cursor_name(app) == "delta.png"
        await pilot.press("ctrl+n")                  # list-scope actions are rebindable too
        assert cursor_name(app) == "charlie.png"
        await pilot.press("question_mark")
        await settle(pilot)
        assert re.search(r"█  A +mark the mask as correct", screen_text(app))


async def test_messages_name_the_keys_as_bound(project):
    """A message that says which key to press names the key the keymap gave the action."""
    (project / "segtriage.toml").write_text('[keymap]\npredict = "F"\nbackup = "ctrl+b"\n')
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.key_of("predict") == "F" and app.key_of("undo") == "u"
        await pilot.press("G", "P")                  # a row with no prediction
        await settle(pilot)
        assert any(n.message.endswith("no prediction yet (F predicts)")
                   for n in app._notifications)
        assert app.key_of("backup") == "^b"          # as the help screen shows it
        assert "(^b backs up)" in screen_text(app)   # the fixture has no backup yet


async def test_command_palette_runs_actions(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        for ch in "accept":
            await pilot.press(ch)
        await pilot.pause(0.3)
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert db(project).image("alpha.png").status == "accepted"


async def test_theme_cycles_and_overlay_toggles(project):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.theme == "segtriage-dark"
        await pilot.press("t")
        assert app.theme != "segtriage-dark" and app.theme in app.segtriage_themes
        pv = app.preview
        await pilot.press("m", "o", "v", "O")
        assert (pv.show_mask, pv.show_prediction, pv.show_uncertainty, pv.outline) == \
            (False, False, True, False)
        await settle(pilot)
        assert "□mask" in str(pv.border_subtitle) and "tint" in str(pv.border_subtitle)


async def test_zoom_and_narrow_layout(project):
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.has_class("-narrow")
        assert not app.query_one("#side").display or \
            app.query_one("#side").region.width == 0
        await pilot.press("z")
        await settle(pilot)
        assert app.screen.has_class("-zoom")
        assert app.query_one("#preview").region.width > 20
        await pilot.press("z")
        assert not app.screen.has_class("-zoom")


async def test_empty_list_and_no_match_say_why(project, tmp_path):
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "z", "z", "z")
        assert shown(app) == []
        assert "no rows match the filters" in screen_text(app)
    empty = tmp_path / "empty"
    empty.mkdir()
    app = make_app(empty)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "0 images" in screen_text(app)
        assert "no images found yet" in screen_text(app)


async def test_bad_theme_name_in_config_falls_back_with_a_message(project):
    (project / "segtriage.toml").write_text('[tui]\ntheme = "nonesuch"\n')
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.theme == "segtriage-dark"
        assert any("'nonesuch' not found" in n.message for n in app._notifications)


async def test_notifications_show_brackets_as_written(project, monkeypatch):
    # "[editor] command" is a config key, not markup: it used to vanish from the toast
    from textual.widgets._toast import Toast

    monkeypatch.setenv("SEGTRIAGE_EDITOR", "no-such-editor-xyz")
    app = make_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        with no_suspend(app):
            await pilot.press("e")
            await settle(pilot)
        # the text a toast draws for each notification
        shown = [str(Toast(n).render()) for n in app._notifications]
        assert any("set [editor] command" in text for text in shown), shown


async def test_an_engine_that_died_in_a_job_is_started_again(project, monkeypatch):
    # kill -9 in a training: the job stays 'running' with no engine holding the lock. The
    # app (which starts the engine at launch) starts it again; its recovery resumes the job.
    from segtriage.tui.app import app as app_mod

    store = db(project)
    jid = store.submit_job("train", {"epochs": 1})
    store.claim_job(pid=999_999)                      # an engine that is gone
    started = []

    def ensure(root):
        started.append(root)
        return None                                   # (still offline: the test has none)

    monkeypatch.setattr(app_mod, "ensure_engine", ensure)
    app = make_app(project, poll_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(4):
            app._refresh_status()
            await settle(pilot)
        assert len(started) == 2                      # at launch, then once: not every refresh
        assert any(f"the engine stopped while train #{jid} ran" in n.message
                   for n in app._notifications)
        assert "stopped with the engine" in screen_text(app)


async def test_a_job_left_queued_by_a_stopped_engine_does_not_start_it(project, monkeypatch):
    # `segtriage engine stop` leaves queued jobs queued: the app must not undo the stop
    from segtriage.tui.app import app as app_mod

    db(project).submit_job("train", {"epochs": 1})
    started = []
    monkeypatch.setattr(app_mod, "ensure_engine", lambda root: started.append(root))
    app = make_app(project, start_engine=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        n_launch = len(started)
        for _ in range(3):
            app._refresh_status()
            await settle(pilot)
        assert len(started) == n_launch


async def test_the_retrain_dialog_fits_a_24_row_terminal(project):
    # its Start and Cancel buttons fell off the bottom of an 80x24 terminal
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        text = screen_text(app)
        assert "Start" in text and "Cancel" in text and "Folds" in text
