"""The viewer's mouse: a drag pans (read-only, or the middle button, or with ctrl) or paints
(left) and erases (right) as ``PaintView.Stroke`` messages; the wheel pans (shift: sideways)
and zooms with ctrl (a mixin of ``PaintView``)."""

from __future__ import annotations

from textual import events


class ViewMouse:
    """Mouse handlers of the viewer widget (``self.vp``, ``self.editable``, ``set_cursor``
    and ``_view_changed`` are the widget's)."""

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self.vp is None:
            return
        self.focus()
        px = self.vp.pixel_at(event.x, event.y)
        pan = not self.editable or event.button == 2 or event.ctrl
        self._drag = {"pan": pan, "start": (event.x, event.y), "c": (self.vp.cy, self.vp.cx),
                      "last": px, "erase": event.button == 3}
        self.capture_mouse()
        if px is not None:
            self.set_cursor(*px, follow=False)
            if not pan:
                self.post_message(self.Stroke([px], self._drag["erase"], "start"))
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        d = self._drag
        if d is None or self.vp is None:
            return
        if d["pan"]:
            s = self.vp.scale
            dx = (event.x - d["start"][0]) * self.vp.dot_w / s
            dy = (event.y - d["start"][1]) * self.vp.dot_h / s
            self.vp.cy, self.vp.cx = d["c"][0] - dy, d["c"][1] - dx
            self.vp.clamp()
            self._view_changed()
            return
        px = self.vp.pixel_at(event.x, event.y)
        if px is None or px == d["last"]:
            return
        pts = [px] if d["last"] is None else [d["last"], px]
        d["last"] = px
        self.set_cursor(*px, follow=False)
        self.post_message(self.Stroke(pts, d["erase"], "move"))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        d, self._drag = self._drag, None
        self.release_mouse()
        if d is not None and not d["pan"]:
            self.post_message(self.Stroke([], d["erase"], "end"))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scroll(event, 1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scroll(event, -1)

    def _scroll(self, event, sign: int) -> None:
        if self.vp is None:
            return
        event.stop()
        if event.ctrl:
            px = self.vp.pixel_at(event.x, event.y)
            (self.vp.zoom_out if sign > 0 else self.vp.zoom_in)(px)
        else:
            step = 3 * self.vp.dot_h / self.vp.scale
            if event.shift:
                self.vp.pan(0, sign * step)
            else:
                self.vp.pan(sign * step, 0)
        self._view_changed()
