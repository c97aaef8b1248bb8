#!/usr/bin/env python3
"""Adds or replaces metadata in a GGUF file without touching its tensors: the
description, licence and training-data summary that `lmc models` shows, or a
coding default such as lmc.block_size. KEY=VALUE sets a string, KEY:u32=N an
unsigned 32-bit value.

The key/value section is rewritten; tensor infos and data are copied as they
are (tensor offsets are relative to the data section, which is re-aligned).

    python3 train/annotate_gguf.py IN.gguf OUT.gguf KEY=VALUE... KEY:u32=N...
"""
import struct
import sys

ALIGNMENT = 32
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
T_UINT32, T_STRING, T_ARRAY = 4, 8, 9


def skip_value(buf, pos, vtype):
    if vtype == T_STRING:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if vtype == T_ARRAY:
        etype, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if etype in SCALAR_SIZES:
            return pos + SCALAR_SIZES[etype] * count
        for _ in range(count):
            pos = skip_value(buf, pos, etype)
        return pos
    return pos + SCALAR_SIZES[vtype]


def string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def encoded_kv(spec):
    """(key, bytes of the whole key/value entry) from KEY=VALUE or KEY:u32=N."""
    key, value = spec.split("=", 1)
    if key.endswith(":u32"):
        key = key[: -len(":u32")]
        return key, string(key) + struct.pack("<II", T_UINT32, int(value))
    return key, string(key) + struct.pack("<I", T_STRING) + string(value)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    new = [encoded_kv(spec) for spec in sys.argv[3:]]
    buf = open(src, "rb").read()
    assert buf[:4] == b"GGUF"
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    pos = 24
    kvs = []
    for _ in range(n_kv):
        start = pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        key = buf[pos + 8 : pos + 8 + n].decode("utf-8")
        pos += 8 + n
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos = skip_value(buf, pos + 4, vtype)
        kvs.append((key, buf[start:pos]))
    infos_start = pos
    for _ in range(n_tensors):
        (n,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + n
        (nd,) = struct.unpack_from("<I", buf, pos)
        pos += 4 + 8 * nd + 4 + 8
    infos = buf[infos_start:pos]
    data = buf[pos + (ALIGNMENT - pos % ALIGNMENT) % ALIGNMENT :]
    replaced = {key for key, _ in new}
    kept = [raw for key, raw in kvs if key not in replaced]
    added = [raw for _, raw in new]
    head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kept) + len(added)) + b"".join(kept + added) + infos
    head += b"\0" * ((ALIGNMENT - len(head) % ALIGNMENT) % ALIGNMENT)
    with open(dst, "wb") as f:
        f.write(head + data)


if __name__ == "__main__":
    main()
