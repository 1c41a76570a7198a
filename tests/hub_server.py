#!/usr/bin/env python3
"""Local stand-in for the Hugging Face hub's file-resolve endpoints (tests only, 127.0.0.1).

Usage:
    python3 tests/hub_server.py --root DIR [--port-file FILE] [--drop-after N]
        [--corrupt ORG/NAME/PATH ...] [--token T] [--log FILE] [--same-origin-cdn]

DIR/<org>/<name>/ is a repo; its files (subfolders allowed) are served at
    HEAD|GET /<org>/<name>/resolve/<main|commit>/<path>
The commit of a repo is sha1("<org>/<name>"). DIR/<org>/<name>/.gated makes the repo need
"Authorization: Bearer <--token>"; DIR/<org>/<name>/.renamed holding "neworg/newname" makes the
old path answer a relative 307. LFS files (.safetensors .bin .pt .model .gguf, or over 1 MiB)
answer 302 to a "CDN" URL /cdn/<sha256>, which supports Range.

The CDN is served by a second listener on another free port, so it is another origin, as
cdn-lfs.hf.co is to huggingface.co: huggingface_hub 2.4 follows same-origin redirects on its
metadata HEAD (older versions relative ones only), and it must not follow the 302 to the CDN.
--same-origin-cdn puts the CDN on the hub's own port instead (/cdn/ is served on both anyway).

The hub port (digits and a newline) is written atomically to --port-file once listening.
--drop-after N: the first GET of each CDN blob announces its full length, sends N body bytes and
closes the connection. --corrupt: the blob's bytes are served with one byte flipped while the
announced sha256 stays that of the true content.
--log FILE: one line per request: "METHOD PATH Range: <Range|-> Authorization: <yes|no> STATUS"
(plus " dropped=N" when the connection was cut by --drop-after).
"""
import argparse
import hashlib
import http.server
import json
import os
import signal
import socket
import sys
import threading
from urllib.parse import quote, unquote

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".model", ".gguf")
LFS_MIN_SIZE = 1024 * 1024  # "over 1 MB" => LFS, whatever the name
HIDDEN = (".gated", ".renamed")  # control files, never served

lock = threading.Lock()
hashes = {}  # abs path -> (mtime_ns, size, sha256 hex, git blob sha1 hex)
blobs = {}  # sha256 hex -> (abs path, corrupt?)
dropped = set()  # sha256 of blobs whose first GET was already cut
args = None
cdn_port = 0


def file_info(path):
    st = os.stat(path)
    with lock:
        hit = hashes.get(path)
    if hit and hit[:2] == (st.st_mtime_ns, st.st_size):
        return hit[1:]
    with open(path, "rb") as f:
        data = f.read()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob hash = hub ETag
    info = (st.st_mtime_ns, len(data), hashlib.sha256(data).hexdigest(), blob)
    with lock:
        hashes[path] = info
    return info[1:]


def is_lfs(path, size):
    return path.endswith(LFS_SUFFIXES) or size > LFS_MIN_SIZE


def register(org, name, rel, path):
    """Index an LFS file under its sha256 so /cdn/<sha256> can find it; returns (size, sha256)."""
    size, sha, _ = file_info(path)
    corrupt = f"{org}/{name}/{rel}" in args.corrupt
    with lock:
        old = blobs.get(sha)
        blobs[sha] = (path, corrupt or (old is not None and old[1]))
    return size, sha


