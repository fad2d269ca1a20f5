"""The SQLite contract: schema, migrations, jobs, staleness, concurrency."""

import sqlite3
import threading

import pytest

from segtriage.engine import store as store_mod
from segtriage.engine.store import SCHEMA_VERSION, Store, StoreError
from segtriage.engine.store.rows import ListHead


@pytest.fixture
def st(tmp_path):
    return Store(tmp_path / ".segtriage" / "state.db")


def test_new_store_is_wal_at_current_schema(st, tmp_path):
    assert st.schema_version() == SCHEMA_VERSION
    assert st.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for sub in ("models", "preds", "logs"):
        assert (tmp_path / ".segtriage" / sub).is_dir()
    assert (tmp_path / ".segtriage").stat().st_mode & 0o777 == 0o700


def test_migrates_a_version_1_database_forward(tmp_path):
    db = tmp_path / ".segtriage" / "state.db"
    db.parent.mkdir()
    c = sqlite3.connect(db)
    c.executescript(store_mod.MIGRATIONS[0])
    c.execute("PRAGMA user_version=1")
    c.execute("INSERT INTO images(path, status, added_at, updated_at) "
              "VALUES('old.png', 'accepted', 1, 1)")
    c.commit()
    c.close()
    st = Store(db)
    assert st.schema_version() == SCHEMA_VERSION
    assert st.image("old.png").status == "accepted"  # data survives the migration
    names = {r[0] for r in st.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "scores_model" in names


def test_refuses_a_newer_schema(tmp_path):
    db = tmp_path / "state.db"
    c = sqlite3.connect(db)
    c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    c.close()
    with pytest.raises(StoreError, match="newer"):
        Store(db)


def test_job_lifecycle_and_cancel(st):
    j = st.submit_job("train", {"epochs": 2})
    assert st.job(j).state == "queued"
    claimed = st.claim_job(pid=123)
    assert claimed.id == j and claimed.state == "running" and claimed.attempts == 1
    assert st.claim_job(pid=123) is None  # nothing else queued
    assert st.update_job(j, progress=0.5, message="epoch 1") is False
    assert st.request_cancel(j) is True
    assert st.update_job(j, progress=0.6) is True  # the runner sees the request
    st.finish_job(j, "cancelled")
    assert st.job(j).state == "cancelled"
    assert st.request_cancel(j) is False


def test_queued_job_cancelled_at_once(st):
    j = st.submit_job("predict", {"scope": "all"})
    assert st.request_cancel(j)
    assert st.job(j).state == "cancelled"
    assert st.claim_job(pid=1) is None


def test_unknown_job_kind_is_refused(st):
    with pytest.raises(ValueError, match="unknown job kind"):
        st.submit_job("fly")


def test_recover_interrupted_requeues_with_params(st):
    j = st.submit_job("predict", {"scope": "all"})
    st.claim_job(pid=1)
    new = st.recover_interrupted()
    assert st.job(j).state == "interrupted"
    assert len(new) == 1
    nj = st.job(new[0])
    assert nj.state == "queued" and nj.params == {"scope": "all", "resumed_from": j}


def test_a_job_the_engine_keeps_dying_in_is_not_run_forever(st):
    j = st.submit_job("train", {"epochs": 3})
    st.claim_job(pid=1)
    (j2,) = st.recover_interrupted(crashed=True)          # the engine died once: run again
    assert st.job(j2).params == {"epochs": 3, "resumed_from": j, "crashes": 1}
    st.claim_job(pid=2)
    (j3,) = st.recover_interrupted()                      # a clean stop does not count
    assert st.job(j3).params == {"epochs": 3, "resumed_from": j2, "crashes": 1}
    st.claim_job(pid=3)
    assert st.recover_interrupted(crashed=True) == []     # died again: not a third time
    failed = st.job(j3)
    assert failed.state == "failed" and "died 2 times" in failed.error
    assert st.active_jobs() == []


def test_staleness_follows_model_and_content(st):
    i = st.upsert_image("a.png", mask_path="a_mask.png", img_sha256="I1", mask_sha256="M1",
                        status="unreviewed")
    m1 = st.add_model(kind="plain", arch="resnet18", weights=["m1.pt"], config={}, epochs=1,
                      train_loss=1, valid_loss=1, valid_dice=0.5, n_train=1, n_valid=1,
                      manifest=[])
    st.put_score(i, m1, fold=None, image_sha256="I1", mask_sha256="M1", precision="cpu-fp32",
                 prob_path="p.png", category="agrees", metrics={"dice": 0.9, "extra": 3})
    (row,) = st.review_rows(full=True)
    assert row.stale is False and row.get("dice") == 0.9 and row.get("extra") == 3
    st.upsert_image("a.png", mask_sha256="M2")  # the mask was edited
    assert st.review_rows()[0].stale is True
    st.upsert_image("a.png", mask_sha256="M1")
    assert st.review_rows()[0].stale is False
    st.add_model(kind="plain", arch="resnet18", weights=["m2.pt"], config={}, epochs=1,
                 train_loss=1, valid_loss=1, valid_dice=0.5, n_train=1, n_valid=1, manifest=[])
    assert st.review_rows()[0].stale is True  # a new current model
    assert [r.path for r in st.unscored_or_stale(st.current_model_id())] == ["a.png"]
    st.set_current_model(m1)
    assert st.review_rows()[0].stale is False
    with pytest.raises(StoreError):
        st.set_current_model(99)


def test_bad_status_is_refused(st):
    with pytest.raises(ValueError):
        st.upsert_image("x.png", status="great")


def test_concurrent_writers_lose_no_decision(tmp_path):
    """Two clients and an engine writing at once: no 'database is locked', nothing lost."""
    db = tmp_path / ".segtriage" / "state.db"
    st = Store(db)
    ids = [st.upsert_image(f"{i}.png", status="unreviewed") for i in range(60)]
    errors = []

    def client(part, status):
        s = Store(db)
        try:
            for i in part:
                s.set_status([i], status)
        except Exception as e:  # pragma: no cover - the failure we test for
            errors.append(e)

    def engine():
        s = Store(db)
        try:
            j = s.submit_job("predict")
            for k in range(60):
                s.update_job(j, progress=k / 60, message="x")
                s.add_event("log", {"k": k})
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=client, args=(ids[:30], "accepted")),
          threading.Thread(target=client, args=(ids[30:], "flagged")),
          threading.Thread(target=engine)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    counts = st.status_counts()
    assert counts == {"accepted": 30, "flagged": 30}
    assert len(st.events(kind="decision")) == 60


