#!/usr/bin/env python3
"""Trains text-en, the default text model: a Llama over text_tokenizer.py's BPE tokens
(train/README.md has the recipe and results).

Reads --tokens/{train,val}.u16 and vocab.json (text_tokenizer.py), trains with
bf16 autocast, AdamW and a cosine schedule, keeps the weights of the best
validation loss, fine-tunes with fake quantisation if int8 loses more than
--qat-threshold, scores the evaluation texts the way the engine codes them
(blocks of --block-size bytes, sliding windows over their tokens), and writes
the weights, the GGUF file and a JSON report to --out.

    python3 train/train_text.py --tokens train/out-text --out train/out-text/run-a --dim 256 --layers 6
"""
import argparse
import copy
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_gguf  # noqa: E402
from model import ByteLlama, Config  # noqa: E402
from train_bytes import load_exported, lr_at, make_optimizer, mean_loss, train_phase  # noqa: E402

LN2 = math.log(2.0)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


class TokenBatches:
    """Random windows of context+1 tokens from one id stream, drawn on the device."""

    def __init__(self, ids, context, batch, device, seed):
        self.data = torch.from_numpy(ids.astype(np.int32)).to(device)
        self.context, self.batch = context, batch
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        self.span = torch.arange(context + 1, device=device)

    def next(self):
        starts = torch.randint(0, len(self.data) - self.context - 1, (self.batch,),
                               device=self.data.device, generator=self.gen)
        w = self.data[starts[:, None] + self.span].long()
        return w[:, :-1], w[:, 1:]


def val_windows(ids, context, max_tokens):
    n = min(len(ids), max_tokens) // (context + 1)
    return torch.from_numpy(ids[: n * (context + 1)].astype(np.int64).reshape(n, context + 1))


@torch.no_grad()
def coded_bits(model, ids, vocab, device, context, stride, batch=64):
    """Bits to code one block's token ids as the engine does: the first token
    under a uniform distribution (no BOS), then windows of `context` positions
    advancing by `stride`, each predicting only tokens not predicted before."""
    total = math.log2(vocab) if len(ids) else 0.0
    ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    rows = []

    def flush():
        nonlocal total
        if rows:
            x = torch.stack([r[0] for r in rows]).to(device)
            y = torch.stack([r[1] for r in rows]).to(device)
            m = torch.stack([r[2] for r in rows]).to(device)
            logp = torch.log_softmax(model(x).float(), dim=-1)
            total += (-logp.gather(-1, y[..., None])[..., 0] * m).sum().item() / LN2
            rows.clear()

    start, n = 0, len(ids)
    while n > 1:
        seg = ids[start : start + context + 1]
        x = torch.zeros(context, dtype=torch.long)
        y = torch.zeros(context, dtype=torch.long)
        m = torch.zeros(context)
        x[: min(len(seg), context)] = seg[:context]
        y[: len(seg) - 1] = seg[1:]
        m[(0 if start == 0 else context - stride) : len(seg) - 1] = 1.0
        rows.append((x, y, m))
        if len(rows) == batch:
            flush()
        if start + context + 1 >= n:
            break
        start += stride
    flush()
    return total


