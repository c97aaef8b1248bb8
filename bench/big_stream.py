#!/usr/bin/env python3
"""Streams a large generated input through `lmc compress` and `lmc decompress`
(issue 9: memory bounded independently of the input size).

The input (default 4 GiB) is generated on the fly and piped into lmc; only
the archive touches the disk. The decompressed stream is hashed as it comes
out and compared with the input's SHA-256. Each process's peak resident set
is its own rusage from wait4 (the same figure as GNU time's "Maximum resident
set size").

    python3 bench/big_stream.py build/lmc --size 4G --work /tmp -- --fast -T 2

The generated text: lines from the files given with --source (default: the
project's README and docs), each prefixed by a running line number, so that it
never repeats exactly and the coder has real work at every position.
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 1 << 20


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def generate(sources, size):
    """Yields exactly `size` bytes of numbered lines, in chunks of about CHUNK."""
    lines = [line for path in sources for line in open(path, "rb").read().splitlines(keepends=True) if line.strip()]
    produced, number, parts, pending = 0, 0, [], 0
    while produced < size:
        line = b"%d " % number + lines[number % len(lines)]
        number += 1
        parts.append(line)
        pending += len(line)
        if pending >= CHUNK:
            block = b"".join(parts)[: size - produced]
            produced += len(block)
            parts, pending = [], 0
            yield block
    if parts and produced < size:
        yield b"".join(parts)[: size - produced]


def run_compress(lmc, options, sources, size, archive):
    digest = hashlib.sha256()
    with open(archive, "wb") as out:
        proc = subprocess.Popen([lmc, "compress", "-c", *options, "-"], stdin=subprocess.PIPE, stdout=out)
        t0 = time.time()
        for block in generate(sources, size):
            digest.update(block)
            proc.stdin.write(block)
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return dict(seconds=time.time() - t0, exit=proc.returncode, peak_rss_kib=usage.ru_maxrss,
                sha256=digest.hexdigest())


def run_decompress(lmc, threads, archive):
    digest = hashlib.sha256()
    t0 = time.time()
    proc = subprocess.Popen([lmc, "decompress", "-c", *threads, archive], stdout=subprocess.PIPE)
    total = 0
    while True:
        block = proc.stdout.read(CHUNK)
        if not block:
            break
        total += len(block)
        digest.update(block)
    _, status, usage = os.wait4(proc.pid, 0)
    return dict(seconds=time.time() - t0, exit=os.waitstatus_to_exitcode(status), peak_rss_kib=usage.ru_maxrss,
                bytes=total, sha256=digest.hexdigest())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lmc")
    ap.add_argument("--size", default="4G")
    ap.add_argument("--work", default="/tmp", help="folder for the archive")
    ap.add_argument("--source", action="append", help="text files the lines come from")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:split])
    args.options = argv[split + 1 :]  # lmc compress options
    size = parse_size(args.size)
    sources = args.source or sorted(glob.glob(os.path.join(REPO, "docs", "*.md"))) + [os.path.join(REPO, "README.md")]
    archive = os.path.join(args.work, "big_stream.lmc")
    threads = [o for o in args.options if o.startswith("-T") and o != "-T"]
    if "-T" in args.options:
        i = args.options.index("-T")
        threads = args.options[i : i + 2]
    report = dict(size=size, options=args.options)
    report["compress"] = run_compress(args.lmc, args.options, sources, size, archive)
    report["archive_bytes"] = os.path.getsize(archive)
    report["decompress"] = run_decompress(args.lmc, threads, archive)
    os.unlink(archive)
    ok = (report["compress"]["exit"] == 0 and report["decompress"]["exit"] == 0 and
          report["decompress"]["bytes"] == size and report["decompress"]["sha256"] == report["compress"]["sha256"])
    report["round_trip"] = "ok" if ok else "FAILED"
    for side in ("compress", "decompress"):
        r = report[side]
        r["MB_per_s"] = round(size / 1e6 / r["seconds"], 2)
        r["peak_rss_MiB"] = round(r["peak_rss_kib"] / 1024, 1)
    print(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
