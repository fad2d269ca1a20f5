"""The client-side review model: sort (None last, stable), filters, counts, summaries."""

from __future__ import annotations

from dataclasses import fields

from segtriage.engine.store.rows import ListRow
from segtriage.tui.app.data import CATEGORY_ORDER, SORTS, ReviewModel, rows_from_list


def rows_from_dicts(dicts):
    """List rows from the columns a test cares about (the rest empty)."""
    empty = {f.name: None for f in fields(ListRow)} | {"status": "unreviewed", "stale": False}
    return rows_from_list([ListRow(**(empty | d)) for d in dicts])


def _rows():
    return rows_from_dicts([
        dict(id=1, path="images/b.png", status="accepted", priority=0.5, dice=0.9,
             category="agrees", n_pred=1, n_mask=1, model_id=1),
        dict(id=2, path="images/a.png", status="unreviewed", priority=2.5, dice=0.2,
             category="disagrees", n_pred=4, n_mask=1, model_id=1),
        dict(id=3, path="images/c.png", status="no-mask", priority=None, dice=None),
        dict(id=4, path="images/d.png", status="flagged", priority=1.5, dice=0.2,
             category="uncertain", n_pred=2, n_mask=2, model_id=1, stale=1),
    ])


def names(m):
    return [r.name for r in m.view]


def test_names_drop_the_common_folder():
    assert sorted(r.name for r in _rows()) == ["a.png", "b.png", "c.png", "d.png"]
    mixed = rows_from_dicts([dict(id=1, path="x/a.png"), dict(id=2, path="y/b.png")])
    assert [r.name for r in mixed] == ["x/a.png", "y/b.png"]
    nested = rows_from_dicts([dict(id=1, path="im/x/a.png"), dict(id=2, path="im/y/b.png")])
    assert [r.name for r in nested] == ["x/a.png", "y/b.png"]
    top = rows_from_dicts([dict(id=1, path="a.png"), dict(id=2, path="im/b.png")])
    assert [r.name for r in top] == ["a.png", "im/b.png"]


def test_review_order_is_priority_descending_with_unscored_last():
    m = ReviewModel(_rows())
    assert m.sort.id == "review" and m.descending
    assert names(m) == ["a.png", "d.png", "b.png", "c.png"]


def test_sort_keeps_name_order_on_ties_and_none_last_both_ways():
    m = ReviewModel(_rows())
    m.set_sort("dice")                       # worst first: 0.2 (a, d by name), 0.9, None
    assert names(m) == ["a.png", "d.png", "b.png", "c.png"]
    m.reverse()
    assert names(m) == ["b.png", "a.png", "d.png", "c.png"]


def test_category_sorts_in_the_scorers_order():
    from segtriage.engine.project.scoring import CATEGORIES

    assert list(CATEGORY_ORDER) == list(CATEGORIES)
    m = ReviewModel(_rows())
    m.set_sort("category")
    assert names(m) == ["a.png", "d.png", "b.png", "c.png"]


def test_outline_sort_puts_the_tightest_masks_first():
    rows = rows_from_dicts([dict(id=1, path="a.png", outline_bias=0.1),
                            dict(id=2, path="b.png", outline_bias=-0.7),
                            dict(id=3, path="c.png", outline_bias=None),  # no shared object
                            dict(id=4, path="d.png", outline_bias=0.6)])
    m = ReviewModel(rows)
    m.set_sort("outline")
    assert names(m) == ["b.png", "a.png", "d.png", "c.png"]
    m.reverse()                              # too loose first, None still last
    assert names(m) == ["d.png", "a.png", "b.png", "c.png"]


def test_objects_sort_by_mismatch():
    m = ReviewModel(_rows())
    m.set_sort("objects")
    assert names(m) == ["a.png", "b.png", "d.png", "c.png"]  # |4-1|=3 first, ties by name


def test_next_sort_cycles_through_every_column():
    m = ReviewModel(_rows())
    seen = [m.sort.id]
    for _ in SORTS[1:]:
        m.next_sort()
        seen.append(m.sort.id)
    m.next_sort()
    assert seen == [s.id for s in SORTS] and m.sort.id == "review"


def test_filters_combine_and_clear():
    m = ReviewModel(_rows())
    m.set_filter(name="A")
    assert names(m) == ["a.png"]
    m.set_filter(name="", status="flagged")
    assert names(m) == ["d.png"] and m.filtered
    m.set_filter(status=None, category="")   # "" = rows without a category
    assert names(m) == ["c.png"]
    m.set_filter(category=None)
    assert not m.filtered and len(m.view) == 4


def test_next_needing_review_wraps():
    m = ReviewModel(_rows())                 # a (unreviewed), d, b, c (no-mask)
    assert m.next_needing_review(0) == 3
    assert m.next_needing_review(3) == 0


def test_summary_counts_means_and_histogram():
    m = ReviewModel(_rows())
    m.set_sort("dice")
    s = m.summary()
    assert s["n"] == 4 and s["scored"] == 3 and s["stale"] == 1
    assert s["status"] == {"accepted": 1, "unreviewed": 1, "no-mask": 1, "flagged": 1}
    assert s["category"] == {"agrees": 1, "disagrees": 1, "unscored": 1, "uncertain": 1}
    assert abs(s["means"]["dice"] - (0.9 + 0.2 + 0.2) / 3) < 1e-12
    # dice 0.2, 0.2, 0.9 in 4 bins over [0.2, 0.9]; the unscored row is left out
    assert m.histogram(bins=4) == {"title": "Dice", "lo": 0.2, "hi": 0.9, "counts": [2, 0, 0, 1]}
    m.set_sort("objects")                    # |n_pred - n_mask|: 0, 3, 0
    assert m.histogram(bins=3)["counts"] == [2, 0, 1]
    m.set_sort("name")
    assert m.histogram() is None
    m.set_sort("status")
    assert m.histogram() is None