def scan():
    """Index every LFS file under --root (a /cdn/ request for a blob not resolved yet)."""
    for dirpath, _, files in os.walk(args.root):
        for fn in files:
            parts = os.path.relpath(os.path.join(dirpath, fn), args.root).split(os.sep)
            rel = "/".join(parts[2:])
            if len(parts) > 2 and rel not in HIDDEN and is_lfs(rel, os.path.getsize(os.path.join(dirpath, fn))):
                register(parts[0], parts[1], rel, os.path.join(dirpath, fn))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer below carries Content-Length
    server_version = "hub_server"

    def log_message(self, *a):
        pass

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def do_HEAD(self):
        self.dispatch(False)

    def do_GET(self):
        self.dispatch(True)

    def dispatch(self, body):
        self._status, self._logged = None, False
        try:
            self.route(body)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        finally:
            self.log_request_line(None)

    def log_request_line(self, dropped):
        # Written before the answer goes out, so that a client that has its answer finds the line in the log.
        if not args.log or self._logged:
            return
        self._logged = True
        line = "%s %s Range: %s Authorization: %s %s" % (
            self.command, self.path, self.headers.get("Range") or "-",
            "yes" if self.headers.get("Authorization") else "no", self._status)
        if dropped is not None:
            line += " dropped=%d" % dropped
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")

    def reply(self, code, headers, data, body, cut=None):
        self._status = code
        self.log_request_line(cut if body and cut is not None and cut < len(data) else None)
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body and cut is not None and cut < len(data):
            # Fault injection: full length announced, `cut` bytes sent, then FIN (the client sees a short body).
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif body and data:
            self.wfile.write(data)

    def error(self, code, err, msg, body, headers=None):
        # The hub names the failure in X-Error-Code (read by hf_raise_for_status) and X-Error-Message,
        # with a JSON body {"error": ...}.
        h = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": msg}
        if err:
            h["X-Error-Code"] = err
        h.update(headers or {})
        self.reply(code, h, json.dumps({"error": msg}).encode(), body)

    def route(self, body):
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) == 3 and parts[1] == "cdn":
            return self.cdn(parts[2], body)
        if self.server.server_port == cdn_port or len(parts) < 6 or parts[3] != "resolve":
            return self.error(404, None, "Not Found", body)
        org, name, rev = unquote(parts[1]), unquote(parts[2]), unquote(parts[4])
        segs = unquote("/".join(parts[5:])).split("/")  # decode first, so %2F..%2F is caught too
        repo = os.path.join(args.root, org, name)
        if any(s in ("", ".", "..") or "/" in s for s in (org, name)) or not os.path.isdir(repo):
            # Unauthenticated request for a missing (or private) repo: the hub answers 401 RepoNotFound.
            return self.error(401, "RepoNotFound", "Repository not found", body)
        if os.path.isfile(os.path.join(repo, ".renamed")):
            # Renamed/moved repo: the hub answers 307 with a *relative* Location to the new name.
            with open(os.path.join(repo, ".renamed")) as f:
                new = f.read().strip().strip("/")
            loc = "/" + quote(new, safe="/") + "/resolve/" + "/".join(parts[4:])
            return self.reply(307, {"Location": loc}, b"", body)
        if os.path.isfile(os.path.join(repo, ".gated")):
            if args.token is None or self.headers.get("Authorization") != "Bearer " + args.token:
                return self.error(401, "GatedRepo", "Access to model %s/%s is restricted. You must have "
                                  "access to it and be authenticated to access it. Please log in." % (org, name), body)
        commit = hashlib.sha1(f"{org}/{name}".encode()).hexdigest()
        if rev not in ("main", commit):
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, body)
        rel = "/".join(segs)
        path = os.path.join(repo, *segs)
        if any(s in ("", ".", "..") for s in segs) or rel in HIDDEN or not os.path.isfile(path):
            # The hub still sends X-Repo-Commit here (huggingface_hub uses it to cache ".no_exist").
            return self.error(404, "EntryNotFound", "Entry not found", body, {"X-Repo-Commit": commit})
        size, sha, blob = file_info(path)
        if is_lfs(rel, size):
            size, sha = register(org, name, rel, path)
            port = self.server.server_port if args.same_origin_cdn else cdn_port
            # LFS file: 302 to the CDN, with X-Linked-Etag (quoted sha256) / X-Linked-Size describing the
            # target, as huggingface.co does; the HEAD is not followed, so these headers are the metadata.
            return self.reply(302, {"X-Repo-Commit": commit, "ETag": '"%s"' % sha,
                                    "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(size),
                                    "Location": "http://127.0.0.1:%d/cdn/%s" % (port, sha)}, b"", body)
        # Regular (git) file: 200 with ETag = quoted git blob sha1, as the hub does.
        corrupt = f"{org}/{name}/{rel}" in args.corrupt
        self.send_file(path, '"%s"' % blob, corrupt, body, False, {"X-Repo-Commit": commit})

    def cdn(self, sha, body):
        with lock:
            hit = blobs.get(sha)
        if hit is None:
            scan()  # files added after start-up
            with lock:
                hit = blobs.get(sha)
        if hit is None or not os.path.isfile(hit[0]):
            return self.error(404, None, "NoSuchKey", body)  # S3/CloudFront-like, no X-Error-Code
        drop = False
        if body and args.drop_after is not None:
            with lock:
                drop = sha not in dropped
                dropped.add(sha)
        name = os.path.basename(hit[0])
        self.send_file(hit[0], '"%s"' % sha, hit[1], body, drop,
                       {"Content-Disposition": "inline; filename*=UTF-8''%s; filename=\"%s\";" % (quote(name), name)})

    def send_file(self, path, etag, corrupt, body, drop, extra):
        with open(path, "rb") as f:
            data = bytearray(f.read())
        if corrupt and data:
            data[len(data) // 2] ^= 0xFF  # same length, same announced hash, wrong bytes
        total = len(data)
        h = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", "ETag": etag}
        h.update(extra)
        code, rng = 200, self.headers.get("Range", "")
        if rng.startswith("bytes=") and "," not in rng and "-" in rng:
            a, b = rng[6:].split("-", 1)
            try:
                if a == "":  # suffix range: last b bytes
                    start, end = max(total - int(b), 0), total - 1
                else:
                    start, end = int(a), min(int(b), total - 1) if b else total - 1
            except ValueError:
                start, end = 0, total - 1  # malformed: ignore the header, as servers may
            else:
                if start >= total or start > end:
                    h["Content-Range"] = "bytes */%d" % total
                    return self.reply(416, h, b"", body)
                code = 206
                h["Content-Range"] = "bytes %d-%d/%d" % (start, end, total)
            data = data[start:end + 1]
        self.reply(code, h, bytes(data), body, args.drop_after if drop else None)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global args, cdn_port
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--port-file")
    p.add_argument("--drop-after", type=int)
    p.add_argument("--corrupt", action="append", default=[])
    p.add_argument("--token")
    p.add_argument("--log")
    p.add_argument("--same-origin-cdn", action="store_true")
    args = p.parse_args()
    args.root = os.path.abspath(args.root)
    args.corrupt = set(c.strip("/") for c in args.corrupt)
    for sig in (signal.SIGTERM, signal.SIGINT):  # explicit: a background job may start with SIGINT ignored
        signal.signal(sig, lambda *_: sys.exit(0))
    hub = Server(("127.0.0.1", 0), Handler)
    cdn = Server(("127.0.0.1", 0), Handler)
    cdn_port = cdn.server_port
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % hub.server_port)
        os.replace(tmp, args.port_file)
    try:
        hub.serve_forever()
    finally:
        cdn.shutdown()
        cdn.server_close()
        hub.server_close()


if __name__ == "__main__":
    main()
