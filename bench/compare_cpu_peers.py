"""libclip against its CPU-inference peers, ONNX Runtime and clip.cpp (bench/peers/README.md), side by side: the
ViT-B/32 image tower on synthetic preprocessed pixels, the same threads and batch for all. Every measurement is a
separate process; one round runs every contender once per batch, in an order that rotates from round to round, so
that a busy machine slows all of them alike; ratios are the medians of each round's own ratio, so slow drift of the
machine cancels (the conventions of bench/compare_cpu.py).

    $PY bench/compare_cpu_peers.py [--rounds 3] [--batches 1,8,32] [--threads 2] [--steps 10,5,3] [--warmup 2,1,1]
        [--only NAME,...] [--builds build,build-torch2] [--json-out FILE] [--markdown FILE] [--dry-run]
    $PY bench/compare_cpu_peers.py --cold-start [--rounds 3] [--only ...] [--builds ...] [--dry-run]

PY=/root/.cache/libclip/venv-torch2.11.0-py3.11/bin/python (its python runs ort_bench.py: onnxruntime and numpy;
this file itself needs only the standard library). Needs the libclip builds (`scripts/build`, `CLIP_TORCH=pip
scripts/build`) and the peers (`bench/peers/setup.sh`, into /tmp/peers); what is missing is skipped with a note.

Contenders (--only takes these names, or a prefix of one: `libclip`, `libclip-int8`, `ort`, `clipcpp`, ...):
  libclip-{fp32,int8,bf16}@BUILD   BUILD/bin/clip_bench --mode image --precision P (bf16: skipped with a note where
                                   the CPU has no native bf16 and clip_bench refuses it)
  ort-{fp32,int8}                  bench/peers/ort_bench.py on /tmp/peers/vitb32_image{,.int8}.onnx
  clipcpp-{f32,f16,q8_0,q4_0}      /tmp/peers/clip.cpp/build/bin/clip_cpp_bench on the GGUF of that type; batches
                                   over 10 as sequential calls of 8 (--chunk 8): one call of 11 or more images aborts

Prints, per batch, the median images/s of each contender over the rounds (every round's value in brackets), its
ratio to libclip fp32 of each build (median of the rounds' ratios, their range in brackets) and, for libclip int8 and
bf16, the cosine of its embeddings against fp32 (clip_bench's own check).

--cold-start: process start to the first embedding instead, one batch-1 process per contender per round (after one
untimed pass, so that every contender finds its files in the OS page cache). Two columns: what the contender
reports itself (ORT: from the process's start time to the first run's output; clip.cpp: from main() to the first
embedding) and the whole process's wall time measured here, subprocess start to exit. libclip is clip_embed on one
JPEG (so it also reads, decodes and preprocesses a real image, and loads the whole checkpoint, both towers), and
reports nothing itself: only the wall time.
"""
import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_BENCH = os.path.join(ROOT, "bench", "peers", "ort_bench.py")
# clip.cpp as bench/peers/setup.sh builds it (bench/peers/README.md): monatis/clip.cpp master of 2025-06-19, with
# the ggml its `ggml` submodule pins. Hardcoded: the build in /tmp/peers is a `git archive`, with no git metadata.
CLIPCPP_COMMIT = "3484ffc405b7c7409d095bcaaea39d0bb2534823"
CLIPCPP_GGML_COMMIT = "c3ae31e5a090a6259c674b18983de53ac4538aa6"
CLIPCPP_MAX_CALL = 10  # images one clip_image_batch_encode call survives (README: 11 abort)
CLIPCPP_CHUNK = 8
LIBCLIP_PRECISIONS = ("fp32", "int8", "bf16")
ORT_PRECISIONS = ("fp32", "int8")
CLIPCPP_TYPES = ("f32", "f16", "q8_0", "q4_0")
DEFAULT_IMAGE = "/work/shared/fixtures/preprocess/images/butterfly.jpg"
# The refusal clip_bench / clip_embed print (one line, non-zero exit) for a precision this CPU or LibTorch lacks.
REFUSAL = re.compile(r"--precision bf16: this CPU has no native bf16|(--precision int8|int8 inference): this LibTorch "
                     r"has no quantized engine")


def default_steps(batch):
    # (timed steps, warm-up steps): enough for a stable median without hours of 2-core CPU time.
    if batch <= 1:
        return 10, 2
    if batch <= 8:
        return 5, 1
    return 3, 1


