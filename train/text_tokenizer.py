#!/usr/bin/env python3
"""Trains text-en's byte-level BPE tokenizer and tokenizes the training data.

The tokenizer is what llama.cpp calls a "gpt2" vocabulary with the "llama3"
pre-tokenizer (the regex below), so lmc's C tokenizer (src/model/tokenizer_bpe.c)
reproduces it exactly: the 256 byte symbols are always in the vocabulary, so
every byte sequence stays encodable, and the rest are merges learned here.
No special tokens: a block's first token is coded without a BOS.

Runs on the GPU machine (Hugging Face `tokenizers`, numpy); with 16 cores it
takes a few minutes for 400 MB.

    python3 train/text_tokenizer.py --data train/data-text --out train/out-text --vocab 8192

Writes to --out: tokenizer.json (Hugging Face format), vocab.json (tokens and
merges in the order the GGUF stores them), train.u16 and val.u16 (token ids,
little-endian uint16), and, with --check-dir, check.json: the ids of the first
--check-bytes of each file there, for comparing with `lmc tokenize`.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import time

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

# llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3 regex (tokenizer.ggml.pre = "llama-bpe").
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHUNK = 1 << 20  # texts are cut at a newline near every CHUNK bytes


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def read_xz(path):
    return subprocess.run(["xz", "-dc", "-T0", path], check=True, stdout=subprocess.PIPE).stdout


def chunks(data):
    """Pieces of about CHUNK bytes ending after a newline (token boundaries
    across a cut differ at most at the cut)."""
    out, start = [], 0
    while start < len(data):
        end = min(len(data), start + CHUNK)
        if end < len(data):
            nl = data.rfind(b"\n", start, end)
            end = nl + 1 if nl > start else end
        out.append(data[start:end])
        start = end
    return out


def as_text(piece):
    """Binary or invalid UTF-8 is decoded with replacement characters: the
    model sees them rarely, and the C tokenizer handles the real bytes."""
    return piece.decode("utf-8", errors="replace")


def build_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def vocab_for_gguf(tok):
    """Tokens in id order and merges in rank order, as GGUF strings."""
    spec = json.loads(tok.to_str())["model"]
    vocab = spec["vocab"]
    tokens = [None] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["merges"]]
    return dict(tokens=tokens, merges=merges, pre="llama-bpe")


def encode_all(tok, data):
    pieces = [as_text(p) for p in chunks(data)]
    ids = []
    for i in range(0, len(pieces), 256):
        for enc in tok.encode_batch(pieces[i : i + 256], add_special_tokens=False):
            ids.append(np.asarray(enc.ids, dtype=np.uint16))
    return np.concatenate(ids) if ids else np.zeros(0, dtype=np.uint16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder with train-*.bin.xz and val.bin.xz")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--sample-mb", type=int, default=200, help="training text for the merges (MB)")
    ap.add_argument("--check-dir", default=None)
    ap.add_argument("--check-bytes", type=int, default=65536)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    t0 = time.time()
    train = b"".join(read_xz(p) for p in sorted(glob.glob(os.path.join(args.data, "train-*.bin.xz"))))
    val = read_xz(os.path.join(args.data, "val.bin.xz"))
    log("train %d bytes, val %d bytes" % (len(train), len(val)))

    # The merges are learned from an evenly spread sample of the chunks.
    pieces = chunks(train)
    keep = max(1, len(pieces) * CHUNK // max(1, args.sample_mb << 20))
    sample = [as_text(p) for p in pieces[::keep]]
    tok = build_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(sample, trainer=trainer, length=len(sample))
    log("tokenizer: %d tokens from %d chunks" % (tok.get_vocab_size(), len(sample)))
    tok.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "vocab.json"), "w") as f:
        json.dump(vocab_for_gguf(tok), f)

    report = dict(vocab=tok.get_vocab_size(), sample_chunks=len(sample))
    for name, data in (("train", train), ("val", val)):
        ids = encode_all(tok, data)
        ids.tofile(os.path.join(args.out, name + ".u16"))
        report[name] = dict(bytes=len(data), tokens=int(len(ids)), bytes_per_token=len(data) / max(1, len(ids)))
        log("%s: %d tokens, %.3f bytes per token" % (name, len(ids), len(data) / max(1, len(ids))))

    if args.check_dir:
        check = {}
        for path in sorted(glob.glob(os.path.join(args.check_dir, "*"))):
            data = open(path, "rb").read(args.check_bytes)
            data = data[: data.rfind(b"\n") + 1]  # whole lines: no character cut in two
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            check[os.path.basename(path)] = tok.encode(text, add_special_tokens=False).ids
        with open(os.path.join(args.out, "check.json"), "w") as f:
            json.dump(check, f)
    report["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "tokenizer_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    log("done", json.dumps(report))


if __name__ == "__main__":
    if not shutil.which("xz"):
        raise SystemExit("xz is needed")
    main()
