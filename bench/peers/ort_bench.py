"""ONNX Runtime (CPU) image-tower throughput, a peer of clip_bench --mode image (bench/peers/README.md).

    python bench/peers/ort_bench.py --model /tmp/peers/vitb32_image.onnx --batch-size 8 --threads 2
    python bench/peers/ort_bench.py --model /tmp/peers/vitb32_image.onnx --cold-start

One InferenceSession on the CPUExecutionProvider: intra_op_num_threads = --threads, inter_op_num_threads 1,
sequential execution, graph optimisation ORT_ENABLE_ALL (ORT's default). Synthetic float32 pixel_values
[batch, 3, 224, 224] (N(0, 1), a normalised photo's range), --warmup untimed runs, then the median of --steps
timed session.run calls. Prints one JSON line: images_per_s, median_s, batch, version, and the rest of the setup.

--cold-start: the time from this process's start (the interpreter's own start time, before any import) to the first
embedding of one batch: importing onnxruntime + numpy, creating the session (loading and optimising the graph) and
the first run. Run it as a fresh process each time (the OS file cache stays warm across runs).
"""
import time

T_PROCESS = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402


def process_start_time():
    """This process's start, in time.time() seconds (Linux /proc), else the time this module began running."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return T_PROCESS


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="an ONNX image tower: pixel_values [batch, 3, H, W] -> embeddings")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="intra_op_num_threads")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cold-start", action="store_true",
                    help="time process start -> first embedding (session creation + first run) instead")
    ap.add_argument("--spin", choices=("default", "on", "off"), default="default",
                    help="session.intra_op.allow_spinning (ORT's default: on)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.batch_size < 1 or args.threads < 1 or args.steps < 1 or args.warmup < 0:
        sys.exit("ort_bench: --batch-size, --threads and --steps must be at least 1, --warmup at least 0")

    t_import = time.time()
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if args.spin != "default":
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if args.spin == "on" else "0")

    t_session = time.time()
    sess = ort.InferenceSession(args.model, sess_options=so, providers=["CPUExecutionProvider"])
    session_s = time.time() - t_session
    inp = sess.get_inputs()[0]
    shape = [args.batch_size if not isinstance(d, int) else d for d in inp.shape]
    if shape[0] != args.batch_size:
        sys.exit(f"ort_bench: {args.model} has a fixed batch of {shape[0]}")
    x = np.random.default_rng(args.seed).standard_normal(shape, dtype=np.float32)
    feed = {inp.name: x}

    result = {"peer": "onnxruntime", "model": args.model, "batch": args.batch_size, "threads": args.threads,
              "version": ort.__version__, "providers": sess.get_providers()}
    if args.cold_start:
        t_run = time.time()
        out = sess.run(None, feed)[0]
        t_end = time.time()
        start = process_start_time()
        result.update({"cold_start_s": round(t_end - start, 4), "interpreter_start_s": round(T_PROCESS - start, 4),
                       "import_s": round(t_session - t_import, 4), "session_s": round(session_s, 4),
                       "first_run_s": round(t_end - t_run, 4)})
    else:
        for _ in range(args.warmup):
            out = sess.run(None, feed)[0]
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            out = sess.run(None, feed)[0]
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        result.update({"images_per_s": round(args.batch_size / median, 3), "median_s": round(median, 6),
                       "steps": args.steps, "warmup": args.warmup, "session_s": round(session_s, 4),
                       "step_s": [round(t, 6) for t in times]})
    if not np.isfinite(out).all():
        sys.exit("ort_bench: a non-finite embedding value")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
