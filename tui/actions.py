"""The one registry of user actions: id, default key(s), description.

Everything a person can do with a key is listed here once. The registry feeds the Textual
bindings (each Binding carries the action id, so ``[keymap]`` in segtriage.toml rebinds it through
``App.set_keymap``), the help screen and the command palette, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    id: str           # binding id and keymap name, e.g. "accept"
    keys: str         # default keys, comma separated, Textual key names ("e,enter")
    label: str        # short label: footer and command palette
    help: str         # one line for the help screen and the palette
    group: str        # help screen section
    action: str = ""  # Textual action string; default: the id
    footer: bool = False
    palette: bool = True
    scope: str = "app"  # "app" or "list" (bound on the result list widget)

    @property
    def target(self) -> str:
        return self.action or self.id


GROUPS = ("Review", "Masks", "Model and jobs", "View", "Move", "App")

ACTIONS: tuple[Action, ...] = (
    # -- review --------------------------------------------------------------------------------
    Action("edit", "e,enter", "Edit", "open the mask in the external editor (creates one if "
           "missing)", "Review", footer=True),
    Action("accept", "a", "Accept", "mark the mask as correct and go to the next row", "Review",
           footer=True),
    Action("flag", "x", "Flag", "flag the image (excluded from training) and go to the next row; on a "
           "flagged image: unflag it and stay",
           "Review", footer=True),
    Action("next_review", "n", "Next", "jump to the next row that still needs review", "Review",
           footer=True),
    # -- masks ---------------------------------------------------------------------------------
    Action("replace_with_prediction", "P", "Use prediction",
           "replace the mask with the model's prediction (asks first; the old mask is kept)",
           "Masks"),
    Action("undo", "u", "Undo", "undo the last change to this image's mask", "Masks",
           footer=True),
    # -- model and jobs ------------------------------------------------------------------------
    Action("retrain", "r", "Retrain", "train a new model (epochs, plain or cross-validation)",
           "Model and jobs", footer=True),
    Action("predict", "p", "Re-predict", "predict and score every stale or unscored image",
           "Model and jobs"),
    Action("backup", "b", "Backup", "snapshot images, masks and models now", "Model and jobs"),
    Action("cancel_job", "c", "Cancel job", "cancel the running or queued job (asks first)",
           "Model and jobs"),
    # -- view ----------------------------------------------------------------------------------
    Action("sort_next", "s", "Sort", "sort by the next column (review order first)", "View"),
    Action("sort_reverse", "S", "Reverse", "reverse the sort order", "View"),
    Action("filter_name", "slash", "Find", "filter rows by name (escape clears)", "View",
           footer=True),
    Action("clear_filter", "escape", "Clear filter", "clear the name, status and category "
           "filters", "View"),
    Action("filter_status", "f", "Filter", "show only one status or category", "View"),
    Action("toggle_mask", "m", "Mask overlay", "show or hide the mask in the preview", "View"),
    Action("toggle_prediction", "o", "Prediction overlay",
           "show or hide the model's prediction in the preview", "View"),
    Action("toggle_uncertainty", "v", "Uncertainty map",
           "show or hide the model's uncertainty in the preview", "View"),
    Action("toggle_outline", "O", "Outline / tint", "draw overlays as outlines or as a tint",
           "View"),
    Action("zoom", "z", "Zoom", "show the preview and metrics full screen, or the list again",
           "View"),
    Action("cycle_theme", "t", "Next theme", "switch to the next theme", "View"),
    # -- moving in the list (bound on the list; rebindable like the rest) ----------------------
    Action("cursor_down", "down,j", "Down", "next row", "Move", palette=False, scope="list"),
    Action("cursor_up", "up,k", "Up", "previous row", "Move", palette=False, scope="list"),
    Action("page_down", "pagedown,ctrl+d", "Page down", "half a page down", "Move",
           palette=False, scope="list"),
    Action("page_up", "pageup,ctrl+u", "Page up", "half a page up", "Move", palette=False,
           scope="list"),
    Action("first", "home,g", "First row", "go to the first row", "Move", palette=False,
           scope="list"),
    Action("last", "end,G", "Last row", "go to the last row", "Move", palette=False,
           scope="list"),
    # -- app -----------------------------------------------------------------------------------
    Action("help", "question_mark", "Help", "list every key", "App", footer=True),
    Action("quit", "q", "Quit", "quit (the engine keeps running its jobs)", "App", footer=True),
)

BY_ID: dict[str, Action] = {a.id: a for a in ACTIONS}
assert len(BY_ID) == len(ACTIONS), "duplicate action id"


def bindings(scope: str) -> list[Binding]:
    """The Textual bindings of one scope, each with its action id for the keymap."""
    return [
        Binding(a.keys, a.target, a.label, show=a.footer, id=a.id)
        for a in ACTIONS if a.scope == scope
    ]


def check_keymap(keymap: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Split a config keymap into the known part and messages about unknown ids."""
    known = {k: v for k, v in keymap.items() if k in BY_ID}
    problems = [f"keymap.{k}: no such action (known: {', '.join(BY_ID)})"
                for k in keymap if k not in BY_ID]
    return known, problems
