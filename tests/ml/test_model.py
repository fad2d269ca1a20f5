"""engine.ml (learner, train, infer, device): real fastai training on a tiny demo set.

The slow tests share one module-scoped training (resnet18, 16 images of 64², 1 epoch) so the
whole file stays well under two minutes on 2 cores.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from segtriage.engine.project import imageio
from segtriage.engine.ml import device as device_mod
from segtriage.engine.ml.device import DeviceError, pick_device, pick_precision, precision_tag, set_cpu_threads
from segtriage.engine.ml.infer import Predictor, pad_geometry
from segtriage.engine.project.scoring.probs import ProbWriter, load_prob_png, prob_relpath, save_prob_png
from segtriage.engine.project.config import ModelConfig
from segtriage.engine.ml.learner import TrainError, build_learner, effective_batch_size, split_valid
from segtriage.engine.ml.train import TrainCancelled, train
from segtriage.engine.ml.weights import InputSpec, ModelError, load_model, read_sidecar, save_weights, sidecar_path

CODES = ["naw", "aye"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared 2-core runner, two OpenMP threads wait on each other
    at every small op when other processes hold a core (measured: training 4× slower under
    load). Results are the same; only the speed of this file changes."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def mcfg(**kw):
    # trained at 32² (the demo images are 64²): 4× cheaper, and predictions are resized back
    base = dict(arch="resnet18", pretrained=False, size_policy="resize", image_size=32,
                batch_size=8, epochs=1, min_steps=0, lr=1e-3, valid_pct=0.2, seed=42,
                device="cpu", precision="fp32")
    base.update(kw)
    return ModelConfig(**base)


def write_png(path: Path, a: np.ndarray) -> Path:
    Image.fromarray(a).save(path)
    return path


def disk_pair(folder: Path, name: str, h: int, w: int, seed: int) -> tuple[Path, Path]:
    """A bright disk on noise and its 0/255 mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, min(h, w) * 0.25
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    img = np.clip(rng.normal(60, 20, (h, w)) + 140 * disk, 0, 255).astype(np.uint8)
    img = np.repeat(img[:, :, None], 3, axis=2)
    ip = write_png(folder / f"{name}.png", img)
    mp = write_png(folder / f"{name}_mask.png", (disk * 255).astype(np.uint8))
    return ip, mp


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "set"
    try:
        from segtriage.engine.project.demo import make_demo
        make_demo(root, count=16, size=64, seed=1)
        items = [(p, p.with_name(p.stem + "_mask.png")) for p in sorted(root.glob("img_*.png"))
                 if not p.stem.endswith("_mask")]
    except ImportError:  # pragma: no cover - demo module is a teammate's
        root.mkdir(parents=True)
        items = [disk_pair(root, f"img_{i:03d}", 64, 64, i) for i in range(16)]
    assert len(items) == 16
    return root, items


# -- fast: pure functions --------------------------------------------------------------------

def test_split_valid_is_deterministic_and_order_free():
    items = [(Path(f"/d/img_{i}.png"), Path(f"/d/img_{i}_mask.png")) for i in range(20)]
    v = split_valid(items, 0.2, seed=7)
    assert len(v) == 4 and v == sorted(v)
    assert split_valid(items, 0.2, seed=7) == v
    rev = items[::-1]
    assert {rev[i][0] for i in split_valid(rev, 0.2, 7)} == {items[i][0] for i in v}
    assert split_valid(items, 0.2, seed=8) != v  # the seed matters
    assert split_valid(items[:2], 0.2, 1) in ([0], [1])  # at least one on each side
    assert split_valid(items[:1], 0.2, 1) == []
    assert split_valid(items, 0.0, 1) == []


def test_effective_batch_size_gives_four_steps():
    assert effective_batch_size(13, 8) == 3     # 13 // 3 = 4 steps, not 1 step of 8
    assert effective_batch_size(64, 8) == 8
    assert effective_batch_size(5, 8) == 2      # never 1 while 2 images exist (BatchNorm)
    assert effective_batch_size(1, 8) == 1


