"""Verify: re-hash every stored object and name what uses the missing or corrupt ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...store import Store, StoreError
from ..config import Config
from ..project import db_path
from ..objectstore import ObjectStore, Progress, default_destination, open_destination

@dataclass
class VerifyReport:
    destination: Path
    snapshots: int = 0
    objects: int = 0
    bytes: int = 0
    missing: list[dict] = field(default_factory=list)   # {sha, refs: [...]}
    corrupt: list[dict] = field(default_factory=list)   # {sha, refs: [...]}
    bad_manifests: list[dict] = field(default_factory=list)  # {file, error}

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.bad_manifests)

    def to_dict(self) -> dict:
        return {"destination": str(self.destination), "ok": self.ok,
                "snapshots": self.snapshots, "objects": self.objects, "bytes": self.bytes,
                "missing": self.missing, "corrupt": self.corrupt,
                "bad_manifests": self.bad_manifests}

    def lines(self) -> list[str]:
        out = [f"{self.destination}: {self.snapshots} snapshots, {self.objects} objects, "
               f"{self.bytes} bytes re-hashed"]
        for kind, items in (("MISSING", self.missing), ("CORRUPT", self.corrupt)):
            for it in items:
                refs = ", ".join(it["refs"][:5]) + (" …" if len(it["refs"]) > 5 else "")
                out.append(f"{kind} object {it['sha'][:12]} used by {refs or 'nothing'}")
        for b in self.bad_manifests:
            out.append(f"UNREADABLE manifest {b['file']}: {b['error']}")
        out.append("ok" if self.ok else "FAILED: the backup store is damaged")
        return out


def references(manifests: list[dict], store: Store | None) -> dict[str, list[str]]:
    """sha → human-readable references ("<snapshot>:<path>", "history:<path>#<n>")."""
    refs: dict[str, list[str]] = {}
    for m in manifests:
        for rel, e in m.get("files", {}).items():
            refs.setdefault(e["sha"], []).append(f"{m['id']}:{rel}")
        models = m.get("models", {})
        if models.get("meta"):
            refs.setdefault(models["meta"], []).append(f"{m['id']}:<model metadata>")
        for rel, e in models.get("files", {}).items():
            refs.setdefault(e["sha"], []).append(f"{m['id']}:models/{rel}")
    if store is not None:
        for vid, path, sha in store.mask_version_refs():
            refs.setdefault(sha, []).append(f"history:{path}#{vid}")
    return refs


def _history_store_of(root: Path, cfg: Config, obj: ObjectStore, store: Store | None
                      ) -> Store | None:
    """The project store when ``obj`` is where the mask history lives, else None (objects of
    the history are not expected in another destination)."""
    if obj.dest.resolve() != default_destination(root, cfg).resolve():
        return None
    if store is None:
        try:
            store = Store(db_path(root, cfg), create=False, readonly=True)
        except StoreError:
            return None
    return store


def verify(root: Path | str, cfg: Config, dest: Path | str | None = None, *,
           store: Store | None = None,
           progress: Progress | None = None) -> VerifyReport:
    """Re-hash every stored object; report missing and corrupt ones with what uses them,
    including the mask history's objects when ``dest`` is the history's destination."""
    root = Path(root)
    obj = open_destination(root, cfg, dest, store)
    good, bad = obj.manifests()
    rep = VerifyReport(destination=obj.dest, snapshots=len(good), bad_manifests=bad)
    history = _history_store_of(root, cfg, obj, store)
    try:
        refs = references(good, history)
    finally:
        if history is not None and history is not store:  # opened here: closed here
            history.close()
    present = list(obj.iter_objects())
    for i, sha in enumerate(present):
        rep.objects += 1
        try:
            rep.bytes += obj.path(sha).stat().st_size
        except OSError:
            pass
        if not obj.verify_object(sha):
            rep.corrupt.append({"sha": sha, "refs": refs.get(sha, [])})
        if progress and i % 64 == 0:
            progress(i / max(1, len(present)), f"verified {i}/{len(present)} objects")
    have = set(present)
    rep.missing = [{"sha": s, "refs": r} for s, r in sorted(refs.items()) if s not in have]
    return rep


