#!/usr/bin/env python3
"""How far int8 and bf16 inference move a real model's outputs from fp32: libclip's own tools, run per precision.

For a checkpoint and a folder of images (and, optionally, a labeled folder), runs
  clip_embed --images FOLDER --precision P          -> the cosine of each image's embedding with fp32's
  clip_zeroshot --images LABELED --precision P      -> top-1 / top-5 against fp32's
and prints one table. The issue's bounds: cosine >= 0.99 (mean) and >= 0.98 (worst); top-1 within 0.5 points.

  $(scripts/venv)/bin/python bench/precision_accuracy.py --checkpoint runs/fashion_mnist/model.safetensors \\
      --images data/fashion_mnist/test --labeled data/fashion_mnist/test --templates fashion_mnist_eval

Needs torch and safetensors (the project's venv) to read clip_embed's output.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"precision_accuracy: {' '.join(cmd)} failed:\n{result.stderr.strip()}")
    return result.stdout + result.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--images", required=True, help="folder of images whose embeddings are compared")
    ap.add_argument("--labeled", help="labeled folder (class subfolders) for zero-shot top-1")
    ap.add_argument("--templates", default="simple", help="clip_zeroshot --templates")
    ap.add_argument("--build", default="build")
    ap.add_argument("--precisions", default="int8,bf16")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    bin_dir = os.path.join(args.build, "bin")
    precisions = ["fp32"] + [p for p in args.precisions.split(",") if p]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in precisions:
            out = os.path.join(tmp, f"{p}.safetensors")
            log = subprocess.run([os.path.join(bin_dir, "clip_embed"), "--checkpoint", args.checkpoint, "--images",
                                  args.images, "--output", out, "--precision", p, "--threads", str(args.threads)],
                                 capture_output=True, text=True)
            if log.returncode != 0:
                rows[p] = {"note": log.stderr.strip().splitlines()[-1]}
                continue
            rows[p] = {"embeddings": load_file(out)["image_embeddings"].double()}
            if args.labeled:
                text = run([os.path.join(bin_dir, "clip_zeroshot"), "--checkpoint", args.checkpoint, "--images",
                            args.labeled, "--templates", args.templates, "--precision", p, "--threads",
                            str(args.threads)])
                top1 = re.search(r"top-1 accuracy: ([0-9.]+)%", text)
                top5 = re.search(r"top-5 accuracy: ([0-9.]+)%", text)
                rows[p]["top1"] = float(top1.group(1)) if top1 else None
                rows[p]["top5"] = float(top5.group(1)) if top5 else None
    base = rows["fp32"]["embeddings"]
    print(f"checkpoint {args.checkpoint}; {base.shape[0]} images of {args.images}; build {args.build}")
    print("| precision | cosine vs fp32, mean | worst | zero-shot top-1 | vs fp32 (points) | top-5 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for p in precisions:
        r = rows[p]
        if "note" in r:
            print(f"| {p} | - | - | - | - | refused: {r['note']} |")
            continue
        cos = torch.nn.functional.cosine_similarity(r["embeddings"], base, dim=1)
        top1 = r.get("top1")
        delta = "" if top1 is None or p == "fp32" else f"{top1 - rows['fp32']['top1']:+.2f}"
        top1_text = "" if top1 is None else f"{top1:.2f}%"
        top5_text = "" if r.get("top5") is None else "%.2f%%" % r["top5"]
        print(f"| {p} | {cos.mean().item():.6f} | {cos.min().item():.6f} | {top1_text} | {delta} | {top5_text} |")


if __name__ == "__main__":
    main()
