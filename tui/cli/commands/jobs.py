"""Commands that run a job in the engine and follow it (train, crossval, predict, rescore),
and the job list (jobs, cancel)."""

from __future__ import annotations

import argparse
import json

from ..common import config, folder, image_paths, open_store
from ..follow import submit_and_follow
from ..output import ago, err, escape, new_console
from . import Command, dir_arg


class ModelChoices:
    """The values a choice key of [model] allows (``arch``), asked of the config's own
    checker when argparse checks a value or writes the help: one list, and the config module
    is imported only then, not at every start."""

    def __init__(self, key: str) -> None:
        self.key = key

    def values(self) -> tuple[str, ...]:
        from ....engine.project.config import ModelConfig

        return ModelConfig.choices(self.key)

    def __iter__(self):
        return iter(self.values())

    def __contains__(self, value: object) -> bool:
        return value in self.values()


def checked(root, params: dict) -> dict:
    """``params`` of a train / crossval / predict job, checked as the engine will check them
    (ModelConfig.with_job_params): a bad one exits here with the config's message, before
    anything is queued."""
    from ....engine.project.config import SettingError

    try:
        config(root).model.with_job_params(params)
    except SettingError as e:
        raise SystemExit(err(f"--{e.key.replace('_', '-')}: {e}")) from None
    return params


def scale_args(p: argparse.ArgumentParser, *, launch: bool) -> None:
    """--gpus N, and --launch where the job can wait for ranks started elsewhere."""
    p.add_argument("--gpus", type=int, metavar="N",
                   help="N GPUs (one torchrun rank each; N CPU ranks without CUDA); "
                        "default [model] gpus")
    if launch:
        p.add_argument("--launch", choices=["local", "external"],
                       help="external: the engine writes the run folder and waits for ranks "
                            "started elsewhere (SLURM, other hosts; docs/scaling.md)")


def train_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--epochs", type=int)
    # a metavar: argparse then reads the choices only to check a value or write the help
    p.add_argument("--arch", choices=ModelChoices("arch"), metavar="ARCH",
                   help="U-Net encoder, one of %(choices)s; default [model] arch")
    scale_args(p, launch=True)
    p.add_argument("--detach", action="store_true", help="submit and return at once")


def run_train(a) -> int:
    root = folder(a.dir)
    params = checked(root, {k: v for k, v in (("epochs", a.epochs), ("arch", a.arch),
                                              ("gpus", a.gpus), ("launch", a.launch))
                            if v is not None})
    if a.launch == "external":  # the engine says so too, but only after its backup
        gpus = config(root).model.with_job_params(params).gpus
        if gpus < 2:
            return err(f"--launch external needs --gpus N (or [model] gpus), the total number "
                       f"of ranks you will start, 2 or more (now {gpus}); docs/scaling.md")
    return submit_and_follow(root, "train", params, a.detach)


def crossval_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--folds", type=int)
    p.add_argument("--epochs", type=int)
    scale_args(p, launch=False)
    p.add_argument("--detach", action="store_true")


def run_crossval(a) -> int:
    root = folder(a.dir)
    params = checked(root, {k: v for k, v in (("folds", a.folds), ("epochs", a.epochs),
                                              ("gpus", a.gpus)) if v is not None})
    return submit_and_follow(root, "crossval", params, a.detach)


def predict_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--all", action="store_true", help="re-predict every image, not only stale")
    p.add_argument("images", nargs="*", help="only these images: image or mask paths, from "
                   "the current folder or relative to DIR")
    scale_args(p, launch=True)
    p.add_argument("--detach", action="store_true")


def run_predict(a) -> int:
    root = folder(a.dir)
    scale = checked(root, {k: v for k, v in (("gpus", a.gpus), ("launch", a.launch))
                           if v is not None})

    def params(store) -> dict:
        if a.images:
            return {"scope": "list", "images": image_paths(root, store, a.images, a.dir),
                    **scale}
        return {"scope": "all" if a.all else "stale", **scale}

    return submit_and_follow(root, "predict", params, a.detach)


def rescore_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--detach", action="store_true")


def run_rescore(a) -> int:
    return submit_and_follow(folder(a.dir), "rescore", {}, a.detach)


def jobs_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=20)


def run_jobs(a) -> int:
    store = open_store(folder(a.dir), create=False)
    jobs = store.jobs(limit=a.limit)
    if a.json:
        print(json.dumps([vars(j) for j in jobs], indent=2, default=str))
        return 0
    from rich.table import Table

    t = Table(show_header=True)
    for c in ("id", "kind", "state", "progress", "message", "created", "error"):
        t.add_column(c, overflow="fold")
    for j in jobs:
        t.add_row(str(j.id), j.kind, j.state, f"{j.progress * 100:.0f}%",
                  escape(j.message or ""), ago(j.created_at), escape(j.error or ""))
    new_console().print(t)
    return 0


def cancel_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("job", type=int, nargs="?", help="job id (default: the running one, else "
                   "the queued one that runs next)")


def run_cancel(a) -> int:
    from ....engine.project.queries import job_to_cancel

    store = open_store(folder(a.dir), create=False)
    job_id = a.job
    if job_id is None:
        job = job_to_cancel(store)  # the one the app's cancel means too
        if job is None:
            return err("no job is running or queued")
        job_id = job.id
    if not store.request_cancel(job_id):
        return err(f"job {job_id} is not queued or running")
    print(f"cancel requested for job {job_id}")
    return 0


COMMANDS = [
    Command("train", "train a new model version (a job in the engine)", train_arguments,
            run_train),
    Command("crossval", "train K fold models and score out-of-fold", crossval_arguments,
            run_crossval),
    Command("predict", "score images with the current model", predict_arguments, run_predict),
    Command("rescore", "re-score every image from its stored probabilities "
                       "(after a [scoring] change; no model run)", rescore_arguments,
            run_rescore),
    Command("jobs", "list jobs", jobs_arguments, run_jobs),
    Command("cancel", "cancel a queued or running job", cancel_arguments, run_cancel),
]