def test_pad_geometry_matches_fastai_formula():
    # 100×60 → a centred 100×100 square: 20 rows of padding above (tl y = -20)
    assert pad_geometry(100, 60, 64) == ((100, 100), (0, -20))
    assert pad_geometry(60, 100, 64) == ((100, 100), (-20, 0))
    assert pad_geometry(64, 64, 64) == ((64, 64), (0, 0))


def test_prob_png_round_trip(tmp_path):
    p = np.array([[0.0, 0.5, 1.0], [0.25, 0.999, 0.002]], np.float32)
    out = tmp_path / "preds" / "m3" / "ab" / "abcd.png"
    save_prob_png(p, out)
    back = load_prob_png(out)
    assert back.dtype == np.float32 and back.shape == (2, 3)
    assert np.array_equal(np.round(back * 255).astype(int),
                          [[0, 128, 255], [64, 255, 1]])  # round(p * 255)
    assert sorted(x.name for x in out.parent.iterdir()) == ["abcd.png"]  # no temp file left
    save_prob_png(np.full((2, 2), np.nan), out, sync=False)  # NaN → 0, not garbage
    assert load_prob_png(out).max() == 0.0
    with pytest.raises(ValueError):
        save_prob_png(np.zeros((2, 2, 2)), out)


def test_prob_relpath():
    sha = "ab" + "0" * 62
    assert prob_relpath(sha, 7) == f"preds/m7/ab/{sha}.png"
    assert prob_relpath(sha, 7, fold=2) == f"preds/m7/f2/ab/{sha}.png"
    with pytest.raises(ValueError):
        prob_relpath("../../etc/passwd", 1)


def test_device_choice():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        pick_device("tpu9")
    cpu = torch.device("cpu")
    assert pick_precision("fp32", cpu) == "fp32"
    assert pick_precision("auto", cpu) in ("fp32", "bf16")
    assert pick_precision("auto", torch.device("mps")) == "fp32"
    with pytest.raises(DeviceError):
        pick_precision("int4", cpu)
    assert precision_tag(cpu, "bf16") == "cpu-bf16"


def test_cpu_threads_leave_a_core_free_in_bf16_only(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(device_mod, "_DEFAULT_THREADS", 4)  # as if torch chose 4 cores
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpu = torch.device("cpu")
    try:
        assert set_cpu_threads(cpu, "bf16") == 3 == torch.get_num_threads()
        assert set_cpu_threads(cpu, "fp32") == 4 == torch.get_num_threads()
        assert set_cpu_threads(cpu, "bf16", 2) == 2 == torch.get_num_threads()  # configured
        monkeypatch.setattr(device_mod, "_DEFAULT_THREADS", 1)
        assert set_cpu_threads(cpu, "bf16") == 1                 # never below one
        monkeypatch.setenv("OMP_NUM_THREADS", "4")               # the user's choice stands
        monkeypatch.setattr(device_mod, "_DEFAULT_THREADS", 4)
        assert set_cpu_threads(cpu, "bf16") == 4
        assert set_cpu_threads(torch.device("cuda"), "bf16") is None
        assert torch.get_num_threads() == 4                      # untouched off the CPU
    finally:
        torch.set_num_threads(before)


def test_pretrained_without_cache_fails_fast_with_advice(tmp_path, monkeypatch, demo):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    with pytest.raises(TrainError, match=r"not cached at .*resnet18.*pretrained = false"):
        build_learner(demo[1], CODES, mcfg(pretrained=True))


def test_load_model_refuses_pickled_code_and_missing_files(tmp_path):
    with pytest.raises(ModelError, match="missing"):
        load_model(tmp_path / "nope.pt", "resnet18", 2)
    evil = tmp_path / "evil.pt"
    torch.save({"x": SimpleNamespace(a=1)}, evil)  # needs unpickling of a class
    with pytest.raises(ModelError, match="cannot load model weights"):
        load_model(evil, "resnet18", 2)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="junk.pt"):
        load_model(junk, "resnet18", 2)


