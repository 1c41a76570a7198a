"""clip_serve under load: throughput and p50/p99 latency of POST /v1/embed/text and /v1/embed/image, for one client
sending requests one after another (the single-request loop), for many concurrent clients without batching
(--max-batch 1) and for the same clients with dynamic batching. wrk (Debian's `wrk`) makes the load: each connection
sends its next request when the last one is answered, one text or one image per request.

    python3 bench/serve_bench.py --checkpoint MODEL [--build build] [--precision fp32] [--clients 32]
        [--duration 10] [--max-batch 32] [--max-wait-ms 0] [--image FILE] [--only text,image] [--json-out F]
        [--markdown F]

Each configuration runs a fresh clip_serve (--port 0, loopback) that is warmed with a few requests first. wrk runs on
the same machine as the server and takes some of its CPU (say so when you quote the numbers). Needs only the standard
library; the numbers it prints go into docs/performance.md ("Serving").
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("CLIP_BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
"""


def start_server(args, tmp, max_batch):
    port_file = os.path.join(tmp, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    command = [os.path.join(args.build, "bin", "clip_serve"), "--checkpoint", args.checkpoint, "--port", "0",
               "--port-file", port_file, "--precision", args.precision, "--max-batch", str(max_batch),
               "--max-wait-ms", str(args.max_wait_ms), "--http-threads", str(max(args.clients + 4, 8)),
               "--max-queue", "4096"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    log = open(os.path.join(tmp, "serve.log"), "w")
    server = subprocess.Popen(command, stderr=log)
    deadline = time.time() + 120
    while not os.path.exists(port_file):
        if server.poll() is not None or time.time() > deadline:
            sys.exit("serve_bench: clip_serve did not start: " + open(os.path.join(tmp, "serve.log")).read())
        time.sleep(0.05)
    return server, int(open(port_file).read())


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def seconds(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(args, tmp, port, path, body_file, clients):
    script = os.path.join(tmp, "post.lua")
    with open(script, "w") as f:
        f.write(LUA)
    threads = min(clients, args.wrk_threads)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{args.duration}s", "--latency",
                          "--timeout", "60s", "-s", script, f"http://127.0.0.1:{port}{path}"],
                         env={**os.environ, "CLIP_BENCH_BODY": body_file}, stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = 1e3 * seconds(re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+\w+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    if result["errors"]:
        print(out, file=sys.stderr)
    return result


def batch_sizes(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    out = {}
    for kind in ("text", "image"):
        total = float(re.search(rf'clip_batch_size_sum{{kind="{kind}"}} (\S+)', text).group(1))
        count = float(re.search(rf'clip_batch_size_count{{kind="{kind}"}} (\S+)', text).group(1))
        out[kind] = total / count if count else 0.0
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per configuration")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=0)
    parser.add_argument("--threads", type=int, default=0, help="the server's LibTorch threads (0: one per core)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--image", default=os.path.join(ROOT, "tests", "data", "preprocess", "images", "chelsea_q85.jpg"))
    parser.add_argument("--only", default="text,image")
    parser.add_argument("--json-out")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("serve_bench: needs wrk (Debian: apt install wrk; scripts/setup installs it)")

    tmp = tempfile.mkdtemp(prefix="clip_serve_bench_")
    bodies = {
        "text": ("/v1/embed/text", json.dumps({"texts": ["a photo of a dog playing in the snow"]})),
        "image": ("/v1/embed/image", json.dumps({"images": [base64.b64encode(open(args.image, "rb").read()).decode()]})),
    }
    configs = [("one client, one request at a time", 1, args.max_batch),
               (f"{args.clients} clients, no batching (--max-batch 1)", args.clients, 1),
               (f"{args.clients} clients, dynamic batching (--max-batch {args.max_batch})", args.clients, args.max_batch)]
    rows = []
    for kind in args.only.split(","):
        path, body = bodies[kind]
        body_file = os.path.join(tmp, kind + ".json")
        with open(body_file, "w") as f:
            f.write(body)
        for name, clients, max_batch in configs:
            server, port = start_server(args, tmp, max_batch)
            try:
                for _ in range(3):
                    post(port, path, body.encode())  # warm: first-use preparation, allocator
                result = run_wrk(args, tmp, port, path, body_file, clients)
                result["rows_per_batch"] = batch_sizes(port)[kind]
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=120)
            result.update(kind=kind, config=name, clients=clients, max_batch=max_batch)
            rows.append(result)
            print(f"serve_bench: {kind:5s} {name}: {result['requests_per_s']:.1f} req/s, p50 {result['p50_ms']:.1f} ms, "
                  f"p99 {result['p99_ms']:.1f} ms, {result['rows_per_batch']:.1f} rows/batch, {result['errors']} errors",
                  flush=True)
    lines = ["| request | load | requests/s | vs one client | p50 ms | p99 ms | rows per batch | errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kind in args.only.split(","):
        base = next(r for r in rows if r["kind"] == kind and r["clients"] == 1)["requests_per_s"]
        for r in (r for r in rows if r["kind"] == kind):
            lines.append(f"| {kind} | {r['config']} | {r['requests_per_s']:.1f} | {r['requests_per_s'] / base:.2f}x | "
                         f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['rows_per_batch']:.1f} | {r['errors']} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
