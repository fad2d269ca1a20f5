"""Review actions of the app: accept, flag, next to review, edit in the mask editor, use the
prediction, undo (a mixin of ``SegtriageApp``). Decisions show at once and are written to
the store; mask changes go through engine.project.review in a worker."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from textual import work
from textual.app import SuspendNotSupported
from textual.markup import escape

from ...engine.project import review
from . import editor
from .data import Row
from .screens.confirm import ConfirmScreen


class ReviewActions:
    """Decisions on the selected row and the changes to its mask."""

    # -- decisions -------------------------------------------------------------------------
    def _set_status_local(self, row: Row, status: str) -> None:
        self.model.set_status(row, status)
        self.result_list.refresh_row(row)
        self._render_header()
        if row is self.preview.row:  # its title line shows the status (unflag stays on it)
            self.preview.set_row(row)

    def _decide(self, row: Row, status: str) -> None:
        """A review decision: shown at once, written to the store, and remembered until the
        running load is in (its snapshot may be older than the write)."""
        self._set_status_local(row, status)
        self._store_write(partial(self.store.set_status, [row.id], status),
                          after=lambda _r: self._decisions.append((row.id, status)))

    def action_accept(self) -> None:
        row = self._need_row()
        if row is None:
            return
        problem = review.accept_problem(row.mask_path, row.error)
        if problem:
            self.notify(f"{row.name}: not accepted: {problem}", severity="warning")
            return
        self._decide(row, "accepted")
        self.result_list.action_cursor_down()

    def action_flag(self) -> None:
        row = self._need_row()
        if row is None:
            return
        if row.status == "flagged":  # a correction of this row: stay on it
            self._decide(row, review.unflagged_status(row.mask_path, row.error))
            return
        self._decide(row, "flagged")
        self.result_list.action_cursor_down()

    def action_next_review(self) -> None:
        lst = self.result_list
        i = self.model.next_needing_review(lst.cursor)
        if i is None:
            self.notify("nothing left to review in this view")
            return
        lst.set_cursor(i, center=True)

    # -- masks -----------------------------------------------------------------------------
    def action_edit(self) -> None:
        row = self._need_row()
        if row is not None:
            self._prepare_edit_worker(row.id)

    @work(thread=True, group="mask")
    def _prepare_edit_worker(self, image_id: int) -> None:
        try:
            mask, image = review.prepare_edit(self.project, image_id)
        except Exception as e:  # noqa: BLE001
            self.call_from_thread(self.notify, f"cannot open the editor: {e}", severity="error",
                                  timeout=8)
            return
        self.call_from_thread(self._open_editor, mask, image)

    def _open_editor(self, mask: Path, image: Path) -> None:
        try:
            argv = editor.editor_argv(self.cfg.editor.command, mask, image, project=self.root,
                                      renderer=self.renderer.name)  # drawn as the preview
        except editor.EditorError as e:
            self.notify(str(e), severity="error", timeout=10)
            return
        rel = mask.relative_to(self.root).as_posix()
        try:
            if self.cfg.editor.mode == "gui" and not editor.is_painter(argv):
                editor.launch_gui(argv, self.root)
                self.notify(f"opened {rel} in {Path(argv[0]).name}; save it and the row "
                            "updates")
                return
            failed = None
            with self.suspend():
                # an exception leaving this block would skip Textual's resume and leave a
                # blank, dead screen: catch it inside, report it once the app is back
                try:
                    rc = self.run_terminal_editor(argv, self.root)
                except editor.EditorError as e:
                    failed = e
            if failed is not None:
                raise failed
        except SuspendNotSupported:
            self.notify("this terminal cannot hand itself to an editor; set [editor] mode = "
                        "\"gui\" in segtriage.toml", severity="error", timeout=10)
            return
        except editor.EditorError as e:
            self.notify(str(e), severity="error", timeout=10)
            return
        if rc:
            self.notify(f"{Path(argv[0]).name} exited with status {rc}", severity="warning")
        self._write(partial(review.nudge_index, self.project, rel))

    def action_replace_with_prediction(self) -> None:
        row = self._need_row()
        if row is None:
            return
        if not row.prob_path:
            self.notify(f"{row.name}: no prediction yet ({self.key_of('predict')} predicts)", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._write(partial(review.replace_with_prediction, self.project, row.id),
                            done="{} (" + self.key_of("undo") + " undoes)")

        self.push_screen(ConfirmScreen(
            f"Replace the mask of {escape(row.name)} with the model's prediction?",
            f"The current mask is kept in the history: {self.key_of('undo')} undoes it.", yes="Replace"), answer)

    def action_undo(self) -> None:
        row = self._need_row()
        if row is not None:
            self._write(partial(review.undo, self.project, row.id),
                        done="{} (" + self.key_of("undo") + " again undoes the undo)")
