#!/usr/bin/env python3
"""Builds the byte corpus for the bytes-v1 model (train/README.md has the recipe).

Sources: the project's text in shared/train/text/*.xz, code and documentation
that Debian packages install on the build machine, and a small share of binary
data (ELF files, gzip streams) so that the model stays modest on binaries.

Every document is checked against every file of shared/corpus (the evaluation
set): a training file whose SHA-256 equals a corpus file's is dropped, and so
is every document (a file, or a paragraph of the large text files) that shares
a run of >= 199 bytes with any corpus file. Documents and repeated paragraphs
are deduplicated, 1% of the documents are held out for validation, and the
result is written as raw byte streams compressed with xz to train/data/.

Deterministic for a given machine: file lists are sorted and every random
choice comes from a generator seeded with SEED and the source name.
Run on the CPU machine: python3 train/prepare_bytes.py
"""
import argparse
import bisect
import gzip
import hashlib
import json
import lzma
import os
import random
import subprocess
import sys
import tarfile
import zlib

import numpy as np

SEED = 20261127
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("LMC_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
MB = 1000 * 1000

# Leakage check: windows of LEAK_WINDOW bytes taken every LEAK_WINDOW bytes of
# each corpus file; any common run of 2*LEAK_WINDOW-1 bytes contains one.
LEAK_WINDOW = 100
# Windows with fewer distinct byte values (indentation, rules of '=') are not
# evidence of shared text.
LEAK_MIN_DISTINCT = 12
HASH_BASE = np.uint64(0x100000001B3)  # odd, so invertible modulo 2^64
DEDUP_MIN_PARAGRAPH = 200  # repeated paragraphs at least this long are kept once
VAL_PERCENT = 1
TEXT_CHUNK = 64 * 1024  # paragraph groups of the large text files (holdout unit)


# ----------------------------------------------------------------- hashing
def _inverse_mod_2_64(a):
    return pow(int(a), -1, 1 << 64)


_POW_CACHE = []


def _powers(n):
    """B^k and B^-k modulo 2^64 for k < n (numpy uint64 arithmetic wraps)."""
    if not _POW_CACHE or len(_POW_CACHE[0]) < n:
        size = max(n, 1 << 24)
        base = np.full(size, HASH_BASE, dtype=np.uint64)
        base[0] = 1
        inv = np.full(size, np.uint64(_inverse_mod_2_64(HASH_BASE)), dtype=np.uint64)
        inv[0] = 1
        with np.errstate(over="ignore"):
            _POW_CACHE[:] = [np.cumprod(base, dtype=np.uint64), np.cumprod(inv, dtype=np.uint64)]
    return _POW_CACHE


def window_hashes(data, width=LEAK_WINDOW):
    """Polynomial hash of every width-byte window: h[i] = sum_j data[i+j]*B^j."""
    n = len(data)
    if n < width:
        return np.zeros(0, dtype=np.uint64)
    pw, inv = _powers(n)
    b = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(b * pw[:n], dtype=np.uint64, out=prefix[1:])
        return (prefix[width:] - prefix[:-width]) * inv[: n - width + 1]


class LeakIndex:
    """Anchored window hashes of every corpus file, and the corpus file hashes."""

    def __init__(self, corpus_dir):
        self.file_sha = set()
        anchors = []
        self.files = []
        for root, _, names in sorted(os.walk(corpus_dir)):
            for name in sorted(names):
                path = os.path.join(root, name)
                data = open(path, "rb").read()
                self.files.append((os.path.relpath(path, corpus_dir), len(data)))
                self.file_sha.add(hashlib.sha256(data).hexdigest())
                hashes = window_hashes(data)
                for pos in range(0, len(hashes), LEAK_WINDOW):
                    if len(set(data[pos : pos + LEAK_WINDOW])) >= LEAK_MIN_DISTINCT:
                        anchors.append(hashes[pos])
        self.anchors = np.unique(np.array(anchors, dtype=np.uint64))

    def hit_positions(self, data):
        """Start positions of windows of data that equal an anchored corpus window."""
        found = []
        step = 8 << 20
        for start in range(0, len(data), step):
            piece = data[start : start + step + LEAK_WINDOW - 1]
            h = window_hashes(piece)
            if len(h) == 0:
                continue
            idx = np.searchsorted(self.anchors, h)
            idx[idx == len(self.anchors)] = 0
            hits = np.nonzero(self.anchors[idx] == h)[0]
            found.extend(int(p) + start for p in hits)
        return sorted(set(found))


# ----------------------------------------------------------------- sources
def read_file(path, limit=None):
    try:
        with open(path, "rb") as f:
            return f.read(limit) if limit else f.read()
    except OSError:
        return None


def is_probably_text(data):
    if not data or b"\0" in data[:65536]:
        return False
    try:
        data[:65536].decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        return e.start > 65536 - 8  # a character cut at the sample's end


def walk_files(roots, suffixes=None, names=None, exclude=()):
    out = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if any(x in dirpath for x in exclude):
                continue
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                if suffixes and not name.endswith(suffixes):
                    if not (names and any(name.startswith(n) for n in names)):
                        continue
                elif not suffixes and names and not any(name.startswith(n) for n in names):
                    continue
                out.append(path)
    return out


def seeded(name):
    return random.Random(SEED ^ zlib.crc32(name.encode()))


def files_source(paths, budget, name, max_file=512 * 1024, decompress_gz=False, text_only=True,
                 group_cap=None, group_of=None):
    """Yields (doc_id, bytes) for a seeded random choice of files, up to budget bytes."""
    rng = seeded(name)
    paths = list(paths)
    rng.shuffle(paths)
    total = 0
    per_group = {}
    for path in paths:
        if total >= budget:
            break
        data = read_file(path)
        if data is None:
            continue
        if decompress_gz and path.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                continue
        if not data or len(data) > max_file or (text_only and not is_probably_text(data)):
            continue
        if group_cap:
            g = group_of(path)
            if per_group.get(g, 0) + len(data) > group_cap:
                continue
            per_group[g] = per_group.get(g, 0) + len(data)
        total += len(data)
        yield path, data


def split_paragraph_groups(text, target=TEXT_CHUNK):
    """Cuts a large text into groups of whole paragraphs of about target bytes."""
    out, start, n = [], 0, len(text)
    while start < n:
        cut = text.find(b"\n\n", start + target, start + 4 * target)
        end = cut + 2 if cut >= 0 else text.find(b"\n", start + target) + 1
        if end <= 0:
            end = n
        out.append(text[start:end])
        start = end
    return out


def shared_text_source(path, budget, name, opener=lzma.open):
    """Seeded paragraph groups of a large compressed text file, up to budget bytes."""
    data = opener(path).read()
    groups = split_paragraph_groups(data)
    order = list(range(len(groups)))
    seeded(name).shuffle(order)
    total = 0
    chosen = []
    for i in order:
        if total >= budget:
            break
        chosen.append(i)
        total += len(groups[i])
    for i in sorted(chosen):  # keep the kept groups in reading order
        yield "%s#%d" % (os.path.basename(path), i), groups[i]


def linux_source(tar_path, budget_c, budget_doc, c_one_in=8, doc_one_in=3):
    """Kernel .c files and Documentation/*.rst, chosen by a seeded hash of the path
    (1 in c_one_in .c files, 1 in doc_one_in docs)."""
    if not os.path.exists(tar_path):
        return
    got = {"c": 0, "rst": 0}
    keep_c, keep_doc = [], []
    with tarfile.open(tar_path, "r:xz") as tar:
        for member in tar:
            if not member.isfile() or member.size > 256 * 1024:
                continue
            kind = "c" if member.name.endswith(".c") else (
                "rst" if member.name.endswith(".rst") and "/Documentation/" in member.name else None)
            if kind is None:
                continue
            # A seeded hash of the path spreads the choice over the whole tree.
            h = zlib.crc32(("%d:%s" % (SEED, member.name)).encode())
            if (kind == "c" and h % c_one_in) or (kind == "rst" and h % doc_one_in):
                continue
            budget = budget_c if kind == "c" else budget_doc
            if got[kind] + member.size > budget:
                continue
            data = tar.extractfile(member).read()
            got[kind] += len(data)
            (keep_c if kind == "c" else keep_doc).append((member.name, data))
    for item in keep_c:
        yield item
    for item in keep_doc:
        yield item


def elf_source(budget, name):
    """Up to four 64 KiB slices per ELF file of /usr/lib and /usr/bin."""
    paths = walk_files(["/usr/lib/x86_64-linux-gnu", "/usr/bin", "/usr/sbin"])
    rng = seeded(name)
    rng.shuffle(paths)
    total = 0
    for path in paths:
        if total >= budget:
            break
        head = read_file(path, 4)
        if head != b"\x7fELF":
            continue
        data = read_file(path)
        slice_len = 64 * 1024
        n_slices = min(4, max(1, len(data) // slice_len))
        step = max(slice_len, len(data) // n_slices)
        for k in range(n_slices):
            piece = data[k * step : k * step + slice_len]
            total += len(piece)
            yield "%s@%d" % (path, k * step), piece


def gz_raw_source(budget, name):
    """Compressed bytes as they are (gzip streams), so random-looking data is seen."""
    paths = walk_files(["/usr/share/doc"], suffixes=(".gz",))
    return files_source(paths, budget, name, max_file=256 * 1024, text_only=False)


def shell_scripts(budget, name):
    paths = [p for p in walk_files(["/usr/bin", "/usr/sbin", "/usr/lib/git-core", "/etc"])
             if (read_file(p, 2) or b"") == b"#!"]
    return files_source(paths, budget, name, max_file=256 * 1024)


def build_sources():
    """(source name, iterator of documents); budgets are raw bytes before filtering."""
    text = os.path.join(SHARED, "train", "text")
    text_caps = {  # bytes per shared text file; None = all
        "books_gutenberg_english.txt.xz": None,
        "books_gutenberg_sampled.txt.xz": 24 * MB,
        "encyclopedic_wikipedia_2018.txt.xz": 42 * MB,
        "legal_scotus_OT2010_all_opinions.txt.xz": None,
        "legal_us_code_titles.txt.xz": None,
        "medical_hallmarks_of_cancer_abstracts.txt.xz": None,
        "medical_medquad_nih_qa.txt.xz": 12 * MB,
        "medical_pmc_oa_fulltext.txt.xz": None,
        "medical_pubmedqa_abstracts.txt.xz": None,
    }
    sources = []
    for name in sorted(os.listdir(text)):
        if name.endswith(".txt.xz"):
            cap = text_caps.get(name, None)
            sources.append(("text/" + name[: -len(".txt.xz")],
                            shared_text_source(os.path.join(text, name), cap or 1 << 40, name)))
    top_dir = lambda p: p.split("/")[3] if p.count("/") > 3 else "."
    sources += [
        ("code/linux-c+docs", linux_source("/usr/src/linux-source-6.1.tar.xz", 20 * MB, 4 * MB)),
        ("code/usr-include", files_source(
            walk_files(["/usr/include"], suffixes=(".h", ".hpp", ".hh", ".tcc", ".def", ".inc")),
            12 * MB, "include", max_file=256 * 1024, group_cap=1500 * 1000, group_of=top_dir)),
        ("code/python", files_source(
            walk_files(["/usr/lib/python3.11", "/usr/lib/python3/dist-packages"], suffixes=(".py",),
                       exclude=("gensim",)),
            20 * MB, "python", max_file=256 * 1024)),
        ("code/perl", files_source(
            walk_files(["/usr/share/perl", "/usr/share/perl5", "/usr/lib/x86_64-linux-gnu/perl",
                        "/usr/lib/x86_64-linux-gnu/perl5", "/usr/lib/x86_64-linux-gnu/perl-base"],
                       suffixes=(".pm", ".pl", ".pod")),
            6 * MB, "perl", max_file=512 * 1024)),
        ("code/shell", shell_scripts(2 * MB, "shell")),
        ("doc/man", files_source(
            walk_files(["/usr/share/man/man%d" % i for i in range(1, 9)], suffixes=(".gz",)),
            10 * MB, "man", max_file=512 * 1024, decompress_gz=True)),
        ("doc/python-rst", files_source(
            walk_files(["/usr/share/doc/python3.11/html/_sources"], suffixes=(".txt",)),
            8 * MB, "pyrst", max_file=512 * 1024)),
        ("doc/python-html", files_source(
            walk_files(["/usr/share/doc/python3.11/html"], suffixes=(".html",), exclude=("_sources",)),
            4 * MB, "pyhtml", max_file=256 * 1024)),
        ("doc/usr-share-doc", files_source(
            walk_files(["/usr/share/doc"], suffixes=(".txt", ".md", ".rst", ".html", ".Debian.gz",
                                                     "changelog.gz", "NEWS.gz", "README.gz"),
                       names=("README", "copyright", "AUTHORS", "TODO", "NEWS", "FAQ"),
                       exclude=("python3.11/html",)),
            10 * MB, "usrdoc", max_file=256 * 1024, decompress_gz=True)),
        ("doc/xml", files_source(
            walk_files(["/usr/share/xml", "/usr/share/mime/packages", "/usr/share/metainfo",
                        "/usr/share/gnome", "/usr/share/glib-2.0"], suffixes=(".xml", ".xsl", ".dtd")),
            2 * MB, "xml", max_file=2 * 1024 * 1024)),
        ("binary/elf", elf_source(9 * MB, "elf")),
        ("binary/gzip", gz_raw_source(1500 * 1000, "gz")),
    ]
    return sources


# ----------------------------------------------------------------- filters
def drop_leaking_paragraphs(data, hits):
    """Removes the paragraphs (blank-line separated) that overlap a hit window."""
    bad = set()
    starts = [0]
    pos = data.find(b"\n\n")
    while pos >= 0:
        starts.append(pos + 2)
        pos = data.find(b"\n\n", pos + 2)
    starts.append(len(data))
    for h in hits:
        first = bisect.bisect_right(starts, h) - 1
        last = bisect.bisect_right(starts, h + LEAK_WINDOW - 1) - 1
        bad.update(range(first, last + 1))
    kept = [data[starts[i] : starts[i + 1]] for i in range(len(starts) - 1) if i not in bad]
    return b"".join(kept), len(bad)


def dedup_paragraphs(data, seen):
    parts = data.split(b"\n\n")
    kept = []
    for p in parts:
        if len(p) >= DEDUP_MIN_PARAGRAPH:
            key = hashlib.sha1(p).digest()
            if key in seen:
                continue
            seen.add(key)
        kept.append(p)
    return b"\n\n".join(kept)


def is_val(index_in_source):
    """Every (100/VAL_PERCENT)-th kept document of each source (sources come in
    a seeded random order, so this is a random 1% with the same share everywhere)."""
    return index_in_source % (100 // VAL_PERCENT) == 100 // VAL_PERCENT // 2


def filter_documents(sources, leak):
    """Corpus exclusion, deduplication and holdout over (source name, documents) pairs.
    Returns train and validation documents as (source, bytes) in source order, and the
    per-source statistics."""
    seen_docs, seen_paras = set(), set()
    train_docs, val_docs = [], []
    stats = {}
    for source, docs in sources:
        st = stats.setdefault(source, dict(docs=0, raw=0, kept=0, val=0, dup_docs=0, leak_docs=0,
                                           leak_paragraphs=0, corpus_hash=0))
        binary = source.startswith("binary/")
        for doc_id, data in docs:
            st["docs"] += 1
            st["raw"] += len(data)
            digest = hashlib.sha256(data).hexdigest()
            if digest in leak.file_sha:
                st["corpus_hash"] += 1
                continue
            if digest in seen_docs:
                st["dup_docs"] += 1
                continue
            seen_docs.add(digest)
            hits = leak.hit_positions(data)
            if hits:
                if source.startswith("text/"):
                    data, n = drop_leaking_paragraphs(data, hits)
                    st["leak_paragraphs"] += n
                else:
                    st["leak_docs"] += 1
                    continue
            if not binary:
                data = dedup_paragraphs(data, seen_paras)
            if not data:
                continue
            st["kept_docs"] = st.get("kept_docs", 0) + 1
            if is_val(st["kept_docs"] - 1):
                val_docs.append((source, data))
                st["val"] += len(data)
            else:
                train_docs.append((source, data))
                st["kept"] += len(data)
        print("%-40s %s" % (source, json.dumps(st)), flush=True)
    return train_docs, val_docs, stats


def write_split(path, docs, xz_level):
    """Concatenates the documents into path and replaces it by path.xz (xz -T2 xz_level).
    Returns the manifest entry and the (source, offset, length) span of every document."""
    spans = []
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        offset = 0
        for source, data in docs:
            f.write(data)
            sha.update(data)
            spans.append((source, offset, len(data)))
            offset += len(data)
    entry = dict(bytes=offset, sha256=sha.hexdigest(), docs=len(docs))
    subprocess.run(["xz", "-f", "-k", "-T2", xz_level, path], check=True)
    os.remove(path)
    entry["xz_bytes"] = os.path.getsize(path + ".xz")
    return entry, spans


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "train", "data"))
    ap.add_argument("--xz-level", default="-9")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    leak = LeakIndex(os.path.join(SHARED, "corpus"))
    print("corpus: %d files, %d anchored windows" % (len(leak.files), len(leak.anchors)), flush=True)

    train_docs, val_docs, stats = filter_documents(build_sources(), leak)
    random.Random(SEED).shuffle(train_docs)
    manifest = dict(seed=SEED, leak_window=LEAK_WINDOW, val_percent=VAL_PERCENT, sources=stats,
                    corpus_files=len(leak.files))
    for split, docs in (("train", train_docs), ("val", val_docs)):
        manifest[split], spans = write_split(os.path.join(args.out, split + ".bin"), docs,
                                             args.xz_level)
        if split == "val":
            manifest["val_spans"] = spans
        print(split, json.dumps(manifest[split]), flush=True)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)

    # The evaluation texts travel alongside (never trained on) for corpus bits per byte.
    eval_dir = os.path.join(args.out, "eval")
    os.makedirs(eval_dir, exist_ok=True)
    for name in sorted(os.listdir(os.path.join(SHARED, "corpus", "text"))):
        data = open(os.path.join(SHARED, "corpus", "text", name), "rb").read()
        with lzma.open(os.path.join(eval_dir, name + ".xz"), "wb", preset=6) as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
