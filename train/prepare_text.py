#!/usr/bin/env python3
"""Builds the training set of the default text model (text-en; train/README.md has the recipe).

A larger, text-oriented sibling of prepare_bytes.py, whose machinery it reuses: the same
evaluation-set exclusion (SHA-256 of every shared/corpus file and a 100-byte window index over
all of them), the same deduplication of documents and repeated paragraphs, the same 1% holdout
per source. Sources: all of shared/train/text, code and documentation that Debian packages
install (more of it than bytes-v1 takes, plus Go, Java, Rust, glibc C, Emacs Lisp, JavaScript,
info manuals, HTML documentation and the GCIDE dictionary), and a small binary share (ELF
slices, gzip streams) because this model is also the default for inputs no other model claims.

Documents are concatenated as they are (no separator), the train split is cut into
TRAIN_SHARDS files train-NN.bin.xz, and validation goes to val.bin.xz; manifest.json records
every source's statistics and the SHA-256 of every uncompressed split.

Deterministic for a given machine and set of installed packages: file lists are sorted and every
random choice comes from a generator seeded with SEED and the source name.
Run on the CPU machine: /usr/bin/python3 train/prepare_text.py
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
import tarfile
import zipfile
import zlib

import prepare_bytes as pb

SEED = 20261128
# prepare_bytes draws every choice (seeded(), linux_source) from its module-level SEED.
pb.SEED = SEED
MB = pb.MB
TRAIN_SHARDS = 3
MAX_SHARD_XZ = 60 * 1024 * 1024

# Debian packages installed for this set (besides those prepare_bytes relies on); their
# versions go into the manifest.
PACKAGES = ("linux-source-6.1", "python3.11-doc", "perl-doc", "golang-1.19-src", "dict-gcide",
            "openjdk-17-source", "rust-src", "glibc-source", "emacs-common", "emacs-el",
            "docbook-xsl-doc-html", "sqlite3-doc", "bash-doc", "autoconf-doc", "gnu-standards",
            "node-babel7", "node-lodash", "libjs-three")


# ----------------------------------------------------------------- new sources
def tar_source(tar_path, suffixes, budget, name, one_in, max_file=256 * 1024):
    """Files of a source tarball with one of suffixes: 1 in one_in by a seeded hash of the
    path (so the choice is spread over the whole tree), up to budget bytes."""
    if not os.path.exists(tar_path):
        return
    total = 0
    with tarfile.open(tar_path, "r:*") as tar:
        for member in tar:
            if total >= budget:
                break
            if not member.isfile() or member.size > max_file or not member.name.endswith(suffixes):
                continue
            if zlib.crc32(("%d:%s:%s" % (SEED, name, member.name)).encode()) % one_in:
                continue
            data = tar.extractfile(member).read()
            if not pb.is_probably_text(data):
                continue
            total += len(data)
            yield member.name, data


def zip_source(zip_path, suffixes, budget, name, max_file=256 * 1024):
    """A seeded random choice of the members of a zip archive, up to budget bytes."""
    if not os.path.exists(zip_path):
        return
    with zipfile.ZipFile(zip_path) as archive:
        members = sorted(i.filename for i in archive.infolist()
                         if i.filename.endswith(suffixes) and 0 < i.file_size <= max_file)
        pb.seeded(name).shuffle(members)
        total = 0
        for member in members:
            if total >= budget:
                break
            data = archive.read(member)
            if not pb.is_probably_text(data):
                continue
            total += len(data)
            yield member, data


def javascript_paths():
    """JavaScript of the Debian node and libjs packages, without minified bundles."""
    paths = pb.walk_files(["/usr/share/nodejs", "/usr/share/javascript", "/usr/lib/nodejs"],
                          suffixes=(".js", ".mjs", ".cjs", ".ts"))
    return [p for p in paths if not p.endswith((".min.js", ".d.ts")) and ".min." not in p]


def html_doc_paths():
    """HTML pages of /usr/share/doc (sqlite, docbook-xsl, bash, ...); python3.11-doc has its
    own source."""
    return pb.walk_files(["/usr/share/doc"], suffixes=(".html", ".htm", ".xhtml"),
                         exclude=("python3.11/html",))


def build_sources():
    """(source name, iterator of documents); budgets are raw bytes before filtering."""
    text = os.path.join(pb.SHARED, "train", "text")
    sources = []
    for name in sorted(os.listdir(text)):  # every shared text file, complete
        if name.endswith(".txt.xz"):
            sources.append(("text/" + name[: -len(".txt.xz")],
                            pb.shared_text_source(os.path.join(text, name), 1 << 40, name)))
    sources.append(("text/gcide-dictionary", pb.shared_text_source(
        "/usr/share/dictd/gcide.dict.dz", 20 * MB, "gcide", opener=gzip.open)))
    top_dir = lambda p: p.split("/")[3] if p.count("/") > 3 else "."
    sources += [
        ("code/linux-c+docs", pb.linux_source("/usr/src/linux-source-6.1.tar.xz", 50 * MB, 10 * MB,
                                              c_one_in=4, doc_one_in=2)),
        ("code/glibc-c", tar_source("/usr/src/glibc/glibc-2.36.tar.xz", (".c", ".h"), 15 * MB,
                                    "glibc", one_in=3)),
        ("code/usr-include", pb.files_source(
            pb.walk_files(["/usr/include"], suffixes=(".h", ".hpp", ".hh", ".tcc", ".def", ".inc")),
            16 * MB, "include", max_file=256 * 1024, group_cap=2500 * 1000, group_of=top_dir)),
        ("code/python", pb.files_source(
            pb.walk_files(["/usr/lib/python3.11", "/usr/lib/python3/dist-packages"],
                          suffixes=(".py",), exclude=("gensim",)),
            24 * MB, "python", max_file=256 * 1024)),
        ("code/perl", pb.files_source(
            pb.walk_files(["/usr/share/perl", "/usr/share/perl5", "/usr/lib/x86_64-linux-gnu/perl",
                           "/usr/lib/x86_64-linux-gnu/perl5", "/usr/lib/x86_64-linux-gnu/perl-base"],
                          suffixes=(".pm", ".pl", ".pod")),
            8 * MB, "perl", max_file=512 * 1024)),
        ("code/shell", pb.shell_scripts(2 * MB, "shell")),
        ("code/go", pb.files_source(
            pb.walk_files(["/usr/share/go-1.19/src", "/usr/share/go-1.19/misc"], suffixes=(".go",)),
            25 * MB, "go", max_file=256 * 1024)),
        ("code/java", zip_source("/usr/lib/jvm/openjdk-17/lib/src.zip", (".java",), 20 * MB, "java")),
        ("code/rust", pb.files_source(
            pb.walk_files(["/usr/src/rustc-1.63.0/library"], suffixes=(".rs",)),
            12 * MB, "rust", max_file=256 * 1024)),
        ("code/elisp", pb.files_source(
            pb.walk_files(["/usr/share/emacs/28.2/lisp"], suffixes=(".el.gz", ".el")),
            10 * MB, "elisp", max_file=512 * 1024, decompress_gz=True)),
        ("code/javascript", pb.files_source(javascript_paths(), 10 * MB, "js", max_file=256 * 1024)),
        ("doc/man", pb.files_source(
            pb.walk_files(["/usr/share/man/man%d" % i for i in range(1, 9)], suffixes=(".gz",)),
            12 * MB, "man", max_file=512 * 1024, decompress_gz=True)),
        ("doc/info", pb.files_source(
            pb.walk_files(["/usr/share/info"], suffixes=(".gz",)),
            12 * MB, "info", max_file=2 * 1024 * 1024, decompress_gz=True)),
        ("doc/python-rst", pb.files_source(
            pb.walk_files(["/usr/share/doc/python3.11/html/_sources"], suffixes=(".txt",)),
            10 * MB, "pyrst", max_file=512 * 1024)),
        ("doc/python-html", pb.files_source(
            pb.walk_files(["/usr/share/doc/python3.11/html"], suffixes=(".html",),
                          exclude=("_sources",)),
            5 * MB, "pyhtml", max_file=256 * 1024)),
        ("doc/html", pb.files_source(html_doc_paths(), 8 * MB, "html", max_file=256 * 1024)),
        ("doc/usr-share-doc", pb.files_source(
            pb.walk_files(["/usr/share/doc"], suffixes=(".txt", ".md", ".rst", ".Debian.gz",
                                                        "changelog.gz", "NEWS.gz", "README.gz"),
                          names=("README", "copyright", "AUTHORS", "TODO", "NEWS", "FAQ"),
                          exclude=("python3.11/html",)),
            10 * MB, "usrdoc", max_file=256 * 1024, decompress_gz=True)),
        ("doc/xml", pb.files_source(
            pb.walk_files(["/usr/share/xml", "/usr/share/mime/packages", "/usr/share/metainfo",
                           "/usr/share/gnome", "/usr/share/glib-2.0"],
                          suffixes=(".xml", ".xsl", ".dtd")),
            4 * MB, "xml", max_file=2 * 1024 * 1024)),
        ("binary/elf", pb.elf_source(9 * MB, "elf")),
        ("binary/gzip", pb.gz_raw_source(2 * MB, "gz")),
    ]
    return sources


# ----------------------------------------------------------------- output
def package_versions():
    versions = {}
    for name in PACKAGES:
        run = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name],
                             capture_output=True, text=True)
        versions[name] = run.stdout if run.returncode == 0 else None
    return versions


def shard_bounds(docs, shards):
    """Cuts the document list into shards of about equal bytes, at document boundaries."""
    total = sum(len(d) for _, d in docs)
    bounds, acc, k = [0], 0, 1
    for i, (_, data) in enumerate(docs):
        acc += len(data)
        if k < shards and acc >= total * k // shards:
            bounds.append(i + 1)
            k += 1
    bounds.append(len(docs))
    return bounds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(pb.REPO, "train", "data-text"))
    ap.add_argument("--xz-level", default="-9")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    leak = pb.LeakIndex(os.path.join(pb.SHARED, "corpus"))
    print("corpus: %d files, %d anchored windows" % (len(leak.files), len(leak.anchors)), flush=True)

    train_docs, val_docs, stats = pb.filter_documents(build_sources(), leak)
    random.Random(SEED).shuffle(train_docs)
    manifest = dict(seed=SEED, leak_window=pb.LEAK_WINDOW, val_percent=pb.VAL_PERCENT,
                    sources=stats, corpus_files=len(leak.files), packages=package_versions(),
                    xz_level=args.xz_level, separator="none (documents concatenated as they are)")

    bounds = shard_bounds(train_docs, TRAIN_SHARDS)
    shards, train_sha = [], hashlib.sha256()
    for k in range(TRAIN_SHARDS):
        part = train_docs[bounds[k] : bounds[k + 1]]
        for _, data in part:
            train_sha.update(data)
        entry, _ = pb.write_split(os.path.join(args.out, "train-%02d.bin" % k), part, args.xz_level)
        entry["file"] = "train-%02d.bin.xz" % k
        shards.append(entry)
        print(entry["file"], json.dumps(entry), flush=True)
        if entry["xz_bytes"] > MAX_SHARD_XZ:
            print("warning: %s is over %d bytes" % (entry["file"], MAX_SHARD_XZ), flush=True)
    manifest["train"] = dict(bytes=sum(s["bytes"] for s in shards), docs=len(train_docs),
                             sha256=train_sha.hexdigest(), shards=shards,
                             xz_bytes=sum(s["xz_bytes"] for s in shards))
    manifest["val"], manifest["val_spans"] = pb.write_split(os.path.join(args.out, "val.bin"),
                                                            val_docs, args.xz_level)
    print("val", json.dumps(manifest["val"]), flush=True)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
