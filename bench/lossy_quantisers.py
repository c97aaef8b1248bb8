#!/usr/bin/python3
"""Pre-quantisation against in-loop (JPEG-LS) quantisation, on one coder.

lmc quantises samples before its lossless coder (index floor((x + D) / (2D+1)),
reconstruction index * (2D+1)); JPEG-LS near-lossless quantises prediction
residuals inside its loop. To compare the two quantisers without comparing
coders, both run through CharLS: JPEG-LS NEAR = D on the image, and JPEG-LS
lossless on the image of indices. Prints bits per sample, PSNR and the
largest error of each (bench/lossy.md).

  bench/lossy_quantisers.py BUILD_DIR IMAGE.png...   (needs numpy, PIL, lmc_jpegls)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

jpegls = os.path.join(sys.argv[1], "lmc_jpegls")
scratch = tempfile.mkdtemp()


def path(name):
    return os.path.join(scratch, name)


def write_ppm(samples, maxval, name):
    h, w, _ = samples.shape
    with open(path(name), "wb") as f:
        f.write(b"P6\n%d %d\n%d\n" % (w, h, maxval))
        f.write(samples.astype(np.uint8).tobytes())


def read_ppm(name):
    data = open(path(name), "rb").read()
    head = data.split(b"\n", 3)
    w, h = map(int, head[1].split())
    return np.frombuffer(head[3], np.uint8).reshape(h, w, 3).astype(np.int64)


def psnr(a, b):
    mse = ((a - b) ** 2).mean()
    return 10 * np.log10(255 ** 2 / mse) if mse else float("inf")


def coded_bits(args):
    subprocess.run([jpegls] + args, check=True)
    return os.path.getsize(path("out.jls")) * 8


for image in sys.argv[2:]:
    x = np.array(Image.open(image).convert("RGB")).astype(np.int64)
    write_ppm(x, 255, "x.ppm")
    for d in (1, 2, 4, 8):
        step = 2 * d + 1
        bits = coded_bits(["-n", str(d), path("x.ppm"), path("out.jls")])
        subprocess.run([jpegls, "-d", path("out.jls"), path("y.ppm")], check=True)
        y = read_ppm("y.ppm")
        print(f"{os.path.basename(image)} D={d} in-loop (JPEG-LS NEAR): {bits / x.size:.4f} bits/sample, "
              f"PSNR {psnr(x, y):.2f}, max error {abs(x - y).max()}")
        k = (x + d) // step
        write_ppm(k, (255 + d) // step, "k.ppm")
        bits = coded_bits(["-n", "0", path("k.ppm"), path("out.jls")])
        r = np.minimum(k * step, 255)
        print(f"{os.path.basename(image)} D={d} pre-quantised (lmc's): {bits / x.size:.4f} bits/sample, "
              f"PSNR {psnr(x, r):.2f}, max error {abs(x - r).max()}")
for name in os.listdir(scratch):
    os.remove(path(name))
os.rmdir(scratch)