def score_files(models, tokenizer, files, block_size, vocab, device, context, stride):
    """{file: {bytes, <model>_bpb}} with blocks of block_size bytes tokenized alone."""
    scores = {}
    for path in files:
        data = open(path, "rb").read()
        blocks = [data[i : i + block_size] for i in range(0, len(data), block_size)]
        block_ids = [tokenizer.encode(b.decode("utf-8", errors="replace"), add_special_tokens=False).ids
                     for b in blocks]
        row = dict(bytes=len(data), tokens=sum(len(b) for b in block_ids))
        for tag, model in models.items():
            bits = sum(coded_bits(model, ids, vocab, device, context, stride) for ids in block_ids)
            row[tag + "_bpb"] = bits / len(data)
        scores[os.path.basename(path)] = row
        log("%-36s %s" % (os.path.basename(path), json.dumps(row)))
    total = sum(r["bytes"] for r in scores.values())
    summary = {k: sum(r[k] * r["bytes"] for r in scores.values()) / total
               for k in next(iter(scores.values())) if k.endswith("_bpb")}
    return dict(files=scores, total=summary)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", required=True, help="text_tokenizer.py's output folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="text-en")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=0, help="0: as many as --time-budget allows")
    ap.add_argument("--time-budget", type=float, default=480.0, help="seconds for the main phase")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--qat-frac", type=float, default=0.1)
    ap.add_argument("--qat-lr", type=float, default=3e-4)
    ap.add_argument("--qat-threshold", type=float, default=0.005)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--val-tokens", type=int, default=2 << 20)
    ap.add_argument("--eval-dir", default=None, help="files scored at the end (never trained on)")
    ap.add_argument("--block-size", type=int, default=262144)
    ap.add_argument("--stride", type=int, default=384)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = args.device
    train = np.fromfile(os.path.join(args.tokens, "train.u16"), dtype="<u2")
    val = np.fromfile(os.path.join(args.tokens, "val.u16"), dtype="<u2")
    vocab_spec = json.load(open(os.path.join(args.tokens, "vocab.json")))
    vocab = len(vocab_spec["tokens"])
    log("train %d tokens, val %d tokens, vocabulary %d" % (len(train), len(val), vocab))

    cfg = Config(vocab=vocab, dim=args.dim, n_layers=args.layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
                 hidden_dim=args.hidden, context=args.context)
    model = ByteLlama(cfg).to(device)
    model.embed_quant = True
    log("config %s, %d parameters" % (json.dumps(cfg.to_dict()), model.n_params()))

    device_type = "cuda" if device.startswith("cuda") else "cpu"

    def autocast():
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)

    def fp32():
        return torch.autocast(device_type=device_type, enabled=False)

    fast = model if args.no_compile else torch.compile(model)
    batches = TokenBatches(train, cfg.context, args.batch, device, args.seed)
    vwin = val_windows(val, cfg.context, args.val_tokens)
    opt = make_optimizer(model, args.lr, args.wd, device)
    best = dict(loss=float("inf"), state=None, step=0)

    def step_fn(x, y):
        with autocast():
            logits = fast(x)
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.detach()

    def eval_fn():
        model.eval()
        v = mean_loss(model, vwin, device, autocast)
        model.train()
        if v < best["loss"]:
            best.update(loss=v, state=copy.deepcopy(model.state_dict()))
        return v

    history = []
    t_start = time.time()
    main_steps, main_s = train_phase(
        model, step_fn, opt, batches, args.steps or 10 ** 9,
        lambda s, tot: lr_at(s, tot, args.warmup, args.lr, args.min_lr_frac),
        eval_fn, args.eval_every, history, "main", time_budget=None if args.steps else args.time_budget)
    model.load_state_dict(best["state"])

    def exact_losses():
        model.eval()
        model.set_quant(False)
        fp = mean_loss(model, vwin, device, fp32)
        model.set_quant(True)
        q = mean_loss(model, vwin, device, fp32)
        model.set_quant(False)
        model.train()
        return fp, q

    fp_loss, q_loss = exact_losses()
    tokens_seen = main_steps * args.batch * cfg.context
    report = dict(config=cfg.to_dict(), params=model.n_params(), args=vars(args), train_tokens=len(train),
                  val_tokens=len(val), main_steps=main_steps, main_seconds=round(main_s, 1),
                  tokens_seen=tokens_seen, epochs=tokens_seen / len(train),
                  device=torch.cuda.get_device_name() if device_type == "cuda" else "cpu", torch=torch.__version__, history=history,
                  best_val=best["loss"],
                  after_main=dict(val_fp32=fp_loss, val_int8=q_loss, gap=q_loss / fp_loss - 1))
    log("after main: val fp32 %.4f nats/token, fake-int8 %.4f (%.2f%%)"
        % (fp_loss, q_loss, 100 * (q_loss / fp_loss - 1)))

    if args.qat_frac > 0 and q_loss / fp_loss - 1 > args.qat_threshold:
        main_state = copy.deepcopy(model.state_dict())
        model.set_quant(True)
        qat_steps = max(100, int(main_steps * args.qat_frac) // 100 * 100)
        opt = make_optimizer(model, args.qat_lr, args.wd, device)

        def qat_eval():
            model.eval()
            v = mean_loss(model, vwin, device, fp32)
            model.train()
            return v

        train_phase(model, step_fn, opt, batches, qat_steps, lambda s, tot: lr_at(s, tot, 0, args.qat_lr, 0.0),
                    qat_eval, args.eval_every, history, "qat")
        model.set_quant(False)
        fp2, q2 = exact_losses()
        report["qat"] = dict(steps=qat_steps, val_fp32=fp2, val_int8=q2, kept=q2 < q_loss)
        log("after QAT: val fp32 %.4f, fake-int8 %.4f" % (fp2, q2))
        if q2 >= q_loss:
            model.load_state_dict(main_state)

    final = model.export_tensors()
    np.savez(os.path.join(args.out, "weights_fp32.npz"), **final)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg.to_dict(), f, indent=1, sort_keys=True)
    gguf_path = os.path.join(args.out, args.name + ".gguf")
    export_gguf.write_model(gguf_path, cfg.to_dict(), final, context_window=cfg.context, window_stride=args.stride,
                            block_size=args.block_size, name=args.name, tokenizer=vocab_spec, kind="text",
                            embed_int8=True)
    report["gguf_sha256"] = export_gguf.sha256_file(gguf_path)
    report["gguf_bytes"] = os.path.getsize(gguf_path)
    log("wrote %s (%d bytes)" % (gguf_path, report["gguf_bytes"]))

    if args.eval_dir:
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(os.path.join(args.tokens, "tokenizer.json"))
        int8_model = ByteLlama(cfg).to(device)
        load_exported(int8_model, export_gguf.dequantized(final, embed_int8=True))
        int8_model.set_quant(True)
        model.eval(), int8_model.eval()
        files = sorted(glob.glob(os.path.join(args.eval_dir, "*")))
        with fp32():
            report["corpus"] = score_files(dict(fp32=model, int8=int8_model), tokenizer, files, args.block_size,
                                           vocab, device, cfg.context, args.stride)
        log("corpus total %s" % json.dumps(report["corpus"]["total"]))

    report["wall_seconds"] = round(time.time() - t_start, 1)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    log("done in %.1f s" % report["wall_seconds"])


if __name__ == "__main__":
    main()
