#!/usr/bin/env python3
"""clip_train --tensorboard's event files, read back with the tensorboard package's own reader (issue 19).

Runs clip_train on a labeled folder of the test images (two classes) for 12 steps with a metric window every 3
steps, a held-out retrieval evaluation every 6 and SigLIP's loss (so the bias is logged too), in two invocations, then loads OUTPUT/tensorboard with tensorboard's EventAccumulator (the reader
TensorBoard's server uses, which also checks every record's CRC). Checked: the file is one run with the tags
train/loss, train/lr, train/scale, train/samples_per_second, train/data_wait, train/logit_bias and a val/ tag per
evaluation metric; every scalar's steps and values equal metrics.jsonl's (values as float32: 1e-6 relative).
A resumed invocation adds a second file whose events continue the steps. Exits 1 on a difference.

Run by ctest (reference.tensorboard) with -DCLIP_REFERENCE_TESTS; by hand:
    $(scripts/venv)/bin/python tests/reference/test_tensorboard.py --train build-torch2/bin/clip_train
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
TAGS = {"loss": "train/loss", "lr": "train/lr", "logit_scale": "train/scale",
        "samples_per_s": "train/samples_per_second", "data_wait": "train/data_wait", "logit_bias": "train/logit_bias"}


def labeled_folder(root):
    n = 0
    images = os.path.join(DATA, "preprocess", "images")
    for name in sorted(os.listdir(images)):
        if not name.endswith((".png", ".jpg")) or "truncated" in name:
            continue
        folder = os.path.join(root, "cats" if n % 2 else "dogs")
        os.makedirs(folder, exist_ok=True)
        shutil.copy(os.path.join(images, name), folder)
        n += 1
    return root


def run(train, data, out, steps, extra):
    cmd = [train, "--model-config", os.path.join(DATA, "vit_tiny_bpe.json"), "--train-data", data,
           "--batch-size", "4", "--epochs", "100", "--max-steps", str(steps), "--log-every", "3", "--warmup", "2",
           "--loss", "siglip", "--val-split", "0.25", "--eval-every", "6", "--tensorboard", "--output-dir", out,
           "--report", "false"] + extra
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("clip_train exited %d: %s" % (p.returncode, p.stderr[-2000:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, help="clip_train")
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        data = labeled_folder(os.path.join(tmp, "images"))
        run(args.train, data, out, 6, [])
        run(args.train, data, out, 12, ["--resume", "latest"])
        files = sorted(glob.glob(os.path.join(out, "tensorboard", "events.out.tfevents.*")))
        print("event files: %d" % len(files))
        if len(files) != 2:
            failures.append("expected 2 event files (one per invocation), found %d" % len(files))
        acc = EventAccumulator(os.path.join(out, "tensorboard"), size_guidance={"scalars": 0})
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        lines = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
        train = [l for l in lines if l["type"] == "train"]
        evals = [l for l in lines if l["type"] == "eval"]
        expected = {}
        for key, tag in TAGS.items():
            expected[tag] = [(l["step"], l[key]) for l in train]
        for l in evals:
            for key, value in l.items():
                if key not in ("type", "step", "epoch", "time"):  # time stamps the line; it is not a metric
                    expected.setdefault("val/" + key, []).append((l["step"], value))
        if not any(t.startswith("val/") for t in expected):
            failures.append("no evaluation ran (no eval lines in metrics.jsonl)")
        if set(expected) != tags:
            failures.append("tags differ: missing %s, extra %s" % (sorted(set(expected) - tags), sorted(tags - set(expected))))
        worst = 0.0
        count = 0
        for tag, want in expected.items():
            if tag not in tags:
                continue
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            if [s for s, _ in got] != [s for s, _ in want]:
                failures.append("%s: steps %s, metrics.jsonl has %s" % (tag, [s for s, _ in got], [s for s, _ in want]))
                continue
            for (_, a), (_, b) in zip(got, want):
                d = abs(a - b) / max(abs(b), 1e-30)
                worst = max(worst, d)
                count += 1
                if d > 1e-6:
                    failures.append("%s: %r vs metrics.jsonl %r" % (tag, a, b))
        print("%d tags, %d scalars read back by tensorboard's EventAccumulator; worst relative difference from "
              "metrics.jsonl %.2g (bound 1e-6, float32)" % (len(tags), count, worst))
        print("tags: %s" % ", ".join(sorted(tags)))
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