def test_data_version_moves_on_foreign_commit(tmp_path):
    db = tmp_path / "state.db"
    a, b = Store(db), Store(db)
    v0 = a.data_version()
    b.set_meta("x", 1)
    assert a.data_version() != v0


def test_rows_stamp_moves_on_row_changes_only(st):
    s0 = st.rows_stamp()
    i = st.upsert_image("a.png", status="unreviewed")
    s1 = st.rows_stamp()
    assert s1 != s0
    st.set_engine_state(state="idle")  # a heartbeat is not a row change
    j = st.submit_job("predict")
    st.update_job(j, progress=0.5)
    assert st.rows_stamp() == s1
    st.set_status([i], "accepted")
    s2 = st.rows_stamp()
    assert s2 != s1
    m = st.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                     train_loss=None, valid_loss=None, valid_dice=None, n_train=0, n_valid=0,
                     manifest=[])
    s3 = st.rows_stamp()
    assert s3 != s2  # a new current model makes rows stale
    st.put_score(i, m, fold=None, image_sha256=None, mask_sha256=None, precision="x",
                 prob_path=None, category="agrees", metrics={})
    assert st.rows_stamp() != s3
    st.delete_image("a.png")
    assert st.rows_stamp() != s3


def test_list_rows_matches_review_rows(st):
    i = st.upsert_image("a.png", mask_path="a_mask.png", img_sha256="I", mask_sha256="M",
                        status="unreviewed")
    st.upsert_image("b.png", status="no-mask")
    m = st.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                     train_loss=None, valid_loss=None, valid_dice=None, n_train=0, n_valid=0,
                     manifest=[])
    st.put_score(i, m, fold=None, image_sha256="I", mask_sha256="OLD", precision="x",
                 prob_path="p.png", category="disagrees", metrics={"priority": 2.5, "dice": 0.1})
    lean = {r.path: r for r in st.list_rows()}
    full = {r.path: r for r in st.review_rows()}
    for path in ("a.png", "b.png"):
        for k in ("id", "status", "category", "priority", "dice", "model_id", "prob_path"):
            assert getattr(lean[path], k) == full[path].get(k)
        assert bool(lean[path].stale) == full[path].stale
    assert lean["a.png"].stale and not lean["b.png"].stale


