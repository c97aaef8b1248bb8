#!/usr/bin/env python3
"""Writes the small original files of the golden archives (one per data kind).

They are made here, from nothing but this script, so the repository holds no
third-party data. Run once when the golden set is created; the outputs are
committed and never regenerated (tests/golden/README.md).
"""
import math
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        yield state >> 33


# bytes: a little structured binary (records with counters and noise).
rng = lcg(1)
records = b"".join(struct.pack("<IHBB", i * 37, i % 1000, next(rng) % 256, 0xAB) for i in range(500))
write("bytes.bin", records)

# image: a 48x32 binary PPM with gradients and a disc.
w, h = 48, 32
pixels = bytearray()
for y in range(h):
    for x in range(w):
        inside = (x - 30) ** 2 + (y - 14) ** 2 < 81
        pixels += bytes((x * 5 % 256, y * 8 % 256, 200 if inside else (x + y) * 3 % 256))
write("image.ppm", b"P6\n%d %d\n255\n" % (w, h) + bytes(pixels))

# audio: 0.1 s of a 16-bit mono WAV, two tones.
rate, n = 16000, 1600
samples = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)
                                          + 3000 * math.sin(2 * math.pi * 1250 * i / rate))) for i in range(n))
fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
wav = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(samples)) + b"WAVE"
wav += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
write("audio.wav", wav)

# video: three 16x16 4:2:0 frames of a moving bar.
frames = b""
for t in range(3):
    luma = bytes(235 if (x + 3 * t) % 16 < 4 else 16 + x * 8 for y in range(16) for x in range(16))
    chroma = bytes([128]) * 64
    frames += b"FRAME\n" + luma + chroma + chroma
write("video.y4m", b"YUV4MPEG2 W16 H16 F25:1 Ip A1:1 C420jpeg\n" + frames)

# image-stripes: a 400x360 PGM (144,000 pixels), big enough to be coded in
# stripes; archives of it made before the even-stripe rule (2026-11-28) hold
# one stripe where later encoders write two, and must still decode.
w, h = 400, 360
rng = lcg(7)
gray = bytes((x + 2 * y + (40 if (x // 50 + y // 45) % 2 else 0) + next(rng) % 7) % 256
             for y in range(h) for x in range(w))
write("image-stripes.pgm", b"P5\n%d %d\n255\n" % (w, h) + gray)
