#!/usr/bin/python3
"""The reference preprocessing, timed: PIL decode + torchvision Resize(N, BICUBIC) + CenterCrop(N) + convert("RGB")
+ ToTensor + Normalize, exactly openai/CLIP's `_transform`, one thread, from bytes already in memory.

    /usr/bin/python3 bench/preprocess_pil.py [--size 224] [--seconds 5] IMAGE...

Prints ms per image for each file and images/s per core over all of them (each file weighted equally), in the
same layout as `clip_preprocess --bench IMAGE...`, which times libclip doing the same work (see docs/images.md).
Needs Debian's python3-pil, python3-torchvision and python3-torch.
"""
import argparse
import io
import os
import time

import torch
from PIL import Image
from torchvision import transforms as T

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    transform = T.Compose([
        T.Resize(args.size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(args.size),
        lambda image: image.convert("RGB"),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])
    files = []
    for path in args.images:
        data = open(path, "rb").read()
        try:
            transform(Image.open(io.BytesIO(data)))
            files.append((path, data))
        except Exception as e:  # noqa: BLE001 - the reference's own refusal, reported like clip_preprocess does
            print(f"error: {path}: {e} (left out of the benchmark)")
    seconds = [0.0] * len(files)
    rounds = 0
    start = time.perf_counter()
    while True:
        for i, (path, data) in enumerate(files):
            t0 = time.perf_counter()
            transform(Image.open(io.BytesIO(data)))
            seconds[i] += time.perf_counter() - t0
        rounds += 1
        if time.perf_counter() - start >= args.seconds:
            break
    print(f"{'file':32s} {'ms/image':>10s}")
    for (path, _), s in zip(files, seconds):
        print(f"{os.path.basename(path):32s} {1e3 * s / rounds:10.3f}")
    print(f"PIL + torchvision: {rounds} rounds of {len(files)} images at {args.size} px, one thread: "
          f"{rounds * len(files) / sum(seconds):.1f} images/s per core")


if __name__ == "__main__":
    main()