class Contender:
    def __init__(self, key, family, variant, label, build=None):
        self.key, self.family, self.variant, self.label, self.build = key, family, variant, label, build
        self.missing = None  # why it cannot run (a file is absent), else None
        self.refused = None  # the binary's one-line refusal (bf16 on a CPU without it), once seen

    def matches(self, name):
        base = self.key.split("@")[0]
        return name in (self.key, base, self.family) or (name.startswith(self.family) and base.startswith(name))


def make_contenders(args):
    out = []
    for build in args.builds:
        bdir = build if os.path.isabs(build) else os.path.join(ROOT, build)
        name = os.path.basename(os.path.normpath(build))
        for p in LIBCLIP_PRECISIONS:
            c = Contender(f"libclip-{p}@{name}", "libclip", p, f"libclip {p} ({name})", build=name)
            c.bench = os.path.join(bdir, "bin", "clip_bench")
            c.embed = os.path.join(bdir, "bin", "clip_embed")
            c.build_dir = bdir
            need = [c.embed, args.checkpoint, args.image] if args.cold_start else [c.bench]
            absent = [f for f in need if not os.path.exists(f)]
            c.missing = f"missing {', '.join(absent)}" if absent else None
            out.append(c)
    for p in ORT_PRECISIONS:
        c = Contender(f"ort-{p}", "ort", p, f"ONNX Runtime {p}")
        c.model = os.path.join(args.peers, "vitb32_image.onnx" if p == "fp32" else "vitb32_image.int8.onnx")
        absent = [f for f in (ORT_BENCH, c.model) if not os.path.exists(f)]
        c.missing = f"missing {', '.join(absent)}" if absent else None
        out.append(c)
    exe = os.path.join(args.peers, "clip.cpp", "build", "bin", "clip_cpp_bench")
    for t in CLIPCPP_TYPES:
        c = Contender(f"clipcpp-{t}", "clipcpp", t, f"clip.cpp {t}")
        c.exe = exe
        c.model = os.path.join(args.peers, "gguf", f"vitb32_ggml-vision-model-{t}.gguf")
        absent = [f for f in (exe, c.model) if not os.path.exists(f)]
        c.missing = f"missing {', '.join(absent)}" if absent else None
        out.append(c)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if not any(c.matches(n) for c in out)]
        if unknown:
            sys.exit(f"compare_cpu_peers: --only {','.join(unknown)}: no such contender; the names: "
                     f"{', '.join(c.key for c in out)} (or a prefix: libclip, libclip-int8, ort, clipcpp, ...)")
        out = [c for c in out if any(c.matches(n) for n in names)]
    return out


def throughput_cmd(c, batch, args, steps, warmup, json_file):
    if c.family == "libclip":
        return [c.bench, "--model", "ViT-B-32", "--mode", "image", "--batch-size", str(batch), "--threads",
                str(args.threads), "--steps", str(steps), "--warmup", str(warmup), "--peak-tflops", "1",
                "--precision", c.variant, "--json", json_file]
    if c.family == "ort":
        return [args.python, ORT_BENCH, "--model", c.model, "--batch-size", str(batch), "--threads", str(args.threads),
                "--steps", str(steps), "--warmup", str(warmup)]
    cmd = [c.exe, "-m", c.model, "-b", str(batch), "-t", str(args.threads), "-n", str(steps), "-w", str(warmup)]
    if batch > CLIPCPP_MAX_CALL:
        cmd += ["--chunk", str(CLIPCPP_CHUNK)]
    return cmd


def cold_cmd(c, args, list_file):
    if c.family == "libclip":
        return [c.embed, "--checkpoint", args.checkpoint, "--images", list_file, "--output", args.cold_output,
                "--precision", c.variant, "--threads", str(args.threads), "--workers", "1"]
    if c.family == "ort":
        return [args.python, ORT_BENCH, "--model", c.model, "--batch-size", "1", "--threads", str(args.threads),
                "--cold-start"]
    return [c.exe, "-m", c.model, "-b", "1", "-t", str(args.threads), "-n", "1", "-w", "0"]


def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def parse_bench_table(stdout):
    """clip_bench's table, should its --json file be absent: the last row's samples/s and 'cos fp32 mean/min'."""
    rows = [l.split() for l in stdout.strip().splitlines() if l.strip() and not l.startswith("model ")]
    if not rows or len(rows[-1]) < 9:
        return None
    row = rows[-1]
    try:
        res = {"samples_per_second": float(row[7])}
    except ValueError:
        return None
    if "/" in row[-1]:
        mean, worst = row[-1].split("/")
        res.update(cosine_mean=float(mean), cosine_min=float(worst))
    return res


