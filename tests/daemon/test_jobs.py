"""The train and crossval jobs' checks of their parameters, run in this process on a tiny demo
folder: a bad override fails the job before any backup or training (nothing here trains)."""

from __future__ import annotations

import threading

import pytest

from segtriage.engine.daemon.jobs import JobContext
from segtriage.engine.daemon.jobs.train import job_crossval, job_train, model_cfg
from segtriage.engine.project import index
from segtriage.engine.project.config import SettingError
from segtriage.engine.project.project import Project


@pytest.fixture
def project(tiny_demo):
    """The tiny demo folder indexed: 16 images with masks; [backup] before_train = true."""
    p = Project.open(tiny_demo)
    index.scan(p)
    assert p.cfg.backup.before_train and p.cfg.model.folds == 3
    return p


def _ctx(project: Project, kind: str, params: dict) -> JobContext:
    job = project.store.job(project.store.submit_job(kind, params))
    return JobContext(project=project, job=job, stopping=threading.Event())


@pytest.mark.parametrize("kind, params, message", [
    ("train", {"epochs": 0}, "model.epochs = 0 is not allowed; expected an integer ≥ 1 and "
                             "≤ 10000"),
    ("train", {"arch": "resnet99"}, "model.arch = 'resnet99' is not allowed; expected one of "
                                    "'resnet18', 'resnet34', 'resnet50'"),
    ("train", {"gpus": 0}, "model.gpus = 0 is not allowed; expected an integer ≥ 1 and ≤ 1024"),
    ("crossval", {"folds": 0}, "model.folds = 0 is not allowed; expected an integer ≥ 2 and "
                               "≤ 20"),
    ("crossval", {"folds": 1}, "model.folds = 1 is not allowed; expected an integer ≥ 2 and "
                               "≤ 20"),
    ("crossval", {"folds": 50}, "model.folds = 50 is not allowed; expected an integer ≥ 2 and "
                                "≤ 20"),
    ("crossval", {"folds": 3, "epochs": 0}, "model.epochs = 0 is not allowed"),
])
def test_a_bad_override_fails_the_job_naming_it_before_any_backup(project, kind, params,
                                                                   message):
    job = {"train": job_train, "crossval": job_crossval}[kind]
    with pytest.raises(SettingError) as e:
        job(_ctx(project, kind, params))
    assert str(e.value).startswith(message)
    assert project.store.backups() == []  # no whole-folder snapshot for a job that cannot run
    snapshots = project.state / "backups" / "snapshots"  # (objects: the scan's mask history)
    assert not snapshots.exists() or not any(snapshots.iterdir())  # nor a partial one


def test_the_jobs_overrides_reach_the_model_config_and_unset_ones_keep_the_file(project):
    mcfg = model_cfg(_ctx(project, "crossval", {"folds": 4, "epochs": 2, "gpus": None,
                                                "scope": "stale"}))
    assert (mcfg.folds, mcfg.epochs, mcfg.gpus, mcfg.arch) == (4, 2, 1, "resnet18")
    assert model_cfg(_ctx(project, "train", {}), arch="resnet50").arch == "resnet50"