def test_migrates_a_version_3_database_forward_with_the_priority_index(tmp_path):
    """v3 → v4 adds scores_priority (v5 the images' fingerprint index, v6 a column); rows
    and scores written under v3 are kept."""
    db = tmp_path / ".segtriage" / "state.db"
    db.parent.mkdir()
    c = sqlite3.connect(db)
    for step in store_mod.MIGRATIONS[:3]:
        c.executescript(step)
    c.execute("PRAGMA user_version=3")
    c.execute("INSERT INTO images(id, path, status, added_at, updated_at) "
              "VALUES(1, 'old.png', 'accepted', 1, 1)")
    c.execute("INSERT INTO models(id, created_at) VALUES(1, 1)")
    c.execute("INSERT INTO scores(image_id, model_id, computed_at, priority) VALUES(1, 1, 1, 0.7)")
    c.commit()
    names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "scores_priority" not in names
    c.close()
    st = Store(db)
    assert st.schema_version() == SCHEMA_VERSION == 8
    names = {r[0] for r in st.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"scores_priority", "images_fingerprint"} <= names
    assert st.image("old.png").status == "accepted"
    assert st.score(1).get("priority") == 0.7
    assert st.rows_stamp()[0] is not None  # v3's trigger counter survived


def _model(st):
    return st.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                        train_loss=None, valid_loss=None, valid_dice=None, n_train=0,
                        n_valid=0, manifest=[])


def _review_order(rows):
    """The list's default order, written out: priority descending, None last, ties by path."""
    have = sorted((r for r in rows if r.priority is not None),
                  key=lambda r: (-r.priority, r.path))
    return have + sorted((r for r in rows if r.priority is None), key=lambda r: r.path)


def test_list_head_is_the_top_of_the_review_order(st):
    import random

    rng = random.Random(3)
    m1 = _model(st)
    ids = {}
    for k in range(60):
        path = f"im/{rng.randrange(10 ** 6):06d}_{k}.png"
        ids[path] = st.upsert_image(path, mask_path=None, img_sha256="I", mask_sha256=None,
                                    status="unreviewed")
    paths = list(ids)
    for p in paths[:45]:  # scored by model 1; a few exact ties
        st.put_score(ids[p], m1, fold=None, image_sha256="I", mask_sha256=None, precision="x",
                     prob_path=None, category="agrees",
                     metrics={"priority": rng.choice([0.5, 1.0, rng.random() * 3])})
    m2 = _model(st)
    for p in paths[:10]:
        # the newest score decides: lower priority now, or none at all (an error row)
        st.put_score(ids[p], m2, fold=None, image_sha256="I", mask_sha256=None, precision="x",
                     prob_path=None, category="uncertain",
                     metrics={"priority": None if p in paths[:3] else -1.0})
    full = _review_order(list(st.list_rows()))
    assert [r.path for r in full][:3] != sorted(paths)[:3]  # not trivially name order
    for limit in (1, 5, 40, 42, 50, 60, 100):
        head = st.list_head(limit)
        assert head.total == 60
        assert (head.first_path, head.last_path) == (min(paths), max(paths))
        assert head.rows == full[:limit]  # every column, staleness included
    stale = {r.path: r.stale for r in st.list_head(60).rows}
    assert stale[paths[0]] == 0 and stale[paths[20]] == 1  # scored by the old model only


def test_list_head_of_an_empty_or_unscored_project(st):
    assert st.list_head(10) == ListHead(rows=[], total=0, first_path=None, last_path=None)
    for name in ("c.png", "a.png", "b.png"):
        st.upsert_image(name, status="no-mask")
    head = st.list_head(2)
    assert [r.path for r in head.rows] == ["a.png", "b.png"] and head.total == 3