def test_change_watch_reloads_rows_only_when_their_stamp_moves():
    from segtriage.tui.app.data import ChangeWatch

    class FakeStore:
        version, stamp = 1, ("a",)

        def data_version(self):
            return self.version

    store = FakeStore()
    watch = ChangeWatch(store)
    assert watch.changed() and watch.rows_changed()      # no rows_stamp(): assume a change
    assert not watch.changed()
    store.rows_stamp = lambda: store.stamp
    assert watch.rows_changed() and not watch.rows_changed()
    store.version = 2                                    # a heartbeat: data moved, rows not
    assert watch.changed() and not watch.rows_changed()
    store.stamp = ("b",)
    assert watch.rows_changed()


def test_small_lists_sort_like_numpy(monkeypatch):
    """The first page is sorted in plain Python (no numpy import before the first frame):
    the same order as numpy's argsort for every column and direction, ties and None."""
    import random

    from segtriage.tui.app import data

    rng = random.Random(7)
    dicts = []
    for i in range(300):
        scored = rng.random() < 0.8
        pick = (lambda *v: rng.choice(v)) if scored else (lambda *v: None)
        dicts.append(dict(
            id=i, path=f"d{rng.randrange(4)}/{rng.randrange(10 ** 5):05d}_{i}.png",
            status=rng.choice(["unreviewed", "accepted", "flagged", "no-mask", "edited"]),
            priority=pick(0.5, 1.0, rng.random() * 3, -0.0, 0.0),
            confidence=pick(rng.random(), 0.9), label_quality=pick(rng.random()),
            dice=pick(rng.random(), 1.0), ce=pick(rng.random() * 2),
            category=pick("agrees", "disagrees", "uncertain", "no-model"),
            n_pred=pick(0, 1, 5), n_mask=pick(0, 2, 3), outline_bias=pick(rng.random() - 0.5),
            model_id=1 if scored else None))
    rows = rows_from_dicts(dicts)
    for sort in SORTS:
        for rev in (False, True):
            monkeypatch.setattr(data, "SMALL_SORT", 10 ** 6)
            small = ReviewModel(rows)
            small.set_sort(sort.id, reversed=rev)
            monkeypatch.setattr(data, "SMALL_SORT", 0)
            big = ReviewModel(rows)
            big.set_sort(sort.id, reversed=rev)
            assert small.order == big.order, (sort.id, rev)
            assert small.histogram() == big.histogram()


def test_common_dir_of_the_smallest_and_largest_path_is_that_of_all():
    """The first page names its rows from the path range alone (store.list_head)."""
    import random

    from segtriage.tui.app.data import common_dir

    rng = random.Random(11)
    parts = ["im", "img", "a", "a/b", "im/x", "im/x/y", "", "imA"]
    for _ in range(2000):
        paths = []
        for _k in range(rng.randrange(1, 6)):
            d = rng.choice(parts)
            paths.append((d + "/" if d else "") + rng.choice(["p.png", "q.png", "b.png", "x"]))
        assert common_dir([min(paths), max(paths)]) == common_dir(paths), paths


def test_load_head_is_the_top_of_the_full_load(tmp_path):
    from segtriage.engine.store import Store
    from segtriage.tui.app.data import load_head, load_rows

    st = Store(tmp_path / ".segtriage" / "state.db")
    m = st.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                     train_loss=None, valid_loss=None, valid_dice=None, n_train=0, n_valid=0,
                     manifest=[])
    for i in range(30):
        iid = st.upsert_image(f"images/s{i % 3}/{i:03d}.png", status="unreviewed")
        if i % 4:
            st.put_score(iid, m, fold=None, image_sha256=None, mask_sha256=None,
                         precision="x", prob_path=None, category="agrees",
                         metrics={"priority": (i * 37 % 11) / 3, "dice": i / 30})
    full = ReviewModel(load_rows(st))
    rows, total = load_head(st, 12)
    assert total == 30 and len(rows) == 12
    assert [r.path for r in rows] == sorted(r.path for r in rows)   # path order, like load_rows
    head = ReviewModel()
    head.set_rows(rows, total)
    assert head.partial and head.missing == 18
    got = [(r.id, r.name, r.priority, r.stale) for r in head.view]
    want = [(r.id, r.name, r.priority, r.stale) for r in full.view[:12]]
    assert got == want and got[0][1].startswith("s")             # "images/" dropped as in full
    all_rows, total = load_head(st, 100)
    whole = ReviewModel()
    whole.set_rows(all_rows, total)
    assert not whole.partial and [r.id for r in whole.view] == [r.id for r in full.view]


def test_a_first_page_has_no_counts_or_histogram():
    m = ReviewModel()
    m.set_rows(_rows(), total=1000)
    assert m.partial and m.missing == 996
    assert names(m) == ["a.png", "d.png", "b.png", "c.png"]
    assert m.summary() == {"loading": True, "n": 1000}
    assert m.histogram() is None
    m.set_sort("dice")                       # sorts and filters work on what is there
    assert names(m) == ["a.png", "d.png", "b.png", "c.png"]
    whole = ReviewModel()
    whole.set_rows(_rows(), total=4)         # the page held every row: a whole list
    assert not whole.partial and whole.summary()["n"] == 4
