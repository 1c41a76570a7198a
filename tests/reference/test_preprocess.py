#!/usr/bin/env python3
"""libclip's image preprocessing against open_clip's image_transform and torchvision (issue 18).

Images: the project's (tests/data/preprocess/images and extra) and 200 generated here from a fixed seed with
Pillow: gradients and noise in RGB, L, LA, RGBA, P (with and without transparency), 1-bit, 16-bit grey and CMYK;
sizes from 1x1 to 3000x2000 and strips 7 pixels wide; PNG, JPEG (qualities, 4:4:4/4:2:2/4:2:0, progressive),
WebP and BMP.
  eval: open_clip.image_transform(224, is_train=False, resize_mode=M) for M in shortest, longest, squash, on the
        PIL image, against `clip_preprocess --resize-mode M`;
  crop: torchvision's RandomResizedCrop(224, scale=(0.08, 1)) window drawn by get_params under torch.manual_seed,
        applied by torchvision's resized_crop (bicubic, antialias) and by libclip's resized_crop_rgb with the same
        window (tests/reference/crop_probe.cpp): the seed-aligned case.
Every output pixel must be within 1/255 (eval: after undoing the normalization). The largest difference and
the share of exactly equal values are printed. Exits 1 on any failure.

Run by ctest (reference.preprocess) with -DCLIP_REFERENCE_TESTS; by hand:
    $(scripts/venv)/bin/python tests/reference/test_preprocess.py --preprocess build-torch2/bin/clip_preprocess \
        --crop-probe build-torch2/bin/clip_crop_probe
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from open_clip.transform import image_transform
from PIL import Image
from safetensors.torch import load_file
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from torchvision.transforms import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
SIZE = 224
BOUND = 1 / 255 + 1e-6


def generate(folder, count, rng):
    sizes = [(1, 1), (2, 3), (7, 500), (500, 7), (224, 224), (225, 223), (300, 200), (640, 480), (97, 1003),
             (3000, 2000)]
    modes = ["RGB", "L", "LA", "RGBA", "P", "PA", "1", "I;16", "CMYK"]
    paths = []
    for k in range(count):
        w, h = sizes[k % len(sizes)]
        if (w, h) == (3000, 2000) and k > 100:
            w, h = 1200, 900  # two huge images are enough
        mode = modes[(k // len(sizes)) % len(modes)]
        x = np.linspace(0, 1, w)[None, :, None]
        y = np.linspace(0, 1, h)[:, None, None]
        if k % 3 == 0:
            base = rng.random((h, w, 4))
        else:
            base = np.concatenate([x * np.ones((h, 1, 1)), y * np.ones((1, w, 1)), (x + y) / 2 * np.ones((h, w, 1)),
                                   (1 - x) * np.ones((h, 1, 1))], axis=2)
            base = (base + 0.05 * rng.random((h, w, 4))).clip(0, 1)
        rgba = Image.fromarray((base * 255).astype(np.uint8), "RGBA")
        if mode == "I;16":
            image = Image.fromarray((base[:, :, 0] * 65535).astype(np.uint16))
        elif mode == "P":
            image = rgba.convert("RGB").quantize(colors=int(rng.integers(2, 256)))
        elif mode == "PA":
            image = rgba.convert("RGB").quantize(colors=16)
            image.info["transparency"] = 3
        else:
            image = rgba.convert(mode)
        kind = k % 7
        if mode in ("CMYK",) or (mode in ("RGB", "L") and kind in (1, 2, 3)):
            options = [dict(quality=95, subsampling=0), dict(quality=75, subsampling=1),
                       dict(quality=50, subsampling=2, progressive=True), dict(quality=90)][k % 4]
            if mode == "L":
                options.pop("subsampling", None)
            path = os.path.join(folder, "gen%03d.jpg" % k)
            image.save(path, "JPEG", **options)
        elif mode in ("RGB", "RGBA") and kind == 4 and w > 1 and h > 1:
            path = os.path.join(folder, "gen%03d.webp" % k)
            image.save(path, "WEBP", lossless=bool(k % 2), quality=80)
        elif mode in ("RGB", "L", "P", "1") and kind == 5:
            path = os.path.join(folder, "gen%03d.bmp" % k)
            image.save(path, "BMP")
        else:
            path = os.path.join(folder, "gen%03d.png" % k)
            image.save(path, "PNG")
        paths.append(path)
    return paths


def project_images():
    paths = []
    for sub in ("images", "extra"):
        paths += sorted(glob.glob(os.path.join(ROOT, "tests", "data", "preprocess", sub, "*")))
    return [p for p in paths if os.path.isfile(p)]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("test_preprocess: %s exited %d: %s" % (os.path.basename(cmd[0]), p.returncode, p.stderr[-600:]))
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preprocess", required=True, help="clip_preprocess")
    ap.add_argument("--crop-probe", required=True, help="clip_crop_probe")
    ap.add_argument("--generated", type=int, default=200)
    args = ap.parse_args()
    start = time.time()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="clip_preprocess_") as folder:
        paths = project_images() + generate(folder, args.generated, np.random.default_rng(18))
        # Images Pillow itself cannot open (none expected) are left out of both sides.
        usable = []
        for path in paths:
            try:
                with Image.open(path) as im:
                    im.load()
                usable.append(path)
            except Exception as e:  # noqa: BLE001 (any Pillow failure)
                print("  Pillow cannot open %s (%s): left out" % (os.path.relpath(path, ROOT), e))
        print("test_preprocess: %d images (%d of the project's, %d generated)"
              % (len(usable), len(project_images()), args.generated))
        std = torch.tensor(STD).view(3, 1, 1)
        for mode in ("shortest", "longest", "squash"):
            transform = image_transform(SIZE, is_train=False, mean=MEAN, std=STD, resize_mode=mode,
                                        interpolation="bicubic")
            output = os.path.join(folder, "ours_%s.safetensors" % mode)
            run([args.preprocess, "--size", str(SIZE), "--resize-mode", mode, "--key", "path", "--output", output]
                + usable)
            ours = load_file(output)
            worst, worst_path, equal, total = 0.0, "", 0, 0
            for path in usable:
                with Image.open(path) as im:
                    ref = transform(im)
                if path not in ours:
                    print("  eval %s: clip_preprocess wrote nothing for %s" % (mode, path))
                    failures += 1
                    continue
                diff = ((ours[path] - ref).abs() * std)
                d = diff.max().item()
                equal += (diff < 1e-6).sum().item()
                total += diff.numel()
                if d > worst:
                    worst, worst_path = d, path
                if d > BOUND:
                    failures += 1
                    print("  eval %s: %s differs by %.4f (%.2f/255)" % (mode, os.path.relpath(path, ROOT), d, d * 255))
            print("test_preprocess: eval %-8s worst %.2f/255 (%s); %.4f%% of values equal"
                  % (mode, worst * 255, os.path.basename(worst_path) or "-", 100.0 * equal / max(total, 1)))
        # The seed-aligned RandomResizedCrop.
        crop = RandomResizedCrop(SIZE, scale=(0.08, 1.0), interpolation=InterpolationMode.BICUBIC)
        lines, refs = [], []
        for k, path in enumerate(usable):
            with Image.open(path) as im:  # open_clip's order: the crop in the image's own mode, then RGB
                torch.manual_seed(k)
                top, left, height, width = crop.get_params(im, crop.scale, crop.ratio)
                cropped = F.resized_crop(im, top, left, height, width, [SIZE, SIZE], InterpolationMode.BICUBIC,
                                         antialias=True)
                refs.append(np.asarray(cropped.convert("RGB")))
            lines.append("%s %d %d %d %d %d" % (path, left, top, width, height, SIZE))
        output = os.path.join(folder, "crops.safetensors")
        p = subprocess.run([args.crop_probe, output], input="\n".join(lines) + "\n", capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("test_preprocess: clip_crop_probe exited %d: %s" % (p.returncode, p.stderr[-600:]))
        ours = load_file(output)
        worst, equal, total = 0, 0, 0
        for k, path in enumerate(usable):
            diff = np.abs(ours[str(k)].numpy().astype(int) - refs[k].astype(int))
            worst = max(worst, int(diff.max()))
            equal += int((diff == 0).sum())
            total += diff.size
            if diff.max() > 1:
                failures += 1
                print("  crop: %s differs by %d/255 (window %s)" % (os.path.relpath(path, ROOT), diff.max(), lines[k]))
        print("test_preprocess: crop     worst %d/255; %.4f%% of values equal" % (worst, 100.0 * equal / max(total, 1)))
    print("test_preprocess: %d failures; %.0f s" % (failures, time.time() - start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