def test_list_head_walks_the_priority_index(st):
    """The scored part is read from the top of scores_priority, not by scanning and sorting
    every score row: the plan names the index and sorts only ties ('RIGHT PART')."""
    plan = " | ".join(r[3] for r in st.conn.execute(
        "EXPLAIN QUERY PLAN " + st._HEAD_SCORED_SQL, (1, 200)))
    assert "USING INDEX scores_priority" in plan
    assert "SCAN s" not in plan
    assert "TEMP B-TREE FOR RIGHT PART OF ORDER BY" in plan


def test_list_head_stays_fast_on_many_rows(st):
    """20k scored rows: the head reads a handful of index steps (SQLite's VM step counter
    through the progress handler), not every row."""
    m = _model(st)
    with st.tx() as c:
        c.executemany("INSERT INTO images(id, path, status, added_at, updated_at) "
                      "VALUES(?, ?, 'unreviewed', 0, 0)",
                      [(i, f"{i:06d}.png") for i in range(1, 20_001)])
        c.executemany("INSERT INTO scores(image_id, model_id, computed_at, priority) "
                      "VALUES(?, ?, 0, ?)", [(i, m, (i * 7919) % 20_000 / 7.0)
                                             for i in range(1, 20_001)])

    def steps(fn) -> int:
        n = [0]

        def tick():
            n[0] += 1
            return 0
        st.conn.set_progress_handler(tick, 100)
        try:
            fn()
        finally:
            st.conn.set_progress_handler(None, 100)
        return n[0]

    whole = steps(lambda: list(st.list_rows()))
    head = steps(lambda: st.list_head(200))
    rows = st.list_head(200).rows
    assert [r.priority for r in rows] == sorted((r.priority for r in rows), reverse=True)
    assert rows[0].priority == max(r.priority for r in st.list_rows())
    assert head * 20 < whole, (head, whole)


@pytest.mark.parametrize("had_partial", [False, True])
def test_v5_databases_with_or_without_the_partial_column_migrate(tmp_path, had_partial):
    # development builds of v5 added backups.partial already; v6 adds it where missing
    db = tmp_path / ".segtriage" / "state.db"
    db.parent.mkdir()
    c = sqlite3.connect(db)
    for step in store_mod.MIGRATIONS[:5]:
        c.executescript(step)
    if had_partial:
        c.execute("ALTER TABLE backups ADD COLUMN partial INTEGER NOT NULL DEFAULT 0")
    c.execute("PRAGMA user_version=5")
    c.commit()
    c.close()
    st = Store(db)
    assert st.schema_version() == SCHEMA_VERSION == 8
    st.add_backup(destination="d", snapshot="s1", files=1, bytes_added=1, masks_changed=0)
    st.add_backup(destination="d", snapshot="s2", files=1, bytes_added=0, masks_changed=0,
                  partial=True)
    assert st.last_backup().snapshot == "s1"


def test_v6_databases_get_the_outline_bias_column(tmp_path):
    # scoring version 4's outline_bias became a column; a value already in a row's metrics
    # JSON moves into it, rows without one stay NULL until they are re-scored
    db = tmp_path / ".segtriage" / "state.db"
    db.parent.mkdir()
    c = sqlite3.connect(db)
    for step in store_mod.MIGRATIONS[:6]:
        if callable(step):
            step(c)
        else:
            c.executescript(step)
    c.execute("PRAGMA user_version=6")
    c.execute("INSERT INTO images(id, path, status, added_at, updated_at) "
              "VALUES(1, 'a.png', 'accepted', 1, 1), (2, 'b.png', 'unreviewed', 1, 1)")
    c.execute("INSERT INTO models(id, created_at) VALUES(1, 1)")
    c.execute("INSERT INTO scores(image_id, model_id, computed_at, priority, metrics) "
              "VALUES(1, 1, 1, 0.7, '{\"outline_bias\": -0.5}'), (2, 1, 1, 0.2, '{}')")
    c.commit()
    c.close()
    st = Store(db)
    assert st.schema_version() == SCHEMA_VERSION == 8
    got = {r.path: r.outline_bias for r in st.list_rows()}
    assert got == {"a.png": -0.5, "b.png": None}
