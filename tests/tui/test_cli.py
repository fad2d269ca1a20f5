"""The command line's own behaviour on the fixture project: sorting and columns of `report`,
and a clear message (no traceback, nothing created) for every kind of wrong input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from segtriage.tui import cli
from segtriage.tui.cli import common, follow
from segtriage.engine.project.project import Project

EXE = [sys.executable, "-m", "segtriage.tui.cli"]


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def names(rows) -> list[str]:
    return [r["image"] for r in rows]


def test_report_reverse_flips_the_columns_own_direction(project, capsys):
    _, out, _ = run(capsys, "report", project, "--format", "json")
    default = json.loads(out)
    # priority descending, unscored rows last either way
    assert names(default)[:4] == ["alpha.png", "delta.png", "charlie.png", "bravo.png"]
    _, out, _ = run(capsys, "report", project, "--format", "json", "--reverse")
    assert names(json.loads(out))[:4] == ["bravo.png", "charlie.png", "delta.png", "alpha.png"]
    _, out, _ = run(capsys, "report", project, "--format", "json", "--sort", "dice")
    assert names(json.loads(out))[:4] == ["alpha.png", "charlie.png", "bravo.png", "delta.png"]
    _, out, _ = run(capsys, "report", project, "--format", "json", "--sort", "dice",
                    "--reverse")  # rows without a value (delta: no mask) stay last
    assert names(json.loads(out))[:4] == ["bravo.png", "charlie.png", "alpha.png", "delta.png"]


def test_report_columns_do_not_depend_on_the_first_row(project, capsys):
    # foxtrot (no mask, no score) comes first: every row still carries every score column
    rc, out, _ = run(capsys, "report", project, "--format", "csv", "--sort", "image",
                     "--reverse")
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["image"] == "foxtrot.png" and rows[0]["priority"] == ""
    for col in ("priority", "dice", "ce", "label_quality", "soft_dice", "n_pred"):
        assert col in rows[0], col
    assert {r["image"]: r["dice"] for r in rows}["bravo.png"] == "1.0"
    _, out, _ = run(capsys, "report", project, "--format", "json", "--sort", "image")
    keys = [set(r) for r in json.loads(out)]
    assert all(k == keys[0] for k in keys) and "soft_dice" in keys[0]
    # a column no row has yet is still a valid sort; a made-up one is not
    assert run(capsys, "report", project, "--sort", "entropy")[0] == 0
    rc, _, err = run(capsys, "report", project, "--sort", "niceness")
    assert rc == 2 and "unknown sort column 'niceness'" in err


def test_report_table_fits_80_columns(project):
    out = subprocess.run([*EXE, "report", str(project)], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "80"}, timeout=60)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and all(len(line) <= 80 for line in lines)
    assert lines[0].split()[:4] == ["~", "image", "status", "category"]
    assert lines[1].split()[0] == "alpha.png"            # whole names, one line per row
    assert any(line.split()[:2] == ["~", "charlie.png"] for line in lines)  # stale
    assert len(lines) == 1 + 6


def test_a_closed_pipe_ends_quietly(project):
    # `segtriage report DIR | head -1`, with the reader gone before the first write
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = subprocess.run([*EXE, "report", str(project), "--format", "json"],
                             stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert out.returncode == 141 and "Traceback" not in out.stderr, out.stderr


def test_a_mistyped_command_is_named(project, capsys):
    rc, _, err = run(capsys, "reprot", project)
    assert rc == 2 and "'reprot' is neither a command nor a folder" in err
    assert "did you mean 'report'" in err
    rc, _, err = run(capsys, "no-such-folder")
    assert rc == 2 and "no-such-folder: no such folder" in err


def test_reading_commands_leave_a_folder_that_was_never_indexed_alone(tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for argv in (["report", fresh], ["status", fresh], ["jobs", fresh], ["models", fresh],
                 ["history", fresh, "a.png"], ["cancel", fresh], ["rollback", fresh, "1"]):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and "is not a segtriage project yet" in err, argv
        assert f"segtriage scan {fresh}" in err
    assert not (fresh / ".segtriage").exists()


def test_a_damaged_state_database_is_a_message(project, capsys):
    (project / ".segtriage" / "state.db").write_bytes(b"this is not sqlite" * 100)
    for name in ("state.db-wal", "state.db-shm"):
        (project / ".segtriage" / name).unlink(missing_ok=True)
    rc, _, err = run(capsys, "report", project)
    assert rc == 2 and "cannot open the project state of" in err
    assert "file is not a database" in err


def test_files_and_bad_sizes_given_where_a_folder_is_made(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    rc, _, err = run(capsys, "init", f)
    assert rc == 2 and "afile: not a folder" in err
    rc, _, err = run(capsys, "demo", f, "--no-tui", "--no-train")
    assert rc == 2 and "afile: not a folder" in err
    rc, _, err = run(capsys, "demo", tmp_path / "d", "--count", "0", "--no-tui", "--no-train")
    assert rc == 2 and "count must be >= 1" in err
    assert f.read_text() == "x"


def test_predict_takes_image_paths_as_a_shell_gives_them(project, monkeypatch):
    store = Project.open(project).store
    monkeypatch.chdir(project.parent)
    got = common.image_paths(project, store, [f"{project.name}/alpha.png",      # from here
                                            "bravo.png",                       # from DIR
                                            str(project / "charlie_mask.png"),  # a mask
                                            "alpha.png"])                      # twice
    assert got == ["alpha.png", "bravo.png", "charlie.png"]
    with pytest.raises(SystemExit) as e:
        common.image_paths(project, store, ["alpha.png", "zulu.png", "/etc/passwd"])
    assert e.value.code == 2


def test_backups_lists_snapshots_with_their_notes_as_written(project):
    from segtriage.engine.project import backup
    from segtriage.engine.project.config import load_config

    snap = backup.snapshot(Project(project, load_config(project), Project.open(project).store),
                           note="[before] fixing")
    out = subprocess.run([*EXE, "backups", str(project)], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "80"}, timeout=60)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["snapshot", "files", "added", "masks", "changed", "note"]
    row = lines[1].split()
    assert row[0] == snap["id"] and row[1] == str(snap["files"]) and row[3] == "MiB"
    assert lines[1].endswith("[before] fixing")     # markup-like text shown as written


def test_the_undo_of_a_restore_elsewhere_restores_there(project, tmp_path, capsys):
    from segtriage.engine.project import backup
    from segtriage.engine.project.config import load_config

    snap = backup.snapshot(Project(project, load_config(project), Project.open(project).store))
    scratch = tmp_path / "scratch dir"
    scratch.mkdir()
    (scratch / "alpha_mask.png").write_bytes(b"scratch junk")
    rc, out, _ = run(capsys, "restore", project, snap["id"], "--to", scratch)
    assert rc == 0
    undo = out.split("`segtriage restore ")[1].split("`")[0]
    assert undo.endswith(f"--to '{scratch}'")
    before = (project / "alpha_mask.png").read_bytes()
    import shlex

    assert run(capsys, "restore", *shlex.split(undo))[0] == 0
    assert (scratch / "alpha_mask.png").read_bytes() == b"scratch junk"
    assert (project / "alpha_mask.png").read_bytes() == before


def test_predict_takes_paths_through_linked_folders_as_written(project, tmp_path,
                                                               monkeypatch):
    # an indexed folder that is a link to another disk, and an image that is a link itself
    import shutil

    from segtriage.engine.project import index
    from segtriage.engine.project.config import load_config

    ext = tmp_path / "external"
    ext.mkdir()
    shutil.copy(project / "alpha.png", ext / "x.png")
    shutil.copy(project / "alpha_mask.png", ext / "x_mask.png")
    (project / "linked").symlink_to(ext, target_is_directory=True)
    (project / "lnk.png").symlink_to(project / "bravo.png")
    store = Project.open(project).store
    index.scan(Project(project, load_config(project), store))
    monkeypatch.chdir(project)
    got = common.image_paths(project, store, ["linked/x.png", str(project / "linked/x_mask.png"),
                                            "lnk.png"])
    assert got == ["linked/x.png", "lnk.png"]


def test_predict_takes_a_path_typed_inside_a_linked_folder(project, tmp_path, monkeypatch):
    import shutil

    from segtriage.engine.project import index
    from segtriage.engine.project.config import load_config

    ext = tmp_path / "external"
    ext.mkdir()
    shutil.copy(project / "alpha.png", ext / "x.png")
    (project / "linked").symlink_to(ext, target_is_directory=True)
    store = Project.open(project).store
    index.scan(Project(project, load_config(project), store))
    monkeypatch.chdir(project / "linked")           # the shell's PWD keeps the link
    monkeypatch.setenv("PWD", str(project / "linked"))
    assert common.image_paths(project, store, ["x.png"]) == ["linked/x.png"]


def test_demo_reopens_its_folder_and_replaces_it_only_when_asked(tmp_path, capsys):
    d = tmp_path / "demo"
    rc, out, _ = run(capsys, "demo", d, "--count", "4", "--size", "32", "--no-tui", "--no-train")
    assert rc == 0 and "4 images of 32²" in out
    edited = d / "img_001_mask.png"
    edited.write_bytes(b"a person's edit")  # stands for an edit: demo must not touch it
    # no settings: the demo that is there is opened as it is
    rc, out, _ = run(capsys, "demo", d, "--no-tui", "--no-train")
    assert rc == 0 and "demo data set:" not in out
    assert edited.read_bytes() == b"a person's edit"
    # other settings: refused with the way out, nothing rewritten
    rc, _, err = run(capsys, "demo", d, "--count", "6", "--no-tui", "--no-train")
    assert rc == 2 and "--count 4 --size 32 --seed 0" in err and "--regenerate" in err
    assert edited.read_bytes() == b"a person's edit" and not (d / "img_005.png").exists()
    # asked to: replaced
    rc, out, _ = run(capsys, "demo", d, "--count", "6", "--regenerate", "--no-tui",
                     "--no-train")
    assert rc == 0 and "6 images of 32²" in out
    assert (d / "img_005.png").exists() and edited.read_bytes() != b"a person's edit"


def test_messages_and_names_with_brackets_print_as_written(project, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per table row
    store = Project.open(project).store
    jid = store.submit_job("backup", {}, requested_by="test")
    store.conn.execute("UPDATE jobs SET state='failed', error=? WHERE id=?",
                       ("Set [backup] destination of the project", jid))
    store.conn.commit()
    (project / "[x] frame.png").write_bytes(b"not a png")
    bracketed = project.parent / "e[red]x"
    project.rename(bracketed)
    project = bracketed
    rc, out, _ = run(capsys, "scan", project)
    assert "e[red]" in out  # the folder's name in the title, not red text
    rc, out, _ = run(capsys, "jobs", project)
    assert "Set [backup] destination" in out
    rc, out, _ = run(capsys, "segment", project)
    assert rc == 1 and "[x] frame.png" in out
    assert out.count("[x] frame.png") == 1  # the file once, not its name and then its path


def test_external_launch_without_ranks_is_refused_before_anything_is_queued(project, capsys):
    rc, _, err = run(capsys, "train", project, "--launch", "external", "--detach")
    assert rc == 2 and "--launch external needs --gpus N" in err and "(now 1)" in err
    assert Project.open(project).store.active_jobs() == []


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "--epochs: model.epochs = 0 is not allowed; expected an integer "
                                 "≥ 1 and ≤ 10000"),
    (["train", "--gpus", "0"], "--gpus: model.gpus = 0 is not allowed; expected an integer ≥ 1 "
                               "and ≤ 1024"),
    (["crossval", "--folds", "1"], "--folds: model.folds = 1 is not allowed; expected an "
                                   "integer ≥ 2 and ≤ 20"),
    (["crossval", "--folds", "50"], "--folds: model.folds = 50 is not allowed"),
    (["crossval", "--folds", "0"], "--folds: model.folds = 0 is not allowed"),
    (["predict", "--gpus", "0"], "--gpus: model.gpus = 0 is not allowed"),
])
def test_a_bad_job_setting_is_refused_with_the_configs_message_before_queueing(
        project, capsys, argv, message):
    rc, _, err = run(capsys, argv[0], project, *argv[1:], "--detach")
    assert rc == 2 and f"segtriage: {message}" in err
    assert Project.open(project).store.jobs() == []


def test_the_arch_choices_are_the_configs(project, capsys):
    from segtriage.engine.project.config import ModelConfig

    with pytest.raises(SystemExit):
        run(capsys, "train", project, "--arch", "resnet99")
    err = capsys.readouterr().err
    allowed = ", ".join(repr(a) for a in ModelConfig.choices("arch"))
    assert f"invalid choice: 'resnet99' (choose from {allowed})" in err
    with pytest.raises(SystemExit):
        run(capsys, "train", "--help")
    assert "one of resnet18, resnet34, resnet50;" in capsys.readouterr().out


def test_cancel_without_an_id_takes_the_running_job_else_the_next_queued_one(project,
                                                                            capsys):
    store = Project.open(project).store
    first, second = store.submit_job("predict"), store.submit_job("backup")
    rc, out, _ = run(capsys, "cancel", project)  # nothing runs: the job that would run next
    assert rc == 0 and out == f"cancel requested for job {first}\n"
    assert [(j.id, j.state) for j in store.jobs()] == [(second, "queued"),
                                                      (first, "cancelled")]
    third = store.submit_job("rescore")
    assert store.claim_job(os.getpid()).id == second  # running now; third waits behind it
    rc, out, _ = run(capsys, "cancel", project)
    assert rc == 0 and out == f"cancel requested for job {second}\n"
    assert store.job(second).cancel_requested and store.job(third).state == "queued"
    store.finish_job(second, "cancelled")
    store.request_cancel(third)
    rc, _, err = run(capsys, "cancel", project)
    assert rc == 2 and "no job is running or queued" in err


def test_review_decisions_and_use_prediction_work_headless(project, capsys, monkeypatch):
    # the app's a, x (and x on a flagged row) and P, from the command line

    monkeypatch.chdir(project)
    rc, out, _ = run(capsys, "accept", project, "alpha.png", "bravo_mask.png")
    assert rc == 0 and "alpha.png: accepted" in out and "bravo.png: accepted" in out
    rc, out, _ = run(capsys, "flag", project, "./charlie.png")
    assert rc == 0 and "charlie.png: flagged" in out
    rc, out, _ = run(capsys, "flag", project, "--clear", "charlie.png", "alpha.png")
    assert rc == 1 and "charlie.png: unreviewed" in out
    assert "alpha.png: left as it is: accepted, not flagged" in out
    # no mask (delta): nothing to accept; flagged and unflagged it is 'no-mask' again
    rc, out, _ = run(capsys, "accept", project, "delta.png")
    assert rc == 1 and "delta.png: left as it is: it has no mask yet" in out
    run(capsys, "flag", project, "delta.png")
    rc, out, _ = run(capsys, "flag", project, "delta.png", "--clear")
    assert rc == 0 and "delta.png: no-mask" in out
    # an unusable mask (another size than its image): accepting it would hide the error
    # and send it into training
    from PIL import Image

    Image.new("L", (3, 3)).save(project / "echo_mask.png")
    run(capsys, "scan", project)
    st = Project.open(project).store
    assert st.image("echo.png").status == "error"
    rc, out, _ = run(capsys, "accept", project, "echo.png")
    assert rc == 1 and "echo.png: left as it is: its mask is unusable" in out
    run(capsys, "flag", project, "echo.png")
    run(capsys, "flag", project, "echo.png", "--clear")
    assert st.image("echo.png").status == "error"
    store = Project.open(project).store
    assert [store.image(f"{n}.png").status for n in ("alpha", "bravo", "charlie")] == [
        "accepted", "accepted", "unreviewed"]
    decisions = [e for e in store.events() if e.kind == "decision"]
    assert decisions and all(e.data["by"] == "cli" for e in decisions)
    # a name that is not an image: a message, no decision at all
    rc, _, err = run(capsys, "accept", project, "alpha.png", "nope.png")
    assert rc == 2 and "nope.png" in err
    before = (project / "alpha_mask.png").read_bytes()
    rc, out, _ = run(capsys, "use-prediction", project, "alpha.png")
    assert rc == 0 and "alpha.png: mask replaced by the prediction" in out
    assert "segtriage revert" in out and (project / "alpha_mask.png").read_bytes() != before
    assert [v.source for v in store.mask_versions("alpha_mask.png")] == ["scan", "prediction"]
    rc, out, err = run(capsys, "use-prediction", project, "echo.png")  # never predicted
    assert rc == 1 and ("no current prediction for echo.png: no prediction of model v1 yet "
                        "(predict it first)") in err


def test_a_follower_restarts_an_engine_that_died_and_follows_the_resumed_job(
        project, capsys, monkeypatch):
    # kill -9 of the engine in a training the CLI follows: the bar used to stand still for
    # ever; now the engine is started again and the job recovery queues is followed to its end
    import threading

    from segtriage.engine.daemon import control

    monkeypatch.setattr(follow, "ENGINE_CHECK_S", 0.05)
    store = Project.open(project).store
    jid = store.submit_job("train", {"epochs": 1})
    store.claim_job(999_999)                           # the engine that died in it
    alive = {"pid": None}
    monkeypatch.setattr(control, "engine_pid", lambda root: alive["pid"])

    def engine_start(root):                            # what a new engine does at start
        st = Project.open(root).store
        st.recover_interrupted(crashed=True)
        alive["pid"] = 4242

        def run():
            job = Project.open(root).store.claim_job(4242)
            Project.open(root).store.finish_job(job.id, "done")
        threading.Timer(0.3, run).start()
        return 4242

    monkeypatch.setattr(follow, "need_engine", engine_start)
    assert follow.follow_job(store, jid, root=project) == 0
    out = capsys.readouterr().out
    assert f"the engine stopped while job {jid} ran: starting it again" in out
    assert f"job {jid} was interrupted; it goes on as job {jid + 1}" in out
    assert f"job {jid + 1} done" in out


def test_a_follower_says_how_a_job_an_engine_stop_interrupted_goes_on(project, capsys,
                                                                       monkeypatch):
    from segtriage.engine.daemon import control

    store = Project.open(project).store
    jid = store.submit_job("train", {"epochs": 1})
    store.claim_job(4242)
    store.recover_interrupted()                         # `segtriage engine stop`
    monkeypatch.setattr(control, "engine_pid", lambda root: None)
    monkeypatch.setattr(follow, "need_engine", lambda root: pytest.fail("must not start it"))
    assert follow.follow_job(store, jid, root=project) == 1
    out = capsys.readouterr().out
    assert f"job {jid} is queued again as job {jid + 1} and runs when it starts" in out


def test_status_says_a_running_job_stopped_with_its_engine(project, capsys):
    store = Project.open(project).store
    store.submit_job("train", {"epochs": 1})
    store.claim_job(999_999)                           # its engine was killed
    rc, out, _ = run(capsys, "status", project)
    assert rc == 0 and "engine   not running" in out
    assert "running 0% (stopped with the engine: it resumes when the engine" in out


def test_a_follower_prints_what_the_job_logs(project, capsys):
    # skipped masks and epochs raised to reach min_steps were only in the engine's log

    store = Project.open(project).store
    jid = store.submit_job("train", {"epochs": 2})
    store.claim_job(4242)
    store.add_event("log", {"message": "epochs raised to 50 to reach min_steps 200 "
                                       "(4 steps/epoch)"}, job_id=jid)
    store.add_event("epoch", {"epoch": 1, "train_loss": 0.5}, job_id=jid)
    store.finish_job(jid, "done")
    assert follow.follow_job(store, jid) == 0
    out = capsys.readouterr().out
    assert "epochs raised to 50 to reach min_steps 200" in out and "epoch 1: train loss" in out


def test_images_are_found_by_the_names_the_app_shows(tmp_path, capsys):
    # split layout: the app lists images/a/x.png as a/x.png; the commands take that too
    import numpy as np
    from PIL import Image

    root = tmp_path / "split"
    for sub in ("a", "b"):
        (root / "images" / sub).mkdir(parents=True)
        (root / "masks" / sub).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "images" / sub / "x.png")
        m = np.zeros((8, 8), np.uint8)
        m[2:5, 2:5] = 255
        Image.fromarray(m).save(root / "masks" / sub / "x.png")
    assert run(capsys, "scan", root)[0] == 0
    rc, out, _ = run(capsys, "accept", root, "a/x.png", "images/b/x.png")
    assert rc == 0 and "images/a/x.png: accepted" in out and "images/b/x.png: accepted" in out


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", "soon"])
def test_idle_exit_takes_a_number_of_seconds(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as e:
        cli.main(["engine", "run", str(tmp_path), "--idle-exit", bad])
    assert e.value.code == 2
    assert f"{bad!r} is not a number of seconds >= 0" in capsys.readouterr().err


def test_history_lists_the_versions_and_marks_the_one_on_disk(project, capsys):
    import numpy as np
    from PIL import Image

    mask = project / "bravo_mask.png"
    before = np.asarray(Image.open(mask))
    Image.fromarray(np.where(before > 0, 0, 255).astype(np.uint8)).save(mask)  # an outside edit
    assert run(capsys, "revert", project, "bravo.png")[0] == 0  # back to the scanned mask
    rc, out, _ = run(capsys, "history", project, "bravo.png", "--json")
    versions = json.loads(out)
    assert rc == 0 and [(v["version"], v["source"], v["current"]) for v in versions] == [
        (1, "scan", False), (2, "editor", False), (3, "revert", True)]
    assert versions[0]["sha"] == versions[2]["sha"] and versions[0]["path"] == "bravo_mask.png"
    rc, out, _ = run(capsys, "history", project, "bravo.png")
    rows = [line for line in out.splitlines() if "│" in line and "revert" in line]
    assert rc == 0 and len(rows) == 1 and "◀" in rows[0]
    assert sum("◀" in line for line in out.splitlines()) == 1
