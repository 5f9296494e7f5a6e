"""Reference data and checkpoint for the calibration-status classifier (deterministic).

Scenes: coloured boxes at different depths over a ground gradient. A LiDAR is simulated as sparse
scan lines; its points carry depth and intensity. Calibrated: each point lands on the pixel it was
measured at, so depth edges line up with image edges. Miscalibrated: the points are projected
through a wrong extrinsic (a shift and a rotation), so the edges no longer line up.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FAR = 60.0


def _scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.linspace(0, 1, h)[:, None]
    img = np.empty((3, h, w), np.float32)
    base = rng.uniform(40, 200, 3)
    for c in range(3):
        img[c] = base[c] * (0.6 + 0.4 * rows) + rng.normal(0, 6, (h, w))
    depth = np.broadcast_to(FAR - (FAR - 8) * rows, (h, w)).copy()
    inten = np.full((h, w), 40.0, np.float32)
    for _ in range(int(rng.integers(3, 7))):
        bh, bw = int(rng.integers(h // 6, h // 2)), int(rng.integers(w // 8, w // 2))
        y0, x0 = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
        d = float(rng.uniform(5, 40))
        region = (slice(y0, y0 + bh), slice(x0, x0 + bw))
        closer = depth[region] > d
        color = rng.uniform(0, 255, 3)
        for c in range(3):
            img[c][region][closer] = color[c]
        depth[region][closer] = d
        inten[region][closer] = float(rng.uniform(80, 255))
    return np.clip(img, 0, 255), depth, inten


def _project(
    depth: np.ndarray, inten: np.ndarray, rng: np.random.Generator, miscalibrated: bool
) -> tuple[np.ndarray, np.ndarray]:
    h, w = depth.shape
    vs, us = np.mgrid[0:h:2, 0:w].reshape(2, -1)
    keep = rng.random(vs.size) < 0.7
    vs, us = vs[keep], us[keep]
    pu, pv = us.astype(np.float64), vs.astype(np.float64)
    if miscalibrated:
        angle = np.deg2rad(rng.uniform(-6, 6))
        shift = rng.uniform(4, 9) * np.array([np.cos(t := rng.uniform(0, 2 * np.pi)), np.sin(t)])
        cu, cv = w / 2, h / 2
        du, dv = pu - cu, pv - cv
        pu = cu + np.cos(angle) * du - np.sin(angle) * dv + shift[0]
        pv = cv + np.sin(angle) * du + np.cos(angle) * dv + shift[1]
    pu, pv = np.rint(pu).astype(int), np.rint(pv).astype(int)
    inside = (pu >= 0) & (pu < w) & (pv >= 0) & (pv < h)
    dch = np.zeros((h, w), np.float32)
    ich = np.zeros((h, w), np.float32)
    dch[pv[inside], pu[inside]] = 255 * (1 - depth[vs[inside], us[inside]] / FAR)
    ich[pv[inside], pu[inside]] = inten[vs[inside], us[inside]]
    return dch, ich


def make_split(n: int, seed: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = np.empty((n, 5, h, w), np.uint8)
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    for i in range(n):
        img, depth, inten = _scene(rng, h, w)
        dch, ich = _project(depth, inten, rng, bool(labels[i]))
        images[i] = np.concatenate([img, dch[None], ich[None]]).round().astype(np.uint8)
    return images, labels.astype(np.int64)


def make_data(out: Path, seed: int, options: dict[str, Any]) -> None:
    h, w = options.get("height", 64), options.get("width", 64)
    for offset, (split, n) in enumerate([("train", options.get("train", 2000)), ("val", options.get("val", 400))]):
        images, labels = make_split(n, seed * 100 + offset, h, w)
        np.savez_compressed(out / f"{split}.npz", images=images, labels=labels)
        log.info("%s: %d samples of %s", split, n, images.shape[1:])


def train(ctx: Any, checkpoint: Path) -> dict[str, Any]:
    """Deterministic plain training loop on the train split; returns the training log."""
    import torch

    from pipelines.sources.torch_factory import resolve_factory
    from pipelines.tasks import get_task

    ref = ctx.descriptor.reference
    seed, options = ref.seed, ref.options
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    src = ctx.descriptor.source
    model = resolve_factory(ctx, src.factory)(**src.factory_args)
    task = get_task(ctx)
    with np.load(ctx.dataset / "train.npz") as d:
        images, labels = d["images"], d["labels"]
    x = torch.from_numpy(np.concatenate([task.preprocess(im) for im in images]))
    y = torch.from_numpy(labels)
    epochs, batch, lr = options.get("epochs", 12), options.get("batch", 64), options.get("lr", 3e-3)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(y) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    lines = []
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            logits = model(x[idx])
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            total += len(idx)
        line = f"epoch {epoch + 1}/{epochs} loss {loss_sum / total:.4f} train_acc {correct / total:.4f}"
        log.info(line)
        lines.append(line)
    model.eval()
    # Into a buffer first: torch.save names the archive after the file, and the file is a random
    # temporary path, so saving to it directly would make every retrain's bytes differ.
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    checkpoint.write_bytes(buffer.getvalue())
    return {"seconds": round(time.perf_counter() - start, 1), "log": lines}
