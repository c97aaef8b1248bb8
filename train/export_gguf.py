#!/usr/bin/env python3
"""Writes a byte-level Llama as a GGUF v3 file in lmc's native int8 layout.

Our own minimal writer (no gguf package): little-endian header, key/values,
tensor infos, then the tensor data, every tensor at a 32-byte aligned offset.
Matrices are stored as ggml type I8 (24) with ne = [cols, rows] plus an F32
tensor "<name>.scale" (ne = [rows]) such that weight = q * scale, where
scale = max|row| / 127 and q = round-half-away-from-zero(w / scale) clamped to
[-127, 127], all in float32. Norms and token_embd stay F32. The same weights
always give the same bytes: key and tensor order are fixed and nothing
depends on time or platform.

    python3 train/export_gguf.py WEIGHTS.npz CONFIG.json OUT.gguf [--check]
"""
import argparse
import hashlib
import json
import struct
import sys

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32
# GGUF metadata value types
T_INT32, T_UINT32, T_FLOAT32, T_STRING, T_ARRAY = 5, 4, 6, 8, 9
# ggml tensor types
GGML_F32, GGML_I8 = 0, 24

QUANTIZED = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def quantize_rows(w):
    """int8 rows and float32 scales: w ~= q * scale[:, None]."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    scale = (np.abs(w).max(axis=1) / np.float32(127.0)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
    r = w / safe[:, None]
    q = np.sign(r) * np.floor(np.abs(r) + np.float32(0.5))
    q = np.clip(q, -127, 127).astype(np.int8)
    return q, scale


def is_quantized(name, embed_int8=False):
    if name == "token_embd.weight":
        return embed_int8
    return name == "output.weight" or any(".%s." % k in name for k in QUANTIZED)


def dequantized(tensors, embed_int8=False):
    """The float weights the int8 engine actually uses (for scoring in PyTorch)."""
    out = {}
    for name, w in tensors.items():
        if is_quantized(name, embed_int8):
            q, s = quantize_rows(w)
            out[name] = q.astype(np.float32) * s[:, None]
        else:
            out[name] = np.asarray(w, dtype=np.float32)
    return out


def tensor_order(n_layers):
    names = ["token_embd.weight"]
    for i in range(n_layers):
        names += ["blk.%d.%s.weight" % (i, k) for k in
                  ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                   "ffn_gate", "ffn_up", "ffn_down")]
    return names + ["output_norm.weight", "output.weight"]


def _string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key, vtype, value):
    out = _string(key) + struct.pack("<I", vtype)
    if vtype == T_UINT32:
        return out + struct.pack("<I", value)
    if vtype == T_FLOAT32:
        return out + struct.pack("<f", value)
    if vtype == T_STRING:
        return out + _string(value)
    if vtype == T_ARRAY:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        if etype == T_STRING:
            return out + b"".join(_string(v) for v in items)
        if etype == T_INT32:
            return out + struct.pack("<%di" % len(items), *items)
    raise ValueError(vtype)


def tokenizer_metadata(tokenizer):
    """A byte-level BPE vocabulary ("gpt2" model) as text_tokenizer.py writes it;
    None gives lmc's own byte tokenizer (token id = byte)."""
    if tokenizer is None:
        return [("tokenizer.ggml.model", T_STRING, "lmc-bytes")]
    return [
        ("tokenizer.ggml.model", T_STRING, "gpt2"),
        ("tokenizer.ggml.pre", T_STRING, tokenizer["pre"]),
        ("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokenizer["tokens"])),
        ("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, [1] * len(tokenizer["tokens"]))),
        ("tokenizer.ggml.merges", T_ARRAY, (T_STRING, tokenizer["merges"])),
    ]


def metadata(cfg, context_window, window_stride, block_size, name, tokenizer=None, kind="bytes"):
    head_dim = cfg["dim"] // cfg["n_heads"]
    return [
        ("general.architecture", T_STRING, "llama"),
        ("general.name", T_STRING, name),
        ("general.alignment", T_UINT32, ALIGNMENT),
        ("llama.vocab_size", T_UINT32, cfg["vocab"]),
        ("llama.context_length", T_UINT32, cfg["context"]),
        ("llama.embedding_length", T_UINT32, cfg["dim"]),
        ("llama.block_count", T_UINT32, cfg["n_layers"]),
        ("llama.feed_forward_length", T_UINT32, cfg["hidden_dim"]),
        ("llama.attention.head_count", T_UINT32, cfg["n_heads"]),
        ("llama.attention.head_count_kv", T_UINT32, cfg["n_kv_heads"]),
        ("llama.rope.freq_base", T_FLOAT32, float(cfg["rope_base"])),
        ("llama.rope.dimension_count", T_UINT32, head_dim),
        ("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, float(cfg["norm_eps"])),
    ] + tokenizer_metadata(tokenizer) + [
        ("lmc.default_kind", T_STRING, kind),
        ("lmc.block_size", T_UINT32, block_size),
        ("lmc.context_window", T_UINT32, context_window),
        ("lmc.window_stride", T_UINT32, window_stride),
    ]


def gguf_tensors(cfg, tensors, embed_int8=False):
    """(name, ggml type, ne, bytes) in file order; matrices become I8 + scale."""
    out = []
    for name in tensor_order(cfg["n_layers"]):
        w = np.ascontiguousarray(tensors[name], dtype=np.float32)
        if is_quantized(name, embed_int8):
            q, scale = quantize_rows(w)
            out.append((name, GGML_I8, [w.shape[1], w.shape[0]], q.tobytes()))
            out.append((name + ".scale", GGML_F32, [w.shape[0]], scale.astype("<f4").tobytes()))
        else:
            ne = [w.shape[1], w.shape[0]] if w.ndim == 2 else [w.shape[0]]
            out.append((name, GGML_F32, ne, w.astype("<f4").tobytes()))
    return out


def _pad(n):
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def write_model(path, cfg, tensors, context_window, window_stride, block_size, name="bytes-v1", tokenizer=None,
                kind="bytes", embed_int8=False):
    kvs = metadata(cfg, context_window, window_stride, block_size, name, tokenizer, kind)
    write_gguf(path, kvs, gguf_tensors(cfg, tensors, embed_int8))


def write_gguf(path, kvs, items):
    """kvs: (key, type, value); items: (name, ggml type, ne, bytes), both in file order."""
    head = bytearray(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(items), len(kvs)))
    for key, vtype, value in kvs:
        head += _kv(key, vtype, value)
    offset = 0
    for tname, ttype, ne, data in items:
        head += _string(tname) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        head += struct.pack("<IQ", ttype, offset)
        offset += len(data) + _pad(len(data))
    head += b"\0" * _pad(len(head))
    with open(path, "wb") as f:
        f.write(head)
        for _, _, _, data in items:
            f.write(data + b"\0" * _pad(len(data)))


# ----------------------------------------------------------------- reading back
def read_gguf(path):
    """Parses a GGUF v3 file as written above: (metadata dict, {name: (type, ne, bytes)})."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal pos
        (n,) = take("Q")
        s = buf[pos : pos + n].decode("utf-8")
        pos += n
        return s

    if buf[:4] != GGUF_MAGIC:
        raise ValueError("not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = take("IQQ")
    meta = {}
    for _ in range(n_kv):
        key = string()
        (vtype,) = take("I")
        scalar = {T_INT32: lambda: take("i")[0], T_UINT32: lambda: take("I")[0], T_FLOAT32: lambda: take("f")[0],
                  T_STRING: string}
        if vtype == T_ARRAY:
            etype, count = take("IQ")
            meta[key] = [scalar[etype]() for _ in range(count)]
        else:
            meta[key] = scalar[vtype]()
    infos = []
    for _ in range(n_tensors):
        name = string()
        (nd,) = take("I")
        ne = list(take("%dQ" % nd))
        ttype, off = take("IQ")
        infos.append((name, ttype, ne, off))
    data_start = pos + _pad(pos)
    out = {}
    for name, ttype, ne, off in infos:
        n = int(np.prod(ne)) * (4 if ttype == GGML_F32 else 1)
        out[name] = (ttype, ne, buf[data_start + off : data_start + off + n])
    meta["_version"] = version
    return meta, out


def load_float_weights(path):
    """Float32 weights of a GGUF written by write_model (matrices dequantised)."""
    meta, ts = read_gguf(path)
    out = {}
    for name, (ttype, ne, data) in ts.items():
        if name.endswith(".scale"):
            continue
        shape = ne[::-1]
        if ttype == GGML_I8:
            q = np.frombuffer(data, dtype=np.int8).reshape(shape).astype(np.float32)
            s = np.frombuffer(ts[name + ".scale"][2], dtype="<f4")
            out[name] = q * s[:, None]
        else:
            out[name] = np.frombuffer(data, dtype="<f4").reshape(shape).copy()
    return meta, out


def sha256_file(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", help=".npz of float32 tensors under GGUF names")
    ap.add_argument("config", help="config.json written by train_bytes.py")
    ap.add_argument("out")
    ap.add_argument("--context-window", type=int, default=None)
    ap.add_argument("--window-stride", type=int, default=256)
    ap.add_argument("--block-size", type=int, default=262144)
    ap.add_argument("--check", action="store_true", help="read the file back and compare")
    args = ap.parse_args()
    cfg = json.load(open(args.config))
    tensors = dict(np.load(args.weights))
    write_model(args.out, cfg, tensors, args.context_window or cfg["context"], args.window_stride,
                args.block_size)
    print(args.out, sha256_file(args.out))
    if args.check:
        meta, back = load_float_weights(args.out)
        ref = dequantized(tensors)
        worst = max(float(np.abs(back[k] - ref[k]).max()) for k in ref)
        print("metadata keys %d, tensors %d, max |difference| %g" % (len(meta) - 1, len(back), worst))
        if worst != 0.0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
