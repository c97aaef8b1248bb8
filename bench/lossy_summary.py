#!/usr/bin/python3
"""Tables of bench/lossy.md from `lmc bench --lossy --csv` (bench/lossy.sh).

  bench/lossy_summary.py bench/results/lossy.csv

Images: lmc --max-error D against JPEG-LS NEAR = D, per file and in total.
Video: lmc at D = 1 against x265 at the same PSNR, x265's size interpolated
between its two CRF points around that PSNR (log size linear in PSNR).
Audio: lmc's points. Sizes are whole files (lmc: the archive).
"""
import csv
import math
import os
import sys
from collections import defaultdict

rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["ok"] == "1"]
points = defaultdict(dict)  # (file, codec) -> setting -> row
for r in rows:
    points[(r["file"], r["codec"])][r["setting"]] = r
files = sorted({(r["kind"], r["file"]) for r in rows})
LMC, JLS, X265 = "lmc --max-error", "JPEG-LS NEAR (CharLS)", "x265 veryslow -crf"


def name(path):
    return os.path.basename(path)


print("## Images: lmc against JPEG-LS near-lossless at the same D\n")
print("| image | " + " | ".join(f"D={d} lmc | D={d} JPEG-LS | ratio" for d in ("1", "2", "4", "8")) + " |")
print("|---|" + "---:|---:|---:|" * 4)
totals = defaultdict(lambda: [0, 0, 0])
for kind, f in files:
    if kind != "image":
        continue
    cells = []
    for d in ("1", "2", "4", "8"):
        a, b = points[(f, LMC)].get(d), points[(f, JLS)].get(d)
        if not a or not b:
            cells.append("- | - | -")
            continue
        bits_a = 8 * int(a["bytes"]) / int(a["samples"])
        bits_b = 8 * int(b["bytes"]) / int(b["samples"])
        totals[d][0] += int(a["bytes"])
        totals[d][1] += int(b["bytes"])
        totals[d][2] += int(a["samples"])
        cells.append(f"{bits_a:.3f} | {bits_b:.3f} | {int(a['bytes']) / int(b['bytes']):.3f}")
    print(f"| {name(f)} | " + " | ".join(cells) + " |")
cells = []
for d in ("1", "2", "4", "8"):
    a, b, n = totals[d]
    cells.append(f"**{8 * a / n:.3f}** | **{8 * b / n:.3f}** | **{a / b:.3f}**" if n else "- | - | -")
print("| **total** | " + " | ".join(cells) + " |")
print("\n(bits per sample; ratio = lmc bytes / JPEG-LS bytes)\n")


def interpolate(rates, psnr):
    """x265's bytes at `psnr` from (psnr, bytes) points, log-linear between neighbours."""
    rates = sorted(rates)
    for (p0, b0), (p1, b1) in zip(rates, rates[1:]):
        if p0 <= psnr <= p1:
            t = (psnr - p0) / (p1 - p0)
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return None


print("## Video: lmc at D=1 against x265 -preset veryslow at the same PSNR\n")
print("| clip | lmc D=1 bytes | PSNR dB | x265 bytes at that PSNR | lmc / x265 | x265 CRF points around it |")
print("|---|---:|---:|---:|---:|---|")
for kind, f in files:
    if kind != "video" or "1" not in points[(f, LMC)]:
        continue
    a = points[(f, LMC)]["1"]
    psnr = float(a["psnr_db"])
    rates = [(float(r["psnr_db"]), int(r["bytes"])) for r in points[(f, X265)].values()]
    x = interpolate(rates, psnr)
    around = sorted(rates, key=lambda pr: abs(pr[0] - psnr))[:2]
    text = ", ".join(f"{b} B at {p:.2f} dB" for p, b in sorted(around))
    ratio = f"{int(a['bytes']) / x:.3f}" if x else "-"
    xs = f"{x:,.0f}" if x else "-"
    print(f"| {name(f)} | {int(a['bytes']):,} | {psnr:.2f} | {xs} | {ratio} | {text} |")

print("\n## Audio: lmc's points\n")
print("| recording | " + " | ".join(f"D={d} bits/sample | PSNR" for d in ("1", "2", "4", "8")) + " |")
print("|---|" + "---:|---:|" * 4)
for kind, f in files:
    if kind != "audio":
        continue
    cells = []
    for d in ("1", "2", "4", "8"):
        a = points[(f, LMC)].get(d)
        cells.append(f"{8 * int(a['bytes']) / int(a['samples']):.3f} | {float(a['psnr_db']):.2f}" if a else "- | -")
    print(f"| {name(f)} | " + " | ".join(cells) + " |")

bad = [r for r in rows if r["codec"] == LMC and int(r["max_error"]) > int(r["setting"])]
lmc_rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["codec"] == LMC]
print(f"\nBound: {len(lmc_rows)} lmc points, {sum(r['ok'] == '1' for r in lmc_rows)} decoded and compared, "
      f"{len(bad)} with an error above D.")
