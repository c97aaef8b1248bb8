#!/usr/bin/env python3
"""Bits per byte of a bytes-v1 model on files: PyTorch fp32 (from the .npz
weights), PyTorch int8 emulation (the GGUF's int8 weights, int8 activations),
and, with --lmc, the real compressed size from the C engine (`lmc compress`).

    python3 train/eval_bytes.py --gguf models/bytes-v1.gguf --weights train/out/weights_fp32.npz \\
        --lmc build/lmc --bytes 65536 ../shared/corpus/text/*
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_gguf  # noqa: E402
from model import ByteLlama, Config  # noqa: E402
from train_bytes import coded_bits, load_exported  # noqa: E402


def config_from_gguf(meta):
    return Config(vocab=meta["llama.vocab_size"], dim=meta["llama.embedding_length"],
                  n_layers=meta["llama.block_count"], n_heads=meta["llama.attention.head_count"],
                  n_kv_heads=meta["llama.attention.head_count_kv"], hidden_dim=meta["llama.feed_forward_length"],
                  context=meta["llama.context_length"], rope_base=meta["llama.rope.freq_base"],
                  norm_eps=meta["llama.attention.layer_norm_rms_epsilon"])


def lmc_bits(lmc, model_path, data, threads):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in"), os.path.join(tmp, "in.lmc")
        with open(src, "wb") as f:
            f.write(data)
        t0 = time.time()
        subprocess.run([lmc, "compress", "-q", "-f", "-m", model_path, "-T", str(threads), "-o", dst, src],
                       check=True)
        seconds = time.time() - t0
        return os.path.getsize(dst) * 8, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--weights", help="float32 .npz from train_bytes.py (for the fp32 column)")
    ap.add_argument("--lmc", help="path of the lmc CLI (for the engine column)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bytes", type=int, default=0, help="score this prefix of each file (0: all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="write the table here")
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    meta, int8_weights = export_gguf.load_float_weights(args.gguf)
    cfg = config_from_gguf(meta)
    block, ctx, stride = meta["lmc.block_size"], meta["lmc.context_window"], meta["lmc.window_stride"]
    int8_model = ByteLlama(cfg).to(args.device).eval()
    load_exported(int8_model, int8_weights)
    int8_model.set_quant(True)
    fp_model = None
    if args.weights:
        fp_model = ByteLlama(cfg).to(args.device).eval()
        load_exported(fp_model, np.load(args.weights))

    rows = {}
    for path in args.files:
        data = open(path, "rb").read()
        if args.bytes:
            data = data[: args.bytes]
        row = dict(bytes=len(data))
        if fp_model is not None:
            row["fp32_bpb"] = coded_bits(fp_model, data, args.device, ctx, stride, block) / len(data)
        row["int8_bpb"] = coded_bits(int8_model, data, args.device, ctx, stride, block) / len(data)
        if args.lmc:
            bits, seconds = lmc_bits(args.lmc, args.gguf, data, args.threads)
            row["lmc_bpb"] = bits / len(data)
            row["lmc_kb_per_s"] = len(data) / 1024 / seconds
        rows[os.path.basename(path)] = row
        print("%-36s %s" % (os.path.basename(path), json.dumps(row)), flush=True)
    total = sum(r["bytes"] for r in rows.values())
    keys = [k for k in next(iter(rows.values())) if k.endswith("_bpb")]
    summary = {k: sum(r[k] * r["bytes"] for r in rows.values()) / total for k in keys}
    print("total %s" % json.dumps(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(files=rows, total=summary), f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