# -- slow: real training ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(demo, tmp_path_factory):
    """One train() run with two unusable pairs mixed in, recording every callback."""
    root, items = demo
    extra = tmp_path_factory.mktemp("bad")
    bad_img = extra / "broken.png"
    bad_img.write_bytes(b"not a png at all")
    wrong = disk_pair(extra, "wrongsize", 64, 64, 99)
    write_png(wrong[1], np.zeros((32, 32), np.uint8))  # mask smaller than its image
    all_items = items[:8] + [(bad_img, items[0][1]), wrong] + items[8:]
    progress, epochs, logs = [], [], []
    out = tmp_path_factory.mktemp("models") / "m0001.pt"
    res = train(all_items, CODES, mcfg(epochs=2), out,
                on_progress=lambda f, m, e: progress.append((f, m, e)),
                on_epoch=epochs.append, log=logs.append)
    return SimpleNamespace(res=res, progress=progress, epochs=epochs, logs=logs, out=out,
                           items=items, bad=[bad_img, wrong[0]])


@pytest.mark.slow
def test_train_writes_pickle_free_weights_and_sidecar(trained):
    res, out = trained.res, trained.out
    assert res.weights == out and out.is_file()
    sd = torch.load(out, weights_only=True)  # no pickle of code needed
    assert isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values())
    meta = read_sidecar(out)
    assert sidecar_path(out).name == "m0001.pt.json"
    assert meta["arch"] == "resnet18" and meta["codes"] == CODES and meta["image_size"] == 32
    assert meta["size_policy"] == "resize"
    assert meta["normalize"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert sorted(p.name for p in out.parent.iterdir()) == ["m0001.pt", "m0001.pt.json"]


@pytest.mark.slow
def test_train_result_figures(trained):
    res = trained.res
    assert [p for p, _ in res.skipped] == trained.bad
    assert "broken.png" in res.skipped[0][1] and "32×32" in res.skipped[1][1]
    assert res.n_train + res.n_valid == 16 and res.n_valid == 3
    idx = split_valid(trained.items, 0.2, 42)  # the skipped pairs do not move the split
    assert res.valid_items == [trained.items[i][0] for i in idx]
    assert res.batch_size == 3 and res.steps_per_epoch == 4  # 13 images: bs lowered from 8
    assert res.epochs == 2 and len(res.history) == 2
    assert res.train_loss == res.history[-1]["train_loss"] > 0
    assert res.valid_loss == res.history[-1]["valid_loss"] > 0
    assert res.device == "cpu" and res.seconds > 0 and res.image_size == 32
    # valid Dice: one figure over all valid pixels, recomputed by hand from fp32 predictions
    pred = Predictor(res.weights, "resnet18", CODES, mcfg())
    inter = total = 0
    for (path, prob), i in zip(pred.predict(res.valid_items), idx):
        y = imageio.read_mask(trained.items[i][1], CODES) > 0
        inter += np.count_nonzero(y & (prob > 0.5))
        total += np.count_nonzero(y) + np.count_nonzero(prob > 0.5)
    assert res.valid_dice == pytest.approx(2 * inter / total if total else 1.0, abs=1e-12)


@pytest.mark.slow
def test_progress_and_epoch_callbacks(trained):
    prog, eps = trained.progress, trained.epochs
    fracs = [f for f, _, _ in prog]
    assert fracs == sorted(fracs) and 0 < fracs[0] and fracs[-1] == 1.0
    batch_msgs = [m for _, m, _ in prog if "batch" in m]
    assert len(batch_msgs) == 2 * 4  # 2 epochs × 4 steps
    assert re.fullmatch(r"epoch 1/2 batch 1/4 loss \d+(\.\d+)?(e-?\d+)?", batch_msgs[0])
    assert batch_msgs[-1].startswith("epoch 2/2 batch 4/4 loss ")
    assert all(e is None or e >= 0 for _, _, e in prog)
    assert [e["epoch"] for e in eps] == [1, 2]
    for e in eps:
        assert set(e) == {"epoch", "train_loss", "valid_loss", "valid_dice"}
        assert 0 < e["train_loss"] < 5 and 0 < e["valid_loss"] < 5
        assert 0 <= e["valid_dice"] <= 1
    assert eps == trained.res.history
    assert any("skipping" in m and "broken.png" in m for m in trained.logs)


@pytest.fixture(scope="module")
def learner_and_weights(demo, tmp_path_factory):
    """A learner trained in memory (valid_idx given) and its weights saved to disk."""
    _, items = demo
    learn = build_learner(items, CODES, mcfg(), valid_idx=[0, 1, 2])
    learn.fit_one_cycle(1, 1e-3)
    out = tmp_path_factory.mktemp("mem") / "mem.pt"
    save_weights(learn.model, out, arch="resnet18", codes=CODES, spec=InputSpec(32))
    return learn, out


@pytest.mark.slow
def test_reloaded_model_is_bit_identical_and_matches_fastai(learner_and_weights, demo):
    learn, out = learner_and_weights
    _, items = demo
    assert len(learn.dls.valid_ds) == 3 and len(learn.dls.train_ds) == 13
    paths = [p for p, _ in items[:8]]
    # fastai's own pipeline first (the Predictor below switches the model to channels_last)
    probs, _ = learn.get_preds(dl=learn.dls.test_dl(paths[:6]))
    fastai_fg = probs[:, 1].numpy()
    mem = Predictor.from_models([learn.model], CODES, InputSpec(32), precision="fp32")
    disk = Predictor(out, "resnet18", CODES, mcfg())
    assert disk.precision_tag == "cpu-fp32"
    a = [p for _, p in mem.predict(paths)]
    b = [p for _, p in disk.predict(paths)]
    for x, y in zip(a, b):
        assert x.shape == (64, 64) and x.dtype == np.float32
        assert np.array_equal(x, y)  # bit-identical in fp32
    # another batch size picks other oneDNN kernels: equal to rounding, not bit for bit
    c = [p for _, p in disk.predict(paths, batch_size=5)]
    np.testing.assert_allclose(np.stack(c), np.stack(b), atol=1e-5)
    # in network geometry (32²), the same numbers as fastai's own decode/resize/normalise
    x = np.stack([disk._prepare(imageio.read_image(p))[0] for p in paths[:6]])
    ours = disk._forward(x, disk.models).numpy()
    np.testing.assert_allclose(ours, fastai_fg, atol=2e-5)


@pytest.mark.slow
def test_native_resolution_for_every_policy(learner_and_weights, tmp_path):
    learn, out = learner_and_weights
    sizes = [(64, 64), (48, 80), (100, 60), (33, 47), (130, 96)]
    paths = [disk_pair(tmp_path, f"s{i}", h, w, i)[0] for i, (h, w) in enumerate(sizes)]
    model = load_model(out, "resnet18", 2)
    for policy in ("resize", "pad", "crop"):
        pred = Predictor.from_models([model], CODES, InputSpec(64, policy), precision="fp32")
        got = dict(pred.predict(paths, batch_size=3))
        for p, hw in zip(paths, sizes):
            prob = got[p]
            assert prob.shape == hw and prob.dtype == np.float32, (policy, p)
            assert 0.0 <= prob.min() and prob.max() <= 1.0
    # pad: the padded square goes through exactly fastai's Resize(pad, zeros) preparation
    from fastai.vision.all import PadMode, PILImage, Resize, ResizeMethod
    pred = Predictor.from_models([model], CODES, InputSpec(64, "pad"))
    for p in paths:
        img = imageio.read_image(p)
        ours, _ = pred._prepare(img)
        theirs = Resize(64, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)(
            PILImage.create(img), split_idx=1)
        assert np.array_equal(ours, np.asarray(theirs)), p
        squish, _ = Predictor.from_models([model], CODES, InputSpec(64))._prepare(img)
        theirs = Resize(64, method=ResizeMethod.Squish)(PILImage.create(img), split_idx=1)
        assert np.array_equal(squish, np.asarray(theirs)), p


@pytest.mark.slow
def test_folds_bf16_and_unreadable_images(learner_and_weights, trained, tmp_path):
    _, out = learner_and_weights
    paths = [p for p, _ in trained.items[:5]]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    order = paths[:2] + [broken] + paths[2:]
    pred = Predictor([out, trained.out], "resnet18", CODES, mcfg())
    res = list(pred.predict(order, batch_size=4))
    assert [p for p, _ in res] == order  # input order kept, the run goes on
    assert isinstance(res[2][1], imageio.ImageError) and "broken.png" in str(res[2][1])
    f0 = dict(pred.predict(paths, fold=0))
    f1 = dict(pred.predict(paths, fold=1))
    for p, prob in res:
        if p != broken:
            np.testing.assert_allclose(prob, (f0[p] + f1[p]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="fold 2"):
        next(pred.predict(paths, fold=2))
    bf = Predictor(out, "resnet18", CODES, mcfg(), precision="bf16")
    assert bf.precision_tag == "cpu-bf16"
    fp = dict(Predictor(out, "resnet18", CODES, mcfg()).predict(paths))
    for p, prob in bf.predict(paths):
        assert prob.dtype == np.float32
        assert np.abs(prob - fp[p]).mean() < 0.01


@pytest.mark.slow
def test_cancel_takes_effect_within_one_batch(demo, tmp_path):
    _, items = demo
    state = {"requested": False, "after": 0}

    def on_progress(frac, msg, eta):
        if state["requested"] and "batch" in msg:
            state["after"] += 1
        if msg.startswith("epoch 1/3 batch 2/"):
            state["requested"] = True

    out = tmp_path / "m.pt"
    with pytest.raises(TrainCancelled):
        train(items, CODES, mcfg(epochs=3), out, on_progress=on_progress,
              should_cancel=lambda: state["requested"])
    assert state["requested"] and state["after"] <= 1
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.slow
def test_masks_saved_while_the_model_trains_do_not_break_the_run(demo, tmp_path):
    # the person fixes masks during a retrain: fastai reads masks every epoch, so a save
    # mid-run (another size, half-written, deleted) must not reach the run it started from
    import shutil

    _, src = demo
    data = tmp_path / "data"
    data.mkdir()
    items = []
    for ip, mp in src:
        items.append((Path(shutil.copy(ip, data)), Path(shutil.copy(mp, data))))
    items[0][1].write_bytes(b"not a png")  # broken from the start: skipped, named as itself
    edits = {"done": False}

    def on_epoch(d):
        if not edits["done"]:
            edits["done"] = True
            write_png(items[1][1], np.zeros((17, 5), np.uint8))       # another size
            items[2][1].write_bytes(items[2][1].read_bytes()[:40])   # half-written
            items[3][1].unlink()                                     # gone
            for _, m in items[4:]:  # the valid set's too: read again for the valid Dice
                write_png(m, np.zeros((9, 9), np.uint8))

    out = tmp_path / "models" / "m.pt"
    res = train(items, CODES, mcfg(epochs=2), out, on_epoch=on_epoch)
    assert edits["done"] and res.epochs == 2 and len(res.history) == 2
    assert res.valid_dice is not None and res.valid_dice > 0
    assert [(p, "not a png" in why or "cannot" in why or "mask" in why)
            for p, why in res.skipped] == [(items[0][0], True)]
    assert str(items[0][1]) in res.skipped[0][1] and ".train-masks-" not in res.skipped[0][1]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.pt", "m.pt.json"]  # copies gone


@pytest.mark.slow
def test_empty_valid_set_and_min_steps(tmp_path):
    items = [disk_pair(tmp_path, f"e{i}", 36, 40, i) for i in range(8)]
    res = train(items, CODES, mcfg(min_steps=8, image_size=0), tmp_path / "m" / "m.pt",
                valid_idx=[])
    # 8 images → bs 2, 4 steps per epoch; min_steps 8 raises 1 epoch to 2
    assert (res.batch_size, res.steps_per_epoch, res.epochs) == (2, 4, 2)
    assert res.n_valid == 0 and res.valid_items == [] and res.valid_dice is None
    assert res.valid_loss is None and res.train_loss > 0
    assert res.image_size == 32  # 0 = the first image's longer side (40) rounded to 32
    assert json.loads(sidecar_path(res.weights).read_text())["image_size"] == 32


def test_prob_writer_writes_in_background_and_reports_failures(tmp_path):
    rng = np.random.default_rng(0)
    maps = {tmp_path / "p" / f"{i}.png": rng.random((5, 7), dtype=np.float32) for i in range(20)}
    with ProbWriter(max_pending=4) as w:
        for path, prob in maps.items():
            w.save(prob, path)
    for path, prob in maps.items():
        assert np.array_equal(load_prob_png(path), np.rint(prob * 255) / np.float32(255))
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder should be
    w = ProbWriter()
    w.save(np.zeros((2, 2)), tmp_path / "ok.png")
    w.save(np.zeros((2, 2)), blocker / "sub" / "x.png")
    with pytest.raises(OSError, match="1 probability map"):
        w.close()
    assert (tmp_path / "ok.png").exists() and w.errors[0][0] == blocker / "sub" / "x.png"


@pytest.mark.slow
def test_pad_and_crop_policies_make_square_batches_from_mixed_sizes(tmp_path):
    sizes = [(48, 80), (100, 60), (64, 64), (40, 40), (90, 70), (56, 120), (64, 96), (80, 50)]
    items = [disk_pair(tmp_path, f"m{i}", h, w, i) for i, (h, w) in enumerate(sizes)]
    for policy in ("pad", "crop"):
        learn = build_learner(items, CODES, mcfg(size_policy=policy), valid_idx=[0, 1])
        x, y = learn.dls.one_batch()
        assert tuple(x.shape) == (2, 3, 32, 32) and tuple(y.shape) == (2, 32, 32), policy
        assert set(torch.unique(y).tolist()) <= {0, 1}
        xv, yv = learn.dls.valid.one_batch()
        assert tuple(xv.shape[-2:]) == (32, 32) and tuple(yv.shape[-2:]) == (32, 32)


@pytest.mark.slow
def test_augmentation_moves_each_mask_with_its_image(tmp_path):
    # four copies of one off-centre disk to train on: unaugmented, every training sample is
    # the same; augmented (flips, turns, warps, lighting), they differ, and in every sample
    # the bright pixels are still the mask's pixels. Validation is never augmented.
    ip, mp = disk_pair(tmp_path, "d", 64, 64, 3)
    items = [(ip, mp)] * 4 + [disk_pair(tmp_path, f"v{i}", 64, 64, 10 + i) for i in range(2)]
    masks = {}
    for on in (False, True):
        learn = build_learner(items, CODES, mcfg(augment=on), valid_idx=[4, 5])
        ys = []
        for _ in range(3):
            x, y = learn.dls.train.one_batch()
            # plain tensors (fastai's TensorImage & TensorMask do not mix); normalised, but
            # the disk is still the bright part
            grey, yb = torch.Tensor(x).float().mean(1), torch.Tensor(y).bool()
            for g, m in zip(grey, yb):
                assert m.any() and (~m).any()
                cut = (g[m].mean() + g[~m].mean()) / 2
                bright = g > cut
                assert (bright & m).sum() / (bright | m).sum() > 0.7, on
            ys.append(torch.Tensor(y).clone())
        masks[on] = torch.cat(ys)
        xv, yv = learn.dls.valid.one_batch()
        masks[on, "valid"] = torch.Tensor(yv).clone()
    same = lambda t: all(torch.equal(t[0], s) for s in t[1:])  # noqa: E731
    assert same(masks[False]) and not same(masks[True])
    assert torch.equal(masks[False, "valid"], masks[True, "valid"])


@pytest.mark.slow
@pytest.mark.skipif(not __import__("segtriage.engine.ml.device", fromlist=["x"]).cpu_has_bf16(),
                    reason="this CPU has no native bf16")
def test_cpu_bf16_training_leaves_fp32_weights_and_no_autocast(tmp_path):
    items = [disk_pair(tmp_path, f"b{i}", 32, 32, i) for i in range(8)]
    res = train(items, CODES, mcfg(precision="bf16"), tmp_path / "m" / "m.pt", valid_idx=[0, 1])
    meta = json.loads(sidecar_path(res.weights).read_text())
    assert meta["train_precision"] == "bf16" and math.isfinite(res.train_loss)
    assert not torch.is_autocast_enabled("cpu")  # the callback left nothing switched on
    sd = torch.load(res.weights, weights_only=True)
    assert all(t.dtype == torch.float32 for t in sd.values() if t.is_floating_point())
    res32 = train(items, CODES, mcfg(precision="fp32"), tmp_path / "n" / "n.pt", valid_idx=[0, 1])
    assert json.loads(sidecar_path(res32.weights).read_text())["train_precision"] == "fp32"
