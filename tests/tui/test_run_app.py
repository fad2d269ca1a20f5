"""run_app: it runs the app on a project folder; its refusals are each a one-line message on
stderr and status 2, before any screen."""

from __future__ import annotations

import gc

from segtriage.tui.app.app import SegtriageApp, run_app


def test_a_project_folder_runs_the_app_with_the_start_up_heap_frozen(tmp_path, monkeypatch):
    seen = []

    def run(self):
        seen.append((self.root, self.renderer.name, gc.get_freeze_count() > 0))
        return 0

    monkeypatch.setattr(SegtriageApp, "run", run)
    monkeypatch.setattr(gc, "freeze", lambda: seen.append("freeze"))
    monkeypatch.setattr(gc, "get_freeze_count", lambda: seen.count("freeze"))
    assert run_app(tmp_path, renderer="halfcell", start_engine=False) == 0
    assert seen == ["freeze", (tmp_path.resolve(), "halfcell", True)]


def test_not_a_folder(tmp_path, capsys):
    assert run_app(tmp_path / "nope") == 2
    assert "nope: not a folder" in capsys.readouterr().err


def test_bad_config_names_file_and_key(tmp_path, capsys):
    (tmp_path / "segtriage.toml").write_text("[tui]\nimage_renderer = \"fax\"\n")
    assert run_app(tmp_path) == 2
    err = capsys.readouterr().err
    assert "segtriage.toml" in err and "tui.image_renderer" in err


def test_unknown_renderer(tmp_path, capsys):
    assert run_app(tmp_path, renderer="fax") == 2
    assert "unknown image renderer 'fax'" in capsys.readouterr().err


def test_newer_state_database(tmp_path, capsys):
    import sqlite3

    state = tmp_path / ".segtriage"
    state.mkdir()
    con = sqlite3.connect(state / "state.db")
    con.execute("PRAGMA user_version=999")
    con.close()
    assert run_app(tmp_path) == 2
    assert "newer than this segtriage" in capsys.readouterr().err