def execute(cmd, timeout):
    """Runs cmd; returns (rc, stdout, stderr, wall seconds from just before the spawn to the exit)."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or "", e.stderr or ""
        out, err = (x.decode(errors="replace") if isinstance(x, bytes) else x for x in (out, err))
    return rc, out, err, time.perf_counter() - t0


def refusal(c, rc, out, err):
    if c.family != "libclip" or rc == 0 or c.variant == "fp32":
        return None
    m = REFUSAL.search(err + out)
    if not m:
        return None
    line = next((l for l in (err + out).splitlines() if m.group(0) in l), m.group(0))
    return line.strip()


def fmt_vals(vals, spec):
    if not vals:
        return "-"
    return f"{statistics.median(vals):{spec}} ({', '.join(f'{v:{spec}}' for v in vals)})"


def rotated(items, r, rounds):
    # Spread the rotations over the rounds: with 12 contenders and 3 rounds, each round starts a third further on.
    n = len(items)
    if n == 0:
        return items
    k = (r * n // max(rounds, 1)) % n
    return items[k:] + items[:k]


def torch_version_from_cmake(build_dir):
    """The LibTorch a build was configured against: CMakeCache's Torch_DIR/TorchConfigVersion.cmake (no run)."""
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            torch_dir = next(l.split("=", 1)[1].strip() for l in f if l.startswith("Torch_DIR:"))
        with open(os.path.join(torch_dir, "TorchConfigVersion.cmake")) as f:
            m = re.search(r'set\(PACKAGE_VERSION "([^"]+)"\)', f.read())
        return (m.group(1), torch_dir) if m else None
    except (OSError, StopIteration):
        return None


def versions(contenders, args, runs):
    lines, meta = [], {}
    seen = set()
    for c in contenders:
        if c.family != "libclip" or c.build in seen:
            continue
        seen.add(c.build)
        exe = c.embed if args.cold_start else c.bench
        v = None
        if not args.dry_run and os.access(exe, os.X_OK):
            rc, out, err, _ = execute([exe, "--version"], 60)
            text = (out or err).strip()
            if rc == 0 and text and len(text) < 200:
                v = f"{text} ({os.path.basename(exe)} --version)"
        if v is None:
            cm = torch_version_from_cmake(c.build_dir)
            probe = (f"a run tries `{os.path.basename(exe)} --version` first" if args.dry_run
                     else f"{os.path.basename(exe)} has no --version")
            if cm:
                v = f"LibTorch {cm[0]} (the build's CMakeCache: {cm[1]}; {probe})"
            else:
                v = "unknown (no --version, no CMakeCache)"
        meta[f"libclip@{c.build}"] = v
        lines.append(f"libclip ({c.build}): {v}")
    if any(c.family == "ort" for c in contenders):
        vs = sorted({r["result"]["version"] for r in runs if r["family"] == "ort" and r.get("result")
                     and "version" in r["result"]})
        v = ", ".join(vs) if vs else ("read from ort_bench.py's JSON at run time" if args.dry_run else "unknown (no ort_bench run succeeded)")
        meta["onnxruntime"] = v
        lines.append(f"ONNX Runtime: {v} (CPUExecutionProvider, ort_bench.py's JSON)")
    if any(c.family == "clipcpp" for c in contenders):
        v = f"monatis/clip.cpp {CLIPCPP_COMMIT[:12]}, ggml {CLIPCPP_GGML_COMMIT[:12]} (as bench/peers/setup.sh builds it)"
        meta["clip.cpp"] = v
        lines.append(f"clip.cpp: {v}")
    return lines, meta


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "unknown")
    except OSError:
        return "unknown"


