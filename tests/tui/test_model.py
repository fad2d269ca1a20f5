"""The client-side review model: sort (None last, stable), filters, counts, summaries."""

from __future__ import annotations

from segtriage.tui.data import CATEGORY_ORDER, SORTS, ReviewModel, rows_from_dicts


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
    from segtriage.engine.scoring import CATEGORIES

    assert list(CATEGORY_ORDER) == list(CATEGORIES)
    m = ReviewModel(_rows())
    m.set_sort("category")
    assert names(m) == ["a.png", "d.png", "b.png", "c.png"]


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
    from segtriage.tui.data import ChangeWatch

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
