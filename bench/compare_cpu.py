"""libclip on LibTorch 1.13 (Debian's, OpenBLAS), libclip on LibTorch 2.x (PyPI's wheel: MKL, oneDNN) and open_clip
on the same 2.x, side by side on this CPU: the same model (configs/models), mode, batch and threads, the runs
alternating (one of each per round, the order rotating from round to round) so that a busy machine slows all
three alike; the ratios are the medians of each round's ratio, so slow drift of the machine cancels.

    $(scripts/venv)/bin/python bench/compare_cpu.py [--rounds 3] [--threads 2] [--rows ViT-B-32:image:1,...]
        [--markdown FILE] [--jsonl FILE]

Needs both builds (`scripts/build`, `CLIP_TORCH=pip scripts/build`) and the virtual environment of scripts/venv,
whose python runs this file and open_clip (bench/open_clip_bench.py). Prints a table of the median samples/s of
each over the rounds, with every round's value, and libclip's ratio to open_clip on the same LibTorch.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ROWS = ("ViT-B-32:image:1,ViT-B-32:image:32,ViT-B-32:train:8,"
                "RN50:image:1,RN50:image:32,RN50:train:8")


def steps_for(mode, batch):
    # Enough timed steps for a stable median without hours of CPU time: (timed, warm-up).
    if mode == "image" and batch == 1:
        return 10, 3
    return 3, 1


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"compare_cpu: failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}")


def last_json(path):
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", default=DEFAULT_ROWS, help="MODEL:MODE:BATCH,...")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="the LibTorch 1.13 build")
    parser.add_argument("--build-torch2", default=os.path.join(ROOT, "build-torch2"), help="the LibTorch 2.x build")
    parser.add_argument("--markdown", help="write the table here too")
    parser.add_argument("--jsonl", help="append every run's result here")
    args = parser.parse_args()

    import torch
    impls = [("libclip, LibTorch 1.13", os.path.join(args.build, "bin", "clip_bench")),
             (f"libclip, LibTorch {torch.__version__.split('+')[0]}", os.path.join(args.build_torch2, "bin", "clip_bench")),
             (f"open_clip, torch {torch.__version__.split('+')[0]}", None)]
    for name, exe in impls:
        if exe and not os.access(exe, os.X_OK):
            sys.exit(f"compare_cpu: {exe} is missing: build it first ({name})")

    rows = []
    for spec in args.rows.split(","):
        model, mode, batch = spec.split(":")
        rows.append((model, mode, int(batch)))
    results = {}  # (row, impl) -> [samples/s per round]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.jsonl")
        for r in range(args.rounds):
            for model, mode, batch in rows:
                steps, warmup = steps_for(mode, batch)
                for name, exe in impls[r % 3:] + impls[:r % 3]:
                    common = ["--model", model, "--mode", mode, "--batch-size", str(batch), "--threads",
                              str(args.threads), "--steps", str(steps), "--warmup", str(warmup), "--json", out]
                    if exe:
                        cmd = [exe] + common + ["--peak-tflops", "1"]
                    else:
                        cmd = [sys.executable, os.path.join(ROOT, "bench", "open_clip_bench.py")] + common
                    run(cmd)
                    res = last_json(out)
                    res["implementation"] = name
                    results.setdefault(((model, mode, batch), name), []).append(res["samples_per_second"])
                    print(f"round {r + 1}/{args.rounds} {model} {mode} batch {batch} {name}: "
                          f"{res['samples_per_second']:.2f} samples/s", flush=True)
                    if args.jsonl:
                        with open(args.jsonl, "a") as f:
                            f.write(json.dumps(res) + "\n")

    names = [n for n, _ in impls]
    lines = [f"| model | mode | batch | {' | '.join(names)} | libclip / open_clip (2.x) | libclip 2.x / 1.13 |",
             "| --- | --- | --- | " + " | ".join("---" for _ in names) + " | --- | --- |"]
    def paired(a, b):
        ratios = [x / y for x, y in zip(results[(row, names[a])], results[(row, names[b])])]
        return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"

    for row in rows:
        med = [statistics.median(results[(row, n)]) for n in names]
        cells = [f"{m:.2f} ({', '.join(f'{v:.2f}' for v in results[(row, n)])})" for m, n in zip(med, names)]
        lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {' | '.join(cells)} | {paired(1, 2)} | {paired(1, 0)} |")
    table = "\n".join(lines)
    print(f"\nsamples/s, median over {args.rounds} alternating rounds (each round's value in brackets), "
          f"{args.threads} threads, fp32; ratios: the median of the rounds' ratios (their range)\n" + table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
