#!/usr/bin/env python3
"""Adapts text-en to a domain (legal, medical) and writes the adaptation as an
overlay GGUF: the base model's metadata and tokenizer, the keys
lmc.base_model / lmc.base_model_hash naming the base file, and only the
tensors of the fine-tuned layers (docs/MODELS.md, "Overlays"). The engine loads
the base and replaces those tensors, so a domain variant costs a few MB
instead of a whole model.

Starts from the base GGUF's own int8 weights (what the engine runs), trains
only the layers given by --tune-layers (bf16 autocast, AdamW, cosine), keeps
the best validation weights, and scores base and variant on --eval files as
the engine codes them (int8 emulation).

    python3 train/finetune.py --base models/text-en.gguf --base-hash HEX \\
        --tokenizer train/text-en.tokenizer.json --data train/data-domain --domain legal \\
        --tune-layers 4,5 --out OUT -- EVAL_FILE...
"""
import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_gguf  # noqa: E402
from eval_bytes import config_from_gguf  # noqa: E402
from model import ByteLlama  # noqa: E402
from text_tokenizer import encode_all  # noqa: E402
from train_bytes import load_exported, lr_at, mean_loss  # noqa: E402
from train_text import TokenBatches, score_files, val_windows  # noqa: E402

LAYER_TENSORS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                 "ffn_down")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def read_xz(path):
    return subprocess.run(["xz", "-dc", path], check=True, stdout=subprocess.PIPE).stdout


def overlay_metadata(meta, cfg, name, base_hash):
    tokenizer = dict(tokens=meta["tokenizer.ggml.tokens"], merges=meta["tokenizer.ggml.merges"],
                     pre=meta["tokenizer.ggml.pre"])
    kvs = export_gguf.metadata(cfg.to_dict(), meta["lmc.context_window"], meta["lmc.window_stride"],
                               meta["lmc.block_size"], name, tokenizer, meta["lmc.default_kind"])
    return kvs + [("lmc.base_model", export_gguf.T_STRING, meta["general.name"]),
                  ("lmc.base_model_hash", export_gguf.T_STRING, base_hash)]


def overlay_items(tensors, layers):
    """The tuned layers' tensors in the engine's layout (matrices I8 + scale)."""
    items = []
    for i in layers:
        for kind in LAYER_TENSORS:
            name = "blk.%d.%s.weight" % (i, kind)
            w = np.ascontiguousarray(tensors[name], dtype=np.float32)
            if export_gguf.is_quantized(name):
                q, scale = export_gguf.quantize_rows(w)
                items.append((name, export_gguf.GGML_I8, [w.shape[1], w.shape[0]], q.tobytes()))
                items.append((name + ".scale", export_gguf.GGML_F32, [w.shape[0]], scale.astype("<f4").tobytes()))
            else:
                items.append((name, export_gguf.GGML_F32, [w.shape[0]], w.astype("<f4").tobytes()))
    return items


def main():
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--base-hash", required=True, help="lmc's hash of the base file (lmc models --inspect)")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--tune-layers", default="4,5")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=100)
    args = ap.parse_args(argv[:split])
    eval_files = argv[split + 1 :]
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    device = args.device

    meta, weights = export_gguf.load_float_weights(args.base)
    cfg = config_from_gguf(meta)
    layers = [int(x) for x in args.tune_layers.split(",")] if args.tune_layers != "all" else list(range(cfg.n_layers))
    tokenizer = Tokenizer.from_file(args.tokenizer)
    train = encode_all(tokenizer, read_xz(os.path.join(args.data, args.domain + "-train.bin.xz")))
    val = encode_all(tokenizer, read_xz(os.path.join(args.data, args.domain + "-val.bin.xz")))
    log("%s: train %d tokens, val %d tokens, tuning layers %s" % (args.domain, len(train), len(val), layers))

    model = ByteLlama(cfg).to(device)
    load_exported(model, weights)
    tuned = ["layers.%d." % i for i in layers]
    params = []
    for name, p in model.named_parameters():
        p.requires_grad = any(name.startswith(t) for t in tuned)
        if p.requires_grad:
            params.append(p)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    batches = TokenBatches(train, cfg.context, args.batch, device, args.seed)
    vwin = val_windows(val, cfg.context, 1 << 21)

    def autocast():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)

    def evaluate():
        model.eval()
        v = mean_loss(model, vwin, device, autocast)
        model.train()
        return v

    base_val = evaluate()
    best = dict(loss=base_val, state=copy.deepcopy(model.state_dict()), step=0)
    history = [dict(step=0, val_loss=base_val)]
    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.warmup, args.lr, 0.05)
        x, y = batches.next()
        with autocast():
            loss = F.cross_entropy(model(x).reshape(-1, cfg.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            v = evaluate()
            history.append(dict(step=step + 1, train_loss=loss.item(), val_loss=v))
            log(json.dumps(history[-1]))
            if v < best["loss"]:
                best.update(loss=v, state=copy.deepcopy(model.state_dict()), step=step + 1)
    model.load_state_dict(best["state"])
    tensors = model.export_tensors()
    name = "text-en-" + args.domain
    path = os.path.join(args.out, name + ".gguf")
    export_gguf.write_gguf(path, overlay_metadata(meta, cfg, name, args.base_hash), overlay_items(tensors, layers))
    report = dict(domain=args.domain, layers=layers, train_tokens=int(len(train)), val_tokens=int(len(val)),
                  steps=args.steps, best_step=best["step"], base_val=base_val, best_val=best["loss"],
                  seconds=round(time.time() - t0, 1), history=history, args=vars(args),
                  gguf_bytes=os.path.getsize(path), gguf_sha256=export_gguf.sha256_file(path),
                  device=torch.cuda.get_device_name())
    if eval_files:
        base_int8 = ByteLlama(cfg).to(device)
        load_exported(base_int8, export_gguf.dequantized(weights, embed_int8=True))
        tuned_int8 = ByteLlama(cfg).to(device)
        merged = dict(weights)
        merged.update({k: v for k, v in tensors.items() if any(k.startswith("blk.%d." % i) for i in layers)})
        load_exported(tuned_int8, export_gguf.dequantized(merged, embed_int8=True))
        for m in (base_int8, tuned_int8):
            m.set_quant(True)
            m.eval()
        with torch.autocast(device_type="cuda", enabled=False):
            report["eval"] = score_files(dict(base=base_int8, variant=tuned_int8), tokenizer, eval_files,
                                         meta["lmc.block_size"], cfg.vocab, device, cfg.context,
                                         meta["lmc.window_stride"])
    with open(os.path.join(args.out, "report-%s.json" % args.domain), "w") as f:
        json.dump(report, f, indent=1)
    log("done", json.dumps({k: report[k] for k in ("base_val", "best_val", "best_step", "gguf_bytes")}))


if __name__ == "__main__":
    main()
