#!/usr/bin/env python3
"""Scores trained text models on files the way the engine codes them (fp32 and
the int8 emulation), as train_text.py does at the end of a run, and writes the
tokenizer's ids of each file's first --check-bytes (whole lines) for comparing
with `lmc tokenize`.

    python3 train/eval_text.py --tokens train/out-text --out eval.json RUN_DIR... -- FILE...
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_gguf  # noqa: E402
from model import ByteLlama, Config  # noqa: E402
from train_bytes import load_exported  # noqa: E402
from train_text import score_files  # noqa: E402


def load_run(run_dir, device):
    cfg = Config(**json.load(open(os.path.join(run_dir, "config.json"))))
    weights = dict(np.load(os.path.join(run_dir, "weights_fp32.npz")))
    fp32 = ByteLlama(cfg).to(device)
    load_exported(fp32, weights)
    int8 = ByteLlama(cfg).to(device)
    load_exported(int8, export_gguf.dequantized(weights, embed_int8=True))
    int8.set_quant(True)
    fp32.eval(), int8.eval()
    return cfg, fp32, int8


def main():
    argv = sys.argv[1:]
    split = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--block-size", type=int, default=262144)
    ap.add_argument("--stride", type=int, default=384)
    ap.add_argument("--check-bytes", type=int, default=65536)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args(argv[:split])
    files = argv[split + 1 :]
    tokenizer = Tokenizer.from_file(os.path.join(args.tokens, "tokenizer.json"))
    report = dict(check={})
    for path in files:
        data = open(path, "rb").read(args.check_bytes)
        data = data[: data.rfind(b"\n") + 1]
        report["check"][os.path.basename(path)] = tokenizer.encode(data.decode("utf-8", errors="replace"),
                                                                   add_special_tokens=False).ids
    torch.backends.cuda.matmul.allow_tf32 = False
    for run in args.runs:
        cfg, fp32, int8 = load_run(run, args.device)
        with torch.autocast(device_type="cuda", enabled=False):
            report[os.path.basename(run.rstrip("/"))] = score_files(
                dict(fp32=fp32, int8=int8), tokenizer, files, args.block_size, cfg.vocab, args.device,
                cfg.context, args.stride)
    with open(args.out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
