#!/usr/bin/env python3
"""Trains the bytes-v1 byte-level Llama (train/README.md has the recipe and results).

Reads train/data/{train,val}.bin.xz from prepare_bytes.py, trains with bf16
autocast, AdamW and a cosine schedule, optionally fine-tunes with fake int8
quantisation, scores the evaluation texts the way the engine codes them
(blocks, sliding windows), and writes the weights, a GGUF file and a JSON
report to --out.

    python3 train/train_bytes.py --out train/out            # GPU machine
    python3 train/train_bytes.py --tiny --device cpu ...     # smoke test
"""
import argparse
import json
import lzma
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ByteLlama, Config  # noqa: E402
import export_gguf  # noqa: E402

LN2 = math.log(2.0)


def log(*a):
    print(*a, flush=True)


def read_xz(path):
    if shutil.which("xz"):
        return subprocess.run(["xz", "-dc", "-T0", path], check=True, stdout=subprocess.PIPE).stdout
    return lzma.open(path).read()


# ----------------------------------------------------------------- data
class Batches:
    """Random windows of context+1 bytes from one stream, drawn on the device."""

    def __init__(self, data, context, batch, device, seed):
        self.data = torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy()).to(device)
        self.context, self.batch = context, batch
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        self.span = torch.arange(context + 1, device=device)

    def next(self):
        starts = torch.randint(0, len(self.data) - self.context - 1, (self.batch,),
                               device=self.data.device, generator=self.gen)
        w = self.data[starts[:, None] + self.span].long()
        return w[:, :-1], w[:, 1:]


def val_windows(data, context, max_bytes):
    """Non-overlapping windows over the first max_bytes of the validation stream."""
    n = min(len(data), max_bytes) // (context + 1)
    a = np.frombuffer(data[: n * (context + 1)], dtype=np.uint8).reshape(n, context + 1)
    return torch.from_numpy(a.astype(np.int64))


@torch.no_grad()
def mean_loss(model, windows, device, autocast, batch=256):
    """Mean cross-entropy in nats over every position of the windows."""
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i : i + batch].to(device)
        with autocast():
            logits = model(w[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1),
                               reduction="sum")
        total += loss.item()
        count += w[:, 1:].numel()
    return total / max(count, 1)


@torch.no_grad()
def coded_bits(model, data, device, context, stride, block_size, batch=128):
    """Bits to code data as the engine does: independent blocks, the first byte
    of a block at 8 bits, then windows of `context` positions (restarting at 0)
    that advance by `stride`, each predicting only bytes not predicted before."""
    total = 0.0
    inputs, targets, masks = [], [], []

    def flush():
        nonlocal total
        if not inputs:
            return
        x = torch.stack(inputs).to(device)
        y = torch.stack(targets).to(device)
        m = torch.stack(masks).to(device)
        logp = torch.log_softmax(model(x).float(), dim=-1)
        nll = -logp.gather(-1, y[..., None])[..., 0]
        total += (nll * m).sum().item() / LN2
        inputs.clear(), targets.clear(), masks.clear()

    for b0 in range(0, len(data), block_size):
        block = torch.from_numpy(np.frombuffer(data[b0 : b0 + block_size], dtype=np.uint8).astype(np.int64))
        n = len(block)
        total += 8.0
        start = 0
        while True:
            seg = block[start : start + context + 1]
            x = torch.zeros(context, dtype=torch.long)
            y = torch.zeros(context, dtype=torch.long)
            m = torch.zeros(context)
            x[: min(len(seg), context)] = seg[:context]
            y[: len(seg) - 1] = seg[1:]
            first = 0 if start == 0 else context - stride
            m[first : len(seg) - 1] = 1.0
            inputs.append(x), targets.append(y), masks.append(m)
            if len(inputs) == batch:
                flush()
            if start + context + 1 >= n:
                break
            start += stride
    flush()
    return total


# ----------------------------------------------------------------- training
def lr_at(step, total, warmup, peak, floor_frac):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor_frac + (1 - floor_frac) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model, lr, wd, device):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "tok_embd" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "tok_embd" not in n)]
    kwargs = dict(lr=lr, betas=(0.9, 0.95), eps=1e-8)
    if device.startswith("cuda"):
        kwargs["fused"] = True
    return torch.optim.AdamW([dict(params=decay, weight_decay=wd), dict(params=other, weight_decay=0.0)],
                             **kwargs)


