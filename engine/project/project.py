"""``Project``: one data folder as every use case sees it (its root, its config, its state).

The use cases of ``engine.project`` (scan, mask history, backup, scoring, measuring) take a
Project instead of the ``(root, cfg, store)`` triple they once passed along. The engine re-reads
the config for every job: ``with_config`` gives the same folder and state under a new config.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..store import Store
from .config import Config, load_config

STATE_DB = "state.db"


@dataclass(frozen=True, eq=False)
class Project:
    root: Path
    cfg: Config
    store: Store

    @classmethod
    def open(cls, root: Path | str, *, cfg: Config | None = None, create: bool = True,
             readonly: bool = False) -> "Project":
        """The project of ``root`` under its config (``segtriage.toml``, or ``cfg``).
        ``create=False`` refuses a folder that has no project state yet (StoreError)."""
        root = Path(root)
        cfg = load_config(root) if cfg is None else cfg
        store = Store(db_path(root, cfg), create=create, readonly=readonly)
        return cls(root, cfg, store)

    @property
    def state(self) -> Path:
        """The state folder (``[project] state_dir``): database, models, predictions, logs."""
        return self.cfg.state_path(self.root)

    def path(self, rel: str) -> Path:
        """A path of the data folder, from the relative form rows hold."""
        return self.root / rel

    def with_config(self, cfg: Config) -> "Project":
        return replace(self, cfg=cfg)

    def close(self) -> None:
        self.store.close()


def db_path(root: Path | str, cfg: Config) -> Path:
    return cfg.state_path(root) / STATE_DB
