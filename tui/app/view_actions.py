"""View actions of the app: sort, filters, the preview (overlays, zoom, pan, disagreements,
the zoomed layout), themes, help (a mixin of ``SegtriageApp``). None of them writes
anything."""

from __future__ import annotations

from textual.widgets import Input

from .screens.filter import FilterScreen
from .screens.help import HelpScreen


class ViewActions:
    """What the list shows and how the detail panes look."""

    # -- sort and filters ------------------------------------------------------------------
    def _view_changed(self, keep: int | None) -> None:
        self.result_list.model_changed(keep_id=keep)
        self._render_header()

    def _keep_id(self) -> int | None:
        row = self.current_row
        return row.id if row is not None else None

    def action_sort_next(self) -> None:
        keep = self._keep_id()
        self.model.next_sort()
        self._view_changed(keep)

    def action_sort_reverse(self) -> None:
        keep = self._keep_id()
        self.model.reverse()
        self._view_changed(keep)

    def action_filter_name(self) -> None:
        box = self.filter_box
        box.value = self.model.name_filter
        box.add_class("-shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is not self.filter_box:
            return
        keep = self._keep_id()
        self.model.set_filter(name=event.value)
        self._view_changed(keep)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self.filter_box:
            return
        event.input.remove_class("-shown")
        self.result_list.focus()

    def action_clear_filter(self) -> None:
        box = self.filter_box
        box.remove_class("-shown")
        if self.model.filtered:
            keep = self._keep_id()
            box.value = ""
            self.model.set_filter(name="", status=None, category=None)
            self._view_changed(keep)
        self.result_list.focus()

    def action_filter_status(self) -> None:
        def answer(choice) -> None:
            if choice is None:
                return
            kind, value = choice
            keep = self._keep_id()
            if kind == "all":
                self.model.set_filter(status=None, category=None)
            elif kind == "status":
                self.model.set_filter(status=value, category=None)
            else:
                self.model.set_filter(status=None, category=value)
            self._view_changed(keep)

        if self.model.partial:  # the choices, without counts until every row is in
            self.push_screen(FilterScreen(None, None, None), answer)
            return
        self.push_screen(FilterScreen(self.model.status_counts(), self.model.category_counts(),
                                      len(self.model.rows)), answer)

    # -- the preview -----------------------------------------------------------------------
    def action_toggle_mask(self) -> None:
        self.preview.show_mask = not self.preview.show_mask

    def action_toggle_prediction(self) -> None:
        self.preview.show_prediction = not self.preview.show_prediction

    def action_toggle_uncertainty(self) -> None:
        self.preview.show_uncertainty = not self.preview.show_uncertainty

    def action_toggle_outline(self) -> None:
        self.preview.outline = not self.preview.outline

    def action_toggle_splits(self) -> None:
        self.preview.show_splits = not self.preview.show_splits

    def action_zoom(self) -> None:
        """The preview large, with the keys on it; again: the list."""
        self.screen.toggle_class("-zoom")
        if self.screen.has_class("-zoom"):
            self.call_after_refresh(self.preview.focus_viewer)   # shown once laid out
        else:
            self.result_list.focus()

    def action_leave_preview(self) -> None:
        self.screen.remove_class("-zoom")
        self.result_list.focus()

    # read-only moves of the preview's viewer, from the list (the viewer has its own keys)
    def action_zoom_in(self) -> None:
        self.preview.viewer_action("zoom_in")

    def action_zoom_out(self) -> None:
        self.preview.viewer_action("zoom_out")

    def action_zoom_fit(self) -> None:
        self.preview.viewer_action("zoom_fit")

    def action_next_disagreement(self) -> None:
        self.preview.viewer_action("next_disagreement", 1)

    def action_prev_disagreement(self) -> None:
        self.preview.viewer_action("next_disagreement", -1)

    def action_dataset(self) -> None:
        from .screens.dataset import DatasetScreen

        self.push_screen(DatasetScreen(self.project))

    # -- looks and help --------------------------------------------------------------------
    def action_cycle_theme(self) -> None:
        names = self.segtriage_themes or [self.theme]
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.keymap))
