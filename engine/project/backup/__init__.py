"""07 BACKUP: snapshots of the folder in a content-addressed object store (objectstore.py).

snapshot.py store the whole folder: images, masks, config, models; list and find snapshots
verify.py   re-hash every object, name what uses a missing or corrupt one
restore.py  bring a snapshot back, keeping what it replaces (a restore can be undone)
prune.py    keep the newest snapshots, collect what nothing references

No torch or fastai here: clients import this package.
"""

from ..objectstore import (BackupError, ObjectStore, Owner, default_destination, open_destination,
                      utc_iso)
from .prune import prune
from .restore import restore
from .snapshot import list_snapshots, resolve_snapshot, snapshot
from .verify import VerifyReport, verify

__all__ = ["BackupError", "ObjectStore", "Owner", "VerifyReport", "default_destination",
           "list_snapshots", "open_destination", "prune", "resolve_snapshot", "restore", "snapshot", "utc_iso", "verify"]
