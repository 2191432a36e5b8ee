#!/usr/bin/env python
"""Train the small demo UNet shipped in ``unetrt/assets`` on procedural data.

The model is milesial/Pytorch-UNet (``create_model("milesial", width=8)``, 3 classes:
background, ellipse, polygon) trained on freshly generated samples from
:mod:`unetrt.data.synthetic` with Adam and cross-entropy + Dice loss (as milesial's
``train.py``), random crops, flips and 90-degree rotations. It is validated at full image size on
a held-out seed and writes, atomically:

* ``<out>/milesial_demo.pth``: milesial checkpoint format (state dict + ``mask_values``);
* ``<out>/demo_training.json``: command, data recipe, steps, time and validation Dice;
* ``<out>/samples/sample_<i>.png`` and ``sample_<i>_mask.png``: held-out sample images and
  their ground-truth masks (grey levels = ``mask_values``).

Usage (about 6-7 minutes on one CPU core; deterministic with the default seeds)::

    python scripts/train_demo.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from unetrt.data import CLASSES, MASK_VALUES, colour_mask, make_dataset, make_sample  # noqa: E402
from unetrt.data.synthetic import sample_size  # noqa: E402
from unetrt.models import create_model  # noqa: E402

#: Sizes of the shipped sample images (H, W): square, odd non-square, landscape, portrait.
SAMPLE_SIZES = ((128, 128), (97, 143), (112, 160), (150, 101))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4000, help="optimizer steps")
    p.add_argument("--batch", type=int, default=8, help="crops per step")
    p.add_argument("--crop", type=int, default=96, help="square training crop size")
    p.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate (warm-up, then cosine to 0)")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--width", type=int, default=8, help="UNet base width")
    p.add_argument("--seed", type=int, default=0, help="torch seed and training-data seed")
    p.add_argument("--size-range", type=int, nargs=2, default=(96, 160), metavar=("LO", "HI"),
                   help="image sizes the generator draws from (inclusive)")
    p.add_argument("--val-seed", type=int, default=10_000, help="held-out validation seed")
    p.add_argument("--val-n", type=int, default=64, help="validation images")
    p.add_argument("--sample-seed", type=int, default=20_000, help="seed of the shipped sample images")
    p.add_argument("--eval-every", type=int, default=500, help="log a quick validation every N steps")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (1 is fastest on a shared 2-core machine: with 2 threads "
                        "and a busy second core each step is about 10x slower)")
    p.add_argument("--out", type=Path, default=ROOT / "unetrt" / "assets", help="output directory")
    return p.parse_args(argv)


def train_batch(step: int, args) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh samples for one step: random size, random crop, flips and rot90 (deterministic)."""
    rng = np.random.default_rng([args.seed, 1, step])
    images, masks = [], []
    for _ in range(args.batch):
        h, w = sample_size(rng, args.size_range)
        h, w = max(h, args.crop), max(w, args.crop)
        image, mask = make_sample(rng, h, w)
        y, x = int(rng.integers(0, h - args.crop + 1)), int(rng.integers(0, w - args.crop + 1))
        image = image[y:y + args.crop, x:x + args.crop]
        mask = mask[y:y + args.crop, x:x + args.crop]
        k = int(rng.integers(4))
        image, mask = np.rot90(image, k), np.rot90(mask, k)
        if rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        images.append(np.ascontiguousarray(image))
        masks.append(np.ascontiguousarray(mask))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.from_numpy(np.stack(masks)).long()
    return x, y


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """milesial's multiclass Dice loss: 1 - mean Dice over (image, class) of softmax vs one-hot."""
    probs = F.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    inter = 2 * (probs * onehot).sum(dim=(-1, -2))
    sums = probs.sum(dim=(-1, -2)) + onehot.sum(dim=(-1, -2))
    sums = torch.where(sums == 0, inter, sums)
    return 1 - ((inter + eps) / (sums + eps)).mean()


