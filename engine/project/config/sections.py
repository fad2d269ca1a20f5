"""The sections of ``segtriage.toml`` as typed, checked dataclasses: one place per setting.

Each key is a field: its default, its checker (checks.py) and its help line for the commented
template. A section checks every value when it is made, so a ``ScoringConfig(confident=0.5)``
in code is refused just as ``confident = 0.5`` in the file is.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Callable, ClassVar, Mapping

from . import checks as c


class SettingError(ValueError):
    """One key's value is not allowed: the section, the key, the value and what is allowed."""

    def __init__(self, section: str, key: str, value: Any, allowed: str):
        super().__init__(f"{section}.{key} = {value!r} is not allowed; expected {allowed}")
        self.section, self.key, self.value, self.allowed = section, key, value, allowed


def key(default: Any, check: Callable[[Any], Any], help: str, *, example: Any = None) -> Any:
    """A config key: its default, checker and help (``example``: what the template shows for
    a key that is unset by default)."""
    meta = {"check": check, "help": help, "example": example}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


class Section:
    """A config section: every field checked (and normalised, e.g. 1 → 1.0) when made."""
    section: ClassVar[str]

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            try:
                checked = f.metadata["check"](value)
            except ValueError as e:
                raise SettingError(self.section, f.name, value, str(e)) from None
            object.__setattr__(self, f.name, checked)

    @classmethod
    def keys(cls) -> dict[str, Any]:
        """key → its dataclass field (default, metadata["check"], metadata["help"])."""
        return {f.name: f for f in fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def default_of(cls, name: str) -> Any:
        f = cls.keys()[name]
        return f.default_factory() if f.default is MISSING else f.default

    @classmethod
    def choices(cls, name: str) -> tuple[str, ...]:
        """The values a choice key allows (``ModelConfig.choices("arch")``), from its checker:
        the one list a command line's or a dialog's choices come from."""
        return tuple(cls.keys()[name].metadata["check"].allowed)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProjectConfig(Section):
    section: ClassVar[str] = "project"
    codes: list[str] = key(["naw", "aye"], c.codes,
        "class names; index 0 is background, the rest are objects")
    state_dir: str = key(".segtriage", c.folder,
        "project state (database, models, predictions), relative to the folder")
    pixel_size: float | None = key(None, c.optional(c.number(0.0, open_lo=True)),
        "size of one pixel in `unit` (e.g. 0.65); unset: measurements in pixels only",
        example=0.65)
    unit: str = key("µm", c.unit,
        "the unit of pixel_size (measurements: lengths in it, areas in it squared)")


@dataclass(frozen=True)
class LayoutConfig(Section):
    section: ClassVar[str] = "layout"
    kind: str = key("auto", c.choice("auto", "seed", "split"),
        "seed: NAME.EXT beside NAME_mask.EXT; split: images/ and masks/; auto detects")
    mask_suffix: str = key("_mask", c.text,
        "seed layout: suffix that marks a mask")
    images_dir: str = key("images", c.text,
        "split layout: folder of images")
    masks_dir: str = key("masks", c.text,
        "split layout: folder of masks")
    extensions: list[str] = key([".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"], c.extensions,
        "image and mask file extensions")
    ignore: list[str] = key([], c.text_list(),
        "extra glob patterns to ignore (relative paths)")


@dataclass(frozen=True)
class ModelConfig(Section):
    section: ClassVar[str] = "model"
    # the keys a job may set for itself (train --epochs, the retrain dialog, ...)
    JOB_OVERRIDES: ClassVar[tuple[str, ...]] = ("epochs", "arch", "batch_size", "lr",
                                                "image_size", "folds", "gpus")
    arch: str = key("resnet34", c.choice("resnet18", "resnet34", "resnet50"),
        "U-Net encoder")
    pretrained: bool = key(False, c.boolean,
        "ImageNet weights (must already be in the torch cache: no download)")
    size_policy: str = key("resize", c.choice("resize", "crop", "pad"),
        "how images are made square for the network")
    image_size: int = key(128, c.integer(0, 4096),
        "network input side in pixels; 0 = native size")
    batch_size: int = key(8, c.integer(1, 1024),
        "batch size (lowered automatically for tiny sets)")
    epochs: int = key(8, c.integer(1, 10_000),
        "epochs of fit_one_cycle")
    min_steps: int = key(200, c.integer(0, 1_000_000),
        "minimum optimizer steps per training; epochs are raised to reach it")
    lr: float = key(1e-3, c.number(0.0, 10.0, open_lo=True),
        "maximum learning rate")
    augment: bool = key(True, c.boolean,
        "random flips, 90° turns, small warps and brightness changes while training")
    folds: int = key(3, c.integer(2, 20),
        "models trained by crossval (out-of-fold scoring)")
    valid_pct: float = key(0.2, c.number(0.0, 0.9),
        "share of labelled images held out for validation")
    # TOML's own limit: torch.manual_seed overflows on a larger one, at training time
    seed: int = key(42, c.integer(0, 2**63 - 1),
        "random seed for the validation split and folds")
    device: str = key("auto", c.choice("auto", "cpu", "cuda", "mps"),
        "where to train and predict")
    precision: str = key("auto", c.choice("auto", "fp32", "bf16", "fp16"),
        "inference and mixed-precision training (CPU: bf16 only)")
    gpus: int = key(1, c.integer(1, 1024),
        "GPUs (processes) for training and prediction")
    cpu_threads: int = key(0, c.integer(0, 1024),
        "torch threads on the CPU; 0 = auto: one per core, but one core left free in bf16 "
        "(docs/benchmarks.md, CPU threads)")
    early_ranking_s: float = key(30.0, c.number(0.0, 1e6),
        "seconds into a training before a checkpoint ranks the images it has no model score "
        "for (again at twice the time while under half the steps; docs/scoring.md, Early "
        "ranking); 0: no early ranking")

    def with_job_params(self, params: Mapping[str, Any]) -> "ModelConfig":
        """This section with a job's overrides: the JOB_OVERRIDES keys ``params`` sets (None:
        not set), checked as the file's values are, so a bad one raises SettingError naming
        the key and what is allowed (``model.epochs = 0 is not allowed; ...``). The one check
        of a job's parameters: the command line and the retrain dialog call it before they
        queue a job, the engine again when it runs it."""
        return replace(self, **{k: params[k] for k in self.JOB_OVERRIDES
                                if params.get(k) is not None})


@dataclass(frozen=True)
class ScoringConfig(Section):
    section: ClassVar[str] = "scoring"
    uncertain_threshold: float = key(0.8, c.number(0.5, 1.0),
        "τ: a pixel is uncertain when its max class probability < τ")
    # (1 − s)/T must stay finite: below ~5.6e-309 it overflows and lq_softmin is NaN
    lq_temperature: float = key(0.1, c.number(1e-300, 10.0),
        "temperature of cleanlab's soft-minimum label quality")
    match_iou: float = key(0.5, c.number(0.0, 1.0, open_lo=True),
        "IoU for matching objects")
    boundary_px: int = key(2, c.integer(0, 64),
        "half-width of the boundary band in pixels")
    disagree_dice: float = key(0.8, c.number(0.0, 1.0),
        "Dice or label quality below this, model confident → disagrees")
    # > 0.5: the cut-off 2·confident − 1 of scoring's confident disagreement d ≥ cut-off
    # is 0 at 0.5, and d ≥ 0 holds for every pixel, agreeing ones too (all images wrong)
    confident: float = key(0.9, c.number(0.5, 1.0, open_lo=True),
        "core confidence (object interiors and unsure pixels away from edges) at or above "
        "this counts as a confident model")
    small_object_px: int = key(9, c.integer(1, 100_000),
        "speck size a_s: the floor of lq_pixel's and outline_bias' denominators, the least "
        "area an object needs to count fully in lq_object, and the least size of a "
        "confident miss or extra (docs/scoring.md)")


@dataclass(frozen=True)
class MeasureConfig(Section):
    section: ClassVar[str] = "measure"
    split: str = key("none", c.choice("none", "watershed"),
        "touching objects: none (connected components) or watershed (split them)")
    min_distance: int = key(5, c.integer(1, 1000),
        "watershed: pixels between two object centres for them to be two")
    compactness: float = key(0.0, c.number(0.0, 1e6),
        "watershed: 0 the classic one; larger gives straighter, more even cuts")
    exclude_border_from_sizes: bool = key(True, c.boolean,
        "objects touching the image border are left out of size means (they still count "
        "for density)")


@dataclass(frozen=True)
class EditorConfig(Section):
    section: ClassVar[str] = "editor"
    command: str = key("", c.editor_command,
        "argv template with {mask} and {image} ({{ and }}: a literal brace); empty: "
        "$SEGTRIAGE_EDITOR if set, else segtriage's own painter")
    mode: str = key("terminal", c.choice("terminal", "gui"),
        "terminal: suspend the TUI; gui: launch detached")


@dataclass(frozen=True)
class BackupConfig(Section):
    section: ClassVar[str] = "backup"
    destination: str = key("", c.text,
        "snapshot store; empty: <state_dir>/backups (prefer another disk; one folder per project)")
    before_train: bool = key(True, c.boolean,
        "snapshot automatically before every training job")


@dataclass(frozen=True)
class EngineConfig(Section):
    section: ClassVar[str] = "engine"
    idle_exit_s: float = key(900.0, c.number(0.0),
        "exit after this long idle with no client (0: never)")
    watch: str = key("auto", c.choice("auto", "native", "polling", "off"),
        "file watching; polling for network file systems")
    debounce_s: float = key(0.5, c.number(0.0, 60.0),
        "wait this long after the last change to a file")


@dataclass(frozen=True)
class TuiConfig(Section):
    section: ClassVar[str] = "tui"
    theme: str = key("segtriage-dark", c.text,
        "theme name (themes/*.toml or a user theme)")
    image_renderer: str = key("halfcell", c.choice("halfcell", "auto", "kitty", "sixel", "unicode"),
        "terminal image protocol for the preview")


# section name → its type, in the order of the file and the template
SECTIONS: dict[str, type[Section]] = {
    cls.section: cls for cls in (ProjectConfig, LayoutConfig, ModelConfig, ScoringConfig,
                                 MeasureConfig, EditorConfig, BackupConfig, EngineConfig,
                                 TuiConfig)}
