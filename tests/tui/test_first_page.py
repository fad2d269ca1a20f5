"""Launch on a big project: the first page of the review order shows at once, read from the
store with ORDER BY … LIMIT, while every row loads behind it; the whole list then swaps in
keeping the cursor, the sort and the filters, and decisions made meanwhile."""

from __future__ import annotations

import threading

from segtriage.tui.app import feed as feed_mod

from .conftest import make_app, screen_text, settle, wait_until
from .test_app import REVIEW_ORDER, cursor_name, db, header, shown


class Gate:
    """Holds the full load (the store read done, the rows not handed over) until opened."""

    def __init__(self, monkeypatch):
        self.read = threading.Event()
        self.open = threading.Event()
        self.calls = 0
        real = feed_mod.load_rows

        def gated(store):
            self.calls += 1
            rows = real(store)
            self.read.set()
            assert self.open.wait(20), "the test never let the full load finish"
            return rows

        monkeypatch.setattr(feed_mod, "load_rows", gated)


async def test_first_page_in_review_order_then_the_whole_list_keeps_the_cursor(project,
                                                                               monkeypatch):
    gate = Gate(monkeypatch)
    app = make_app(project, first_page=3)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.model.view, "the first page")
        await pilot.pause()
        # the top three of the review order (priority 0.641, 0.076, 0.066), before the rest
        assert shown(app) == REVIEW_ORDER[:3]
        assert app.model.partial and not app.loaded and not gate.open.is_set()
        text = screen_text(app)
        top = header(app)
        assert "first 3 of 6 images" in top and "loading…" in top
        assert "unreviewed" not in top                      # no counts from a page
        assert "… 3 more images loading" in text
        assert "6 images · loading…" in str(app.query_one("#metrics").render())
        await pilot.press("j", "j")
        assert cursor_name(app) == "charlie.png"
        await wait_until(pilot, gate.read.is_set, "the full load reads the store")
        gate.open.set()
        await wait_until(pilot, lambda: app.loaded, "the whole list")
        await settle(pilot)
        assert shown(app) == REVIEW_ORDER and not app.model.partial
        assert cursor_name(app) == "charlie.png" and app.result_list.cursor == 2
        top = header(app)
        assert "6 images" in top and "4 unreviewed" in top and "2 no-mask" in top
        assert "loading" not in top and "more images loading" not in screen_text(app)
        metrics = str(app.query_one("#metrics").render())
        assert "6 images · 4 scored" in metrics and "charlie" in metrics
        assert gate.calls == 1                               # one full load, not two


async def test_sort_and_filter_chosen_during_the_load_survive_the_swap(project, monkeypatch):
    gate = Gate(monkeypatch)
    app = make_app(project, first_page=3)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.model.view, "the first page")
        await pilot.press("s")                              # confidence, least first
        assert shown(app) == ["charlie.png", "delta.png", "alpha.png"]
        await pilot.press("slash", "a", "enter")            # names with an "a"
        await pilot.press("k")                              # from alpha, kept by both
        assert cursor_name(app) == "delta.png"
        gate.open.set()
        await wait_until(pilot, lambda: app.loaded, "the whole list")
        await settle(pilot)
        assert app.model.sort.id == "confidence" and app.model.name_filter == "a"
        assert shown(app) == ["charlie.png", "delta.png", "alpha.png", "bravo.png"]
        assert cursor_name(app) == "delta.png"
        assert "sort: confidence ▲" in header(app) and "name~a" in header(app)


async def test_a_decision_during_the_load_is_not_undone_by_its_older_snapshot(project,
                                                                             monkeypatch):
    gate = Gate(monkeypatch)
    app = make_app(project, first_page=2)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.model.view, "the first page")
        await wait_until(pilot, gate.read.is_set, "the full load read the store")
        await pilot.press("a")                              # alpha: after the loader's read
        assert db(project).image("alpha.png").status == "accepted"
        gate.open.set()
        await wait_until(pilot, lambda: app.loaded, "the whole list")
        await settle(pilot)
        alpha = next(r for r in app.model.rows if r.name == "alpha.png")
        assert alpha.status == "accepted"
        assert "1 accepted" in header(app) and "3 unreviewed" in header(app)
        assert cursor_name(app) == "delta.png"              # accept moved on; still there


async def test_filter_dialog_while_loading_offers_every_choice_without_counts(project,
                                                                              monkeypatch):
    gate = Gate(monkeypatch)
    app = make_app(project, first_page=2)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.model.view, "the first page")
        await pilot.press("f")
        await pilot.pause()
        options = app.screen.query_one("#filter-options")
        prompts = [str(options.get_option_at_index(i).prompt)
                   for i in range(options.option_count)]
        assert "status   no-mask" in prompts and "category disagrees" in prompts
        assert not any("(" in p for p in prompts)            # no counts from a page
        assert "still loading" in screen_text(app)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index("status:no-mask")
        await pilot.press("enter")
        await pilot.pause()
        assert shown(app) == ["delta.png"]                   # the page's no-mask rows
        gate.open.set()
        await wait_until(pilot, lambda: app.loaded, "the whole list")
        await settle(pilot)
        assert shown(app) == ["delta.png", "foxtrot.png"]
        await pilot.press("f")
        await pilot.pause()
        options = app.screen.query_one("#filter-options")
        assert "status   no-mask  (2)" in [str(options.get_option_at_index(i).prompt)
                                           for i in range(options.option_count)]


async def test_first_page_at_80x24(project, monkeypatch):
    gate = Gate(monkeypatch)
    app = make_app(project, first_page=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.model.view, "the first page")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
        assert "first 3 of 6 images" in lines[0] and "sort: review order" in lines[0]
        assert any("alpha.png" in line for line in lines)
        gate.open.set()
        await wait_until(pilot, lambda: app.loaded, "the whole list")
        await settle(pilot)
        assert "6 images" in header(app) and "foxtrot.png" in screen_text(app)


async def test_first_page_zero_waits_for_every_row(project, monkeypatch):
    """The old launch, kept for the benchmark's before/after: no page, one full load."""
    gate = Gate(monkeypatch)
    app = make_app(project, first_page=0)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, gate.read.is_set, "the full load read the store")
        await pilot.pause(0.1)
        assert shown(app) == [] and "loading…" in header(app)
        gate.open.set()
        await wait_until(pilot, lambda: app.loaded, "the whole list")
        assert shown(app) == REVIEW_ORDER


async def test_a_project_that_fits_the_first_page_loads_once(project, monkeypatch):
    gate = Gate(monkeypatch)
    gate.open.set()
    app = make_app(project)                                 # 6 rows < FIRST_PAGE
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.loaded and shown(app) == REVIEW_ORDER and gate.calls == 0
        assert "4 unreviewed" in header(app)
