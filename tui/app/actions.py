"""The one registry of user actions: id, default key(s), description.

Everything a person can do with a key is listed here once. The registry feeds the Textual
bindings (each Binding carries the action id, so ``[keymap]`` in segtriage.toml rebinds it through
``App.set_keymap``), the help screen and the command palette, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from ..keymap import PAINT_PREFIX, resolve


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
    scope: str = "app"  # "app", "list" (bound on the result list) or "preview" (its viewer)

    @property
    def target(self) -> str:
        return self.action or self.id


IN_PREVIEW = "In the preview (z, tab or a click)"   # its viewer has the keys
GROUPS = ("Review", "Masks", "Model and jobs", "View", "Preview", IN_PREVIEW, "Move", "App")


def _in_preview(id: str, keys: str, label: str, help: str, action: str) -> Action:
    """An action bound on the preview's viewer: it works while the viewer has the keys."""
    return Action(id, keys, label, help, IN_PREVIEW, action=action, palette=False,
                  scope="preview")


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
    Action("toggle_splits", "C", "Split outlines", "show or hide the split outlines of touching "
           "objects in the preview (as [measure] splits them)", "View"),
    Action("zoom", "z", "Zoom", "the preview large beside the metrics, with the preview's keys "
           "on it; z or escape: the list again", "View"),
    Action("dataset", "d", "Measurements", "the data set's object sizes, counts and densities "
           "(reviewed masks, else the model's predictions), as plots", "View"),
    Action("cycle_theme", "t", "Next theme", "switch to the next theme", "View"),
    # -- the preview, from the list (read-only: nothing here changes a mask) -------------------
    Action("zoom_in", "plus,equals_sign", "Zoom in", "zoom the preview in (around its cursor)",
           "Preview"),
    Action("zoom_out", "minus", "Zoom out", "zoom the preview out", "Preview"),
    Action("zoom_fit", "0", "Fit", "fit the image to the preview", "Preview"),
    Action("next_disagreement", "right_square_bracket", "Next disagreement",
           "centre the preview on the next place the model and the mask disagree", "Preview"),
    Action("prev_disagreement", "left_square_bracket", "Previous disagreement",
           "centre the preview on the previous disagreement", "Preview"),
    # -- the preview with the keys on it (bound on its viewer; its keys shadow the app's) -----
    _in_preview("preview_left", "left,h", "Cursor left",
                "move the preview's pixel cursor left (the view follows)", "move(0,-1)"),
    _in_preview("preview_right", "right,l", "Cursor right",
                "move the preview's pixel cursor right", "move(0,1)"),
    _in_preview("preview_up", "up,k", "Cursor up", "move the preview's pixel cursor up",
                "move(-1,0)"),
    _in_preview("preview_down", "down,j", "Cursor down",
                "move the preview's pixel cursor down", "move(1,0)"),
    _in_preview("preview_pan_left", "shift+left,H", "Pan left", "pan the preview a screen left",
                "page(0,-1)"),
    _in_preview("preview_pan_right", "shift+right,L", "Pan right",
                "pan the preview a screen right", "page(0,1)"),
    _in_preview("preview_pan_up", "shift+up,K", "Pan up", "pan the preview a screen up",
                "page(-1,0)"),
    _in_preview("preview_pan_down", "shift+down,J", "Pan down", "pan the preview a screen down",
                "page(1,0)"),
    _in_preview("preview_one", "1", "1:1", "zoom the preview to 1:1 at its cursor",
                "zoom_one"),
    _in_preview("preview_next", "n", "Next disagreement", "the next disagreement (as ])",
                "next_disagreement(1)"),
    _in_preview("preview_prev", "N", "Previous disagreement",
                "the previous disagreement (as [)", "next_disagreement(-1)"),
    _in_preview("preview_splits", "c", "Split outlines", "show or hide split outlines (as C)",
                "app.toggle_splits"),
    _in_preview("preview_leave", "escape", "Back", "the keys back on the list (and out of z)",
                "app.leave_preview"),
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


# -- the keymap of segtriage.toml --------------------------------------------------------------
# (key strings and how a [keymap] is resolved against defaults: tui/keymap.py, shared with the
# painter, whose ids start with "paint.")

# scopes whose keys must not clash (each group is checked alone)
SCOPE_GROUPS = (("app", "list"), ("preview",))


def check_keymap(keymap: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Resolve the ``[keymap]`` of segtriage.toml against the registry.

    Returns the overrides to hand to ``App.set_keymap`` (action id → keys, comma separated,
    in Textual's key names) and one message per problem. Refused, with a message naming the
    key and the action: an unknown action id, a malformed key string, a key Textual keeps for
    itself, a key two ``[keymap]`` entries ask for (neither applies), and a key that is the only
    one another action has. A key given to one action that another action has by default goes
    to the action asked for: the other loses that key (the overrides rebind it to the keys it
    keeps) and the message says so. App and list bindings count as one scope: while the list
    has focus its keys shadow the app's, so a shared key would run only the list's action. The
    preview's bindings are a scope of their own: while its viewer has the keys they shadow the
    app's on purpose (``n`` is the next row to review in the list, the next disagreement in the
    preview), so a key may be an app action's and a preview action's at once. Entries whose
    id starts with ``paint.`` are the painter's (tui/paint/keys.py checks them) and left out.
    """
    problems = [f"keymap.{k}: no such action (known: {', '.join(BY_ID)})"
                for k in keymap if k not in BY_ID and not k.startswith(PAINT_PREFIX)]
    overrides: dict[str, str] = {}
    for scopes in SCOPE_GROUPS:
        group = [a for a in ACTIONS if a.scope in scopes]
        ids = {a.id for a in group}
        got, found = resolve({k: v for k, v in keymap.items() if k in ids},
                             {a.id: a.keys for a in group})
        overrides |= got
        problems += found
    return overrides, problems