def train_phase(model, step_fn, opt, batches, total_steps, schedule, eval_fn, eval_every, history, tag,
                time_budget=None, calibrate_at=40):
    """Runs total_steps steps (or, with time_budget, as many as fit, fixed after
    calibrate_at steps and rounded down to a multiple of 100)."""
    t0 = time.time()
    step = 0
    t_cal = None
    while step < total_steps:
        if time_budget and step == 10:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            t_cal = time.time()
        if time_budget and step == calibrate_at:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            rate = (calibrate_at - 10) / (time.time() - t_cal)
            total_steps = max(200, int(rate * (time_budget - (time.time() - t0))) // 100 * 100 + calibrate_at)
            total_steps = total_steps // 100 * 100
            log("[%s] %.1f steps/s -> %d steps in all" % (tag, rate, total_steps))
        lr = schedule(step, total_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batches.next()
        loss = step_fn(x, y)
        step += 1
        if step % eval_every == 0 or step == total_steps:
            val = eval_fn()
            row = dict(phase=tag, step=step, lr=lr, train_loss=loss.item(), val_loss=val,
                       val_bpb=val / LN2, seconds=round(time.time() - t0, 1))
            history.append(row)
            log(json.dumps(row))
    return total_steps, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=320)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=0, help="0: as many as --time-budget allows")
    ap.add_argument("--time-budget", type=float, default=300.0, help="seconds for the main phase")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--qat-frac", type=float, default=0.1, help="QAT steps as a share of the main steps")
    ap.add_argument("--qat-lr", type=float, default=5e-4)
    ap.add_argument("--qat-threshold", type=float, default=0.005,
                    help="run QAT when fake-int8 loses more than this share of the fp32 val loss")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--val-bytes", type=int, default=4 << 20)
    ap.add_argument("--eval-dir", default=None, help="folder of *.xz texts scored at the end")
    ap.add_argument("--eval-bytes", type=int, default=0, help="score only this prefix of each file (0: all)")
    ap.add_argument("--block-size", type=int, default=262144)
    ap.add_argument("--stride", type=int, default=256)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="smoke test: tiny model and data")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = args.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    train = read_xz(os.path.join(args.data, "train.bin.xz"))
    val = read_xz(os.path.join(args.data, "val.bin.xz"))
    if args.tiny:
        train, val = train[: 4 << 20], val[: 1 << 20]
    log("train %d bytes, val %d bytes" % (len(train), len(val)))

    cfg = Config(dim=args.dim, n_layers=args.layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
                 hidden_dim=args.hidden, context=args.context)
    model = ByteLlama(cfg).to(device)
    log("config %s, %d parameters" % (json.dumps(cfg.to_dict()), model.n_params()))

    use_cuda = device.startswith("cuda")
    amp_dtype = torch.bfloat16

    def autocast():
        return torch.autocast(device_type="cuda" if use_cuda else "cpu", dtype=amp_dtype)

    def fp32():
        return torch.autocast(device_type="cuda" if use_cuda else "cpu", enabled=False)

    fast = model
    if not args.no_compile and hasattr(torch, "compile"):
        fast = torch.compile(model)
        try:  # compile now, on a throw-away batch; fall back to eager if it fails
            probe = torch.zeros(args.batch, cfg.context, dtype=torch.long, device=device)
            with autocast():
                fast(probe).float().mean().backward()
            model.zero_grad(set_to_none=True)
        except Exception as e:  # noqa: BLE001 (any compiler failure)
            log("torch.compile failed (%s); running eagerly" % e)
            fast = model
            model.zero_grad(set_to_none=True)

    batches = Batches(train, cfg.context, args.batch, device, args.seed)
    vwin = val_windows(val, cfg.context, args.val_bytes)
    opt = make_optimizer(model, args.lr, args.wd, device)

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
        return v

    history = []
    t_start = time.time()
    main_steps, main_s = train_phase(
        model, step_fn, opt, batches, args.steps or 10 ** 9,
        lambda s, tot: lr_at(s, tot, args.warmup, args.lr, args.min_lr_frac),
        eval_fn, args.eval_every, history, "main", time_budget=None if args.steps else args.time_budget)

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
    report = dict(config=cfg.to_dict(), params=model.n_params(), args=vars(args),
                  train_bytes=len(train), val_bytes=len(val), main_steps=main_steps,
                  main_seconds=round(main_s, 1), tokens_seen=main_steps * args.batch * cfg.context,
                  device=torch.cuda.get_device_name() if use_cuda else "cpu",
                  torch=torch.__version__, history=history,
                  after_main=dict(val_fp32=fp_loss, val_int8=q_loss, gap=q_loss / fp_loss - 1))
    log("after main: val fp32 %.4f nats, fake-int8 %.4f (%.2f%%)" % (fp_loss, q_loss, 100 * (q_loss / fp_loss - 1)))
    np.savez(os.path.join(args.out, "weights_fp32_main.npz"), **model.export_tensors())

    if args.qat_frac > 0 and q_loss / fp_loss - 1 > args.qat_threshold:
        model.set_quant(True)
        qat_steps = max(100, int(main_steps * args.qat_frac) // 100 * 100)
        qopt = make_optimizer(model, args.qat_lr, args.wd, device)
        opt = qopt  # step_fn reads `opt`

        def qat_eval():
            model.eval()
            v = mean_loss(model, vwin, device, fp32)
            model.train()
            return v

        _, qat_s = train_phase(model, step_fn, qopt, batches, qat_steps,
                               lambda s, tot: lr_at(s, tot, 0, args.qat_lr, 0.0),
                               qat_eval, args.eval_every, history, "qat")
        model.set_quant(False)
        fp2, q2 = exact_losses()
        report["qat"] = dict(steps=qat_steps, seconds=round(qat_s, 1), val_fp32=fp2, val_int8=q2)
        log("after QAT: val fp32 %.4f, fake-int8 %.4f" % (fp2, q2))
        if q2 > q_loss:  # keep the better int8 model
            log("QAT did not help; keeping the main-phase weights")
            w = np.load(os.path.join(args.out, "weights_fp32_main.npz"))
            load_exported(model, w)
            report["qat"]["kept"] = False
        else:
            report["qat"]["kept"] = True

    final = model.export_tensors()
    np.savez(os.path.join(args.out, "weights_fp32.npz"), **final)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg.to_dict(), f, indent=1, sort_keys=True)
    gguf_path = os.path.join(args.out, "bytes-v1.gguf")
    export_gguf.write_model(gguf_path, cfg.to_dict(), final, context_window=cfg.context,
                            window_stride=args.stride, block_size=args.block_size)
    report["gguf_sha256"] = export_gguf.sha256_file(gguf_path)
    report["gguf_bytes"] = os.path.getsize(gguf_path)

    # Scores: fp32 model, and the exported int8 weights with int8 activations.
    if args.eval_dir:
        files = sorted(f for f in os.listdir(args.eval_dir) if f.endswith(".xz"))
        texts = {f[:-3]: read_xz(os.path.join(args.eval_dir, f)) for f in files}
        if args.eval_bytes:
            texts = {k: v[: args.eval_bytes] for k, v in texts.items()}
        dq = export_gguf.dequantized(final)
        int8_model = ByteLlama(cfg).to(device)
        load_exported(int8_model, dq)
        int8_model.set_quant(True)
        model.eval(), int8_model.eval()
        scores = {}
        with fp32():
            for name, data in texts.items():
                row = dict(bytes=len(data))
                row["fp32_bpb"] = coded_bits(model, data, device, cfg.context, args.stride, args.block_size) / len(data)
                row["int8_bpb"] = coded_bits(int8_model, data, device, cfg.context, args.stride,
                                             args.block_size) / len(data)
                for s in (128, 384):
                    if s >= cfg.context:
                        continue
                    row["int8_bpb_stride%d" % s] = coded_bits(int8_model, data, device, cfg.context, s,
                                                              args.block_size) / len(data)
                scores[name] = row
                log("%-36s %s" % (name, json.dumps(row)))
        total = sum(r["bytes"] for r in scores.values())
        summary = {k: sum(r[k] * r["bytes"] for r in scores.values()) / total
                   for k in next(iter(scores.values())) if k.endswith("bpb") or "_bpb_" in k}
        report["corpus"] = dict(files=scores, total=summary)
        log("corpus total %s" % json.dumps(summary))

    report["wall_seconds"] = round(time.time() - t_start, 1)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    log("done in %.1f s" % report["wall_seconds"])


def load_exported(model, tensors):
    """Loads GGUF-named float tensors back into the model."""
    inv = dict(attn_norm="attn_norm", attn_q="wq", attn_k="wk", attn_v="wv", attn_output="wo",
               ffn_norm="ffn_norm", ffn_gate="w_gate", ffn_up="w_up", ffn_down="w_down")
    sd = {}
    for name in tensors.keys() if hasattr(tensors, "keys") else tensors.files:
        t = torch.from_numpy(np.asarray(tensors[name], dtype=np.float32))
        if name == "token_embd.weight":
            sd["tok_embd.weight"] = t
        elif name == "output_norm.weight":
            sd["out_norm.weight"] = t
        elif name == "output.weight":
            sd["output.weight"] = t
        else:
            _, i, kind, _ = name.split(".")
            sd["layers.%s.%s.weight" % (i, inv[kind])] = t
    model.load_state_dict(sd, strict=True)


if __name__ == "__main__":
    main()
