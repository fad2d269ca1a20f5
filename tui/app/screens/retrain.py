"""The retrain dialog: epochs, GPUs, plain training or cross-validation (folds)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from ....engine.project.config import ModelConfig, SettingError


def _whole(text: str) -> int | str:
    """A field's whole number, or its text as typed (the config's check then names it)."""
    try:
        return int(text)
    except ValueError:
        return text


class RetrainScreen(ModalScreen[dict | None]):
    """Returns {"kind": "train" | "crossval", "epochs": n, "gpus": g, "folds": k?} or None;
    the values are checked as the engine checks a job's (ModelConfig.with_job_params)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, model: ModelConfig, n_masks: int | None = None,
                 backup_first: bool = False) -> None:
        super().__init__()
        self.model = model  # [model]: the fields' first values and their checks
        self.gpus = model.gpus
        self.min_steps = model.min_steps
        self.epochs = model.epochs
        self.folds = model.folds
        self.n_masks = n_masks
        self.backup_first = backup_first

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static("Retrain the model", classes="dialog-title")
            # compact fields: with its buttons the dialog fits a 24-row terminal
            detail = []
            if self.n_masks is not None:
                detail.append(f"Learns from {self.n_masks} masks (not flagged ones)"
                              + ("; backs up first." if self.backup_first else "."))
            if self.min_steps:
                detail.append(f"Trains at least {self.min_steps} steps ([model] min_steps).")
            if detail:
                yield Static("\n".join(detail), classes="dialog-detail", markup=False)
            with Horizontal(classes="field"):
                yield Label("Epochs")
                yield Input(str(self.epochs), id="epochs", type="integer", max_length=5,
                            compact=True)
            with Horizontal(classes="field"):
                yield Label("GPUs")  # > 1: torchrun ranks (CPU ranks where there is no GPU)
                yield Input(str(self.gpus), id="gpus", type="integer", max_length=4,
                            compact=True)
            with RadioSet(id="mode", compact=True):
                yield RadioButton("Plain: one model on all masks", value=True, id="plain")
                yield RadioButton("Cross-validation: out-of-fold scores", id="crossval")
            with Horizontal(classes="field", id="folds-row"):
                yield Label("Folds")
                yield Input(str(self.folds), id="folds", type="integer", max_length=2,
                            disabled=True, compact=True)
            yield Static("", id="retrain-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start", id="start", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#epochs", Input).focus()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.query_one("#folds", Input).disabled = event.pressed.id != "crossval"

    def _result(self) -> dict | None:
        crossval = self.query_one("#crossval", RadioButton).value
        names = ("epochs", "gpus", "folds") if crossval else ("epochs", "gpus")
        params = {k: _whole(self.query_one(f"#{k}", Input).value) for k in names}
        try:
            self.model.with_job_params(params)  # what the engine checks when the job runs
        except SettingError as e:
            self.query_one("#retrain-error", Static).update(str(e))
            return None
        return {"kind": "crossval" if crossval else "train", **params}

    def _submit(self) -> None:
        result = self._result()
        if result is not None:
            self.dismiss(result)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#retrain-error", Static).update("")  # the value it named is changing

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