def per_batch_list(text, batches, flag, index):
    if text is None:
        return [default_steps(b)[index] for b in batches]
    vals = [int(v) for v in text.split(",")]
    if len(vals) == 1:
        return vals * len(batches)
    if len(vals) != len(batches):
        sys.exit(f"compare_cpu_peers: {flag} takes one number or one per batch ({len(batches)})")
    return vals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", default="1,8,32", help="comma list (default 1,8,32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", help="timed steps: one number, or one per batch (default 10 at batch 1, 5 up to 8, "
                                    "3 above)")
    ap.add_argument("--warmup", help="untimed steps: one number, or one per batch (default 2 at batch 1, 1 above)")
    ap.add_argument("--only", help="comma list of contender names (or prefixes: libclip, ort-int8, clipcpp, ...)")
    ap.add_argument("--builds", default="build,build-torch2",
                    help="libclip build folders, relative to the repository or absolute (default build,build-torch2)")
    ap.add_argument("--peers", default="/tmp/peers", help="where bench/peers/setup.sh put the peers")
    ap.add_argument("--python", default=sys.executable, help="the python that runs ort_bench.py (default: this one)")
    ap.add_argument("--cold-start", action="store_true", help="time process start -> first embedding instead")
    ap.add_argument("--checkpoint", default="/tmp/vitb32.safetensors", help="--cold-start: clip_embed's ViT-B/32")
    ap.add_argument("--image", default=DEFAULT_IMAGE, help="--cold-start: the one image clip_embed embeds")
    ap.add_argument("--cold-output", default="/tmp/cold_out.safetensors", help="--cold-start: clip_embed's --output")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one process may run (default 1800)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--json-out", help="write every run's raw result here (JSON)")
    ap.add_argument("--markdown", help="write the table(s) here too")
    args = ap.parse_args()
    if args.rounds < 1 or args.threads < 1:
        sys.exit("compare_cpu_peers: --rounds and --threads must be at least 1")
    args.builds = [b for b in args.builds.split(",") if b]
    batches = [1] if args.cold_start else [int(b) for b in args.batches.split(",")]
    if any(b < 1 for b in batches):
        sys.exit("compare_cpu_peers: batches must be at least 1")
    steps = per_batch_list(args.steps, batches, "--steps", 0)
    warmups = per_batch_list(args.warmup, batches, "--warmup", 1)

    contenders = make_contenders(args)
    notes = [f"{c.key}: skipped, {c.missing}" for c in contenders if c.missing]
    active = [c for c in contenders if not c.missing]
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    if not active and not args.dry_run:
        sys.exit("compare_cpu_peers: nothing to run")
    if not args.cold_start and any(b > CLIPCPP_MAX_CALL for b in batches) and any(c.family == "clipcpp" for c in active):
        notes.append(f"clip.cpp at batch > {CLIPCPP_MAX_CALL}: sequential calls of {CLIPCPP_CHUNK} images (--chunk "
                     f"{CLIPCPP_CHUNK}); its one batch call aborts from 11 images (fixed 24 MiB graph context)")
    load_start = os.getloadavg()
    if load_start[0] > 0.5 and not args.dry_run:
        print(f"warning: load average {load_start[0]:.2f} at the start: the numbers are distorted, clip.cpp's "
              f"spinning thread pool most (bench/peers/README.md)", file=sys.stderr)

    runs = []  # every run's raw record
    values = {}  # (batch, key) -> {round: images/s or seconds}
    walls = {}  # (batch, key) -> {round: wall seconds}
    cosines = {}  # (batch, key) -> [(mean, min)]
    failures = {}  # (batch, key) -> [message]

    meta_extra = {}

    def write_json():
        if args.json_out and not args.dry_run:
            meta = {"mode": "cold-start" if args.cold_start else "throughput", "threads": args.threads,
                    "batches": batches, "steps": steps, "warmup": warmups, "rounds": args.rounds, "cpu": cpu_name(),
                    "load_start": load_start, "notes": notes, "argv": sys.argv, **meta_extra}
            with open(args.json_out, "w") as f:
                json.dump({"meta": meta, "runs": runs}, f, indent=1)

    with tempfile.TemporaryDirectory() as tmp:
        list_file = os.path.join(tmp, "images.txt")
        if args.cold_start:
            with open(list_file, "w") as f:
                f.write(args.image + "\n")
        json_file = os.path.join(tmp, "clip_bench.jsonl")
        # --cold-start: round 0 is an untimed pass that puts every contender's files in the page cache.
        schedule = ([0] if args.cold_start else []) + list(range(1, args.rounds + 1))
        for r in schedule:
            for bi, batch in enumerate(batches):
                for c in rotated(active, r - 1 if r else 0, args.rounds):
                    if c.refused:
                        continue
                    if args.cold_start:
                        cmd = cold_cmd(c, args, list_file)
                    else:
                        cmd = throughput_cmd(c, batch, args, steps[bi], warmups[bi], json_file)
                    tag = f"round {r}/{args.rounds}" if r else "round 0 (untimed, page cache)"
                    if args.dry_run:
                        print(f"{tag} batch {batch} {c.key}: {shlex.join(cmd)}")
                        continue
                    if os.path.exists(json_file):
                        os.remove(json_file)
                    rc, out, err, wall = execute(cmd, args.timeout)
                    rec = {"round": r, "batch": batch, "contender": c.key, "family": c.family, "variant": c.variant,
                           "build": c.build, "cmd": cmd, "rc": rc, "wall_s": round(wall, 4),
                           "loadavg": os.getloadavg()}
                    why = refusal(c, rc, out, err)
                    if why:
                        c.refused = why
                        notes.append(f"{c.key}: skipped, the binary refuses it: {why}")
                        rec["refused"] = why
                        runs.append(rec)
                        print(f"{tag} {c.key}: refused ({why})", flush=True)
                        continue
                    res = None
                    if rc == 0:
                        if c.family == "libclip" and not args.cold_start:
                            if os.path.exists(json_file):
                                with open(json_file) as f:
                                    res = last_json_line(f.read())
                            if res is None:
                                res = parse_bench_table(out)
                        elif c.family == "libclip":
                            res = {}
                        else:
                            res = last_json_line(out)
                    rec["result"] = res
                    if res is None:
                        msg = (err.strip() or out.strip()).splitlines()[-1:] or [""]
                        if isinstance(rc, int) and rc < 0:
                            msg = [f"killed by signal {-rc}{': ' + msg[0] if msg[0] else ''}"]
                        rec["stderr_tail"] = err[-2000:]
                        failures.setdefault((batch, c.key), []).append(f"round {r}: rc {rc}: {msg[0][:200]}")
                        runs.append(rec)
                        print(f"{tag} batch {batch} {c.key}: FAILED (rc {rc}): {msg[0][:200]}", flush=True)
                        write_json()
                        continue
                    runs.append(rec)
                    if r == 0:
                        print(f"{tag} {c.key}: {wall:.3f} s wall", flush=True)
                        continue
                    if args.cold_start:
                        # libclip reports nothing itself; ORT: cold_start_s (from the process's start time);
                        # clip.cpp: process_to_first_embedding_s (from main()), else nothing.
                        own = res.get("cold_start_s", res.get("process_to_first_embedding_s"))
                        if own is not None:
                            values.setdefault((batch, c.key), {})[r] = float(own)
                        walls.setdefault((batch, c.key), {})[r] = wall
                        print(f"{tag} {c.key}: "
                              f"{'reported %.3f s, ' % own if own is not None else ''}{wall:.3f} s wall", flush=True)
                    else:
                        ips = res.get("samples_per_second", res.get("images_per_s"))
                        values.setdefault((batch, c.key), {})[r] = float(ips)
                        walls.setdefault((batch, c.key), {})[r] = wall
                        if "cosine_mean" in res:
                            cosines.setdefault((batch, c.key), []).append((res["cosine_mean"], res["cosine_min"]))
                        print(f"{tag} batch {batch} {c.key}: {ips:.2f} images/s ({wall:.1f} s wall)", flush=True)
                    write_json()

    vlines, vmeta = versions(active, args, runs)
    if args.dry_run:
        if any(c.family == "libclip" and c.variant != "fp32" for c in active):
            notes.append("a libclip precision the binary refuses (bf16 on a CPU without native bf16: a one-line "
                         "message, non-zero exit) is skipped, with that message as its note, from then on")
        if notes:
            print("\nnotes:\n" + "\n".join(f"- {n}" for n in notes))
        print("\nversions (what a run would report):\n" + "\n".join(f"- {l}" for l in vlines))
        return

    def row(cells):
        return "| " + " | ".join(cells) + " |"

    tables = []
    if args.cold_start:
        reported_by = {"libclip": "- (nothing: wall only)", "ort": "from the process's start time (/proc)",
                       "clipcpp": "from main()"}
        lines = [row(["contender", "reported: start -> first embedding, s", "reported from",
                      "whole process wall, s", "note"]), row(["---"] * 5)]
        for c in active:
            key = (1, c.key)
            if c.refused:
                lines.append(row([c.label, "-", "-", "-", c.refused]))
                continue
            own = [v for _, v in sorted(values.get(key, {}).items())]
            wall = [v for _, v in sorted(walls.get(key, {}).items())]
            fail = "; ".join(failures.get(key, []))
            lines.append(row([c.label, fmt_vals(own, ".3f") if c.family != "libclip" else "-", reported_by[c.family],
                              fmt_vals(wall, ".3f"), f"FAILED {fail}" if fail else ""]))
        tables.append((f"cold start, batch 1, {args.threads} threads: median seconds over {args.rounds} rotating "
                       f"rounds (each round's value in brackets), after one untimed pass (warm page cache)",
                       "\n".join(lines)))
        notes.append("libclip: clip_embed on one real JPEG, so its time includes reading, decoding and preprocessing "
                     "that image (the peers start from synthetic pixels), loading the whole checkpoint (both towers, "
                     f"{args.checkpoint}; int8: quantising it too) and writing {args.cold_output}; it reports no "
                     "time itself, so only the wall time")
        notes.append("ONNX Runtime: ort_bench.py --cold-start's cold_start_s: from the interpreter process's start "
                     "(/proc) through the imports (onnxruntime, numpy), session creation (graph load and "
                     "optimisation) to the first run's output")
        notes.append("clip.cpp: clip_cpp_bench -n 1 -w 0 -b 1's process_to_first_embedding_s: from main() (not exec "
                     "and dynamic loading, which the wall time holds) through the GGUF load, the synthetic pixels, to "
                     "the first encode")
    else:
        bases = [f"libclip-fp32@{os.path.basename(os.path.normpath(b))}" for b in args.builds]
        bases = [b for b in bases if any(c.key == b for c in active)]
        for bi, batch in enumerate(batches):
            lines = [row(["contender", "images/s"] + [f"/ libclip fp32 ({b.split('@')[1]})" for b in bases]
                         + ["cosine vs fp32 mean/min", "note"]),
                     row(["---"] * (4 + len(bases)))]
            for c in active:
                key = (batch, c.key)
                if c.refused:
                    lines.append(row([c.label, "-"] + ["-"] * len(bases) + ["-", c.refused]))
                    continue
                vals = values.get(key, {})
                cells = []
                for b in bases:
                    base = values.get((batch, b), {})
                    ratios = [vals[r] / base[r] for r in sorted(vals) if r in base and base[r] > 0]
                    if b == c.key:
                        cells.append("1")
                    elif ratios:
                        cells.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
                    else:
                        cells.append("-")
                cos = cosines.get(key, [])
                cos_cell = f"{statistics.median(m for m, _ in cos):.5f}/{min(w for _, w in cos):.5f}" if cos else "-"
                note = []
                if c.family == "clipcpp" and batch > CLIPCPP_MAX_CALL:
                    note.append(f"{-(-batch // CLIPCPP_CHUNK)} sequential calls of <= {CLIPCPP_CHUNK}")
                if failures.get(key):
                    note.append("FAILED " + "; ".join(failures[key]))
                lines.append(row([c.label, fmt_vals([vals[r] for r in sorted(vals)], ".2f")] + cells
                                 + [cos_cell, "; ".join(note)]))
            tables.append((f"batch {batch}, {args.threads} threads, {steps[bi]} timed steps after {warmups[bi]} "
                           f"warm-up, median images/s over {args.rounds} rotating rounds (each round's value in "
                           f"brackets); ratios: the median of the rounds' ratios (their range)", "\n".join(lines)))
        if not bases:
            notes.append("no libclip fp32 ran (see --only, --builds): no ratio columns")

    load_end = os.getloadavg()
    text = []
    for title, table in tables:
        text.append(f"{title}\n\n{table}\n")
    text.append("versions:\n" + "\n".join(f"- {l}" for l in vlines))
    text.append(f"CPU: {cpu_name()}; load average (1/5/15 min) at the start {load_start[0]:.2f}/{load_start[1]:.2f}/"
                f"{load_start[2]:.2f}, at the end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}")
    if not args.cold_start:
        text.append("Inputs: synthetic preprocessed pixels for all (no decoding). libclip's cosine: its int8/bf16 "
                    "embeddings against its own fp32 on the same random weights (clip_bench). The peers' accuracy, "
                    "from bench/peers/README.md (against HF fp32 on the peers' weights): clip.cpp f32/f16 1.00000, "
                    "q8_0 0.99994, q4_0 0.993; ORT int8 >= 0.99988.")
    if notes:
        text.append("notes:\n" + "\n".join(f"- {n}" for n in notes))
    report = "\n\n".join(text)
    print("\n" + report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report + "\n")
    meta_extra.update(versions=vmeta, load_end=load_end)
    write_json()


if __name__ == "__main__":
    main()