def predict(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """Eager inference on one HxWx3 uint8 image: /255, HWC->CHW, argmax over classes."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        return model(x).argmax(1)[0].numpy().astype(np.uint8)


def dice_scores(pairs, num_classes: int) -> dict:
    """Per-class Dice: mean over images (absent in both = 1) and global (pixels pooled)."""
    per_image = np.zeros((len(pairs), num_classes))
    inter = np.zeros(num_classes)
    total = np.zeros(num_classes)
    correct = pixels = 0
    for i, (pred, gt) in enumerate(pairs):
        for c in range(num_classes):
            p, g = pred == c, gt == c
            it, tt = float((p & g).sum()), float(p.sum() + g.sum())
            per_image[i, c] = 1.0 if tt == 0 else 2 * it / tt
            inter[c] += it
            total[c] += tt
        correct += int((pred == gt).sum())
        pixels += gt.size
    mean_c = per_image.mean(0)
    glob = 2 * inter / np.maximum(total, 1)
    return {
        "dice_mean_foreground": float(mean_c[1:].mean()),
        "dice_per_class": {CLASSES[c]: float(mean_c[c]) for c in range(num_classes)},
        "global_dice_mean_foreground": float(glob[1:].mean()),
        "global_dice_per_class": {CLASSES[c]: float(glob[c]) for c in range(num_classes)},
        "pixel_accuracy": correct / max(pixels, 1),
        "images": len(pairs),
    }


def evaluate(model, dataset, num_classes: int) -> dict:
    was_training = model.training
    model.eval()
    try:
        return dice_scores([(predict(model, img), m) for img, m in dataset], num_classes)
    finally:
        model.train(was_training)


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(args.steps - args.warmup, 1)
    return args.lr * 0.5 * (1 + math.cos(math.pi * t))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    num_classes = len(CLASSES)
    kwargs = {"in_channels": 3, "num_classes": num_classes, "width": args.width, "bilinear": False}
    model = create_model("milesial", **kwargs)
    params = sum(p.numel() for p in model.parameters())
    print(f"milesial {kwargs}: {params} parameters", flush=True)

    val = make_dataset(args.val_n, args.val_seed, tuple(args.size_range))
    quick_val = val[:16]
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    start = time.perf_counter()
    data_s = 0.0
    history = []
    running = 0.0
    for step in range(args.steps):
        t0 = time.perf_counter()
        x, y = train_batch(step, args)
        data_s += time.perf_counter() - t0
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        logits = model(x)
        loss = F.cross_entropy(logits, y) + dice_loss(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        running = 0.98 * running + 0.02 * value if step else value
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            q = evaluate(model, quick_val, num_classes)
            elapsed = time.perf_counter() - start
            history.append({"step": step + 1, "seconds": round(elapsed, 1), "loss": round(running, 4),
                            "quick_val_dice": round(q["dice_mean_foreground"], 4)})
            print(f"step {step + 1:5d}  {elapsed:6.1f}s  loss {running:.4f}  "
                  f"quick val dice {q['dice_mean_foreground']:.4f}  (data {data_s:.0f}s)", flush=True)
    train_s = time.perf_counter() - start

    metrics = evaluate(model, val, num_classes)
    print("validation:", json.dumps(metrics), flush=True)

    out: Path = args.out
    (out / "samples").mkdir(parents=True, exist_ok=True)
    model.eval()
    samples = []
    for i, (h, w) in enumerate(SAMPLE_SIZES):
        image, mask = make_sample(np.random.default_rng([args.sample_seed, i]), h, w)
        Image.fromarray(image).save(out / "samples" / f"sample_{i}.png")  # RGB
        Image.fromarray(colour_mask(mask, MASK_VALUES)).save(out / "samples" / f"sample_{i}_mask.png")  # L
        s = dice_scores([(predict(model, image), mask)], num_classes)
        samples.append({"image": f"samples/sample_{i}.png", "mask": f"samples/sample_{i}_mask.png",
                        "height": h, "width": w, "seed": [args.sample_seed, i],
                        "dice_mean_foreground": round(s["dice_mean_foreground"], 4)})
    print("samples:", [s["dice_mean_foreground"] for s in samples], flush=True)

    state = model.state_dict()
    state["mask_values"] = list(MASK_VALUES)
    ckpt = out / "milesial_demo.pth"
    tmp = ckpt.with_name(f".{ckpt.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, ckpt)
    blob = ckpt.read_bytes()

    argv_list = list(sys.argv[1:] if argv is None else argv)
    record = {
        "description": "Demo milesial UNet trained on procedural shapes (unetrt.data.synthetic): "
                       "class 1 = discs/ellipses, class 2 = rectangles/triangles, on textured backgrounds.",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"arch": "milesial", "kwargs": kwargs, "parameters": params},
        "checkpoint": {"file": ckpt.name, "format": "milesial (state_dict + mask_values)",
                       "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()},
        "classes": list(CLASSES),
        "mask_values": list(MASK_VALUES),
        "preprocess": "RGB uint8 / 255, HWC -> CHW, float32; prediction = argmax over classes",
        "data": {
            "generator": "unetrt.data.synthetic.make_sample",
            "size_range": list(args.size_range),
            "train": {"rng": f"numpy default_rng([{args.seed}, 1, step]) per step", "crop": args.crop,
                      "batch": args.batch, "augment": "random crop, rot90, horizontal flip",
                      "samples_seen": args.steps * args.batch},
            "validation": {"make_dataset": {"n": args.val_n, "seed": args.val_seed,
                                            "size_range": list(args.size_range)},
                           "full_image_size": True},
            "samples": samples,
        },
        "training": {
            "command": " ".join(["python", "scripts/train_demo.py", *argv_list]),
            "args": {k: (str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v))
                     for k, v in vars(args).items() if k != "out"},
            "optimizer": f"Adam(lr={args.lr}), {args.warmup}-step linear warm-up then cosine decay to 0",
            "loss": "cross_entropy + multiclass Dice loss (softmax vs one-hot, as milesial train.py)",
            "steps": args.steps,
            "seconds": round(train_s, 1),
            "data_seconds": round(data_s, 1),
            "final_loss": round(running, 4),
            "history": history,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
        },
        "validation": {k: (round(v, 4) if isinstance(v, float) else
                           ({c: round(d, 4) for c, d in v.items()} if isinstance(v, dict) else v))
                       for k, v in metrics.items()},
    }
    atomic_write_bytes(out / "demo_training.json", (json.dumps(record, indent=2) + "\n").encode())
    print(f"wrote {ckpt} ({len(blob)} bytes) and {out / 'demo_training.json'} in {train_s:.0f}s of training",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
