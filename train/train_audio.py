#!/usr/bin/env python3
"""Fits the audio sample coder's model, models/audio-pcm.gguf, on shared/train/audio.

The coder (src/model/audio*.c) adapts to every recording as it codes it; what
is fitted here is where it starts and how fast it moves:
  1. its settings (the lmc.audio.* keys: least-squares order, forgetting
     factor and error weighting, NLMS lengths and steps, the residual coder's
     averaging rates, map limits and mixer rate), by coordinate descent over
     small grids, minimising the bytes the C coder writes for a search subset
     of the training split;
  2. the starting probability of every context of the residual coder
     (tensor audio.coder.prior) from how often each context saw 0 and 1 over
     the whole training split, and the mixers' starting weights
     (audio.coder.mixer) as the average of their final weights per recording;
  3. how much the coder trusts those probabilities (coder.prior_count).
Then it scores the validation split (never used above) against flac -8 --no-padding.

Every size comes from the C coder itself (tools/lmc_audio_eval), so what is
minimised is exactly what lmc writes. Nothing is random: file lists are
sorted and the search visits the grid in a fixed order.

    /usr/bin/python3 train/train_audio.py [--tool build/lmc_audio_eval] [--out models/audio-pcm.gguf]

Needs flac (to decode the training FLACs) and numpy. About 40 minutes on one core.
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_gguf as gg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GGML_I16, GGML_I32 = 25, 26

# The starting point of the search: the coder's built-in defaults (audio_params.c),
# which are the result of an earlier run of this search (with a smaller grid).
DEFAULTS = {
    "segment_frames": 1 << 20,
    "ls.own": 24, "ls.cross": 16, "ls.lookahead": 4, "ls.interval": 4,
    "ls.lambda": 0.995, "ls.regularisation": 0.001, "ls.error_decay": 0.3, "ls.error_offset": 0.5,
    "stage0.taps": 512, "stage1.taps": 64, "stage2.taps": 8,
    "stage0.mu": 0.2, "stage1.mu": 0.06, "stage2.mu": 0.06,
    "stage.power_decay": 0.8, "stage.rate": 0.005,
    "coder.fast_shift": 3, "coder.slow_shift": 5, "coder.map_limit": 255, "coder.mixer_rate": 24,
    "coder.prior_count": 0,
}
# Version 2 (models/audio-pcm-v2.gguf, --second): the version-1 model's settings, priors and
# mixer weights, plus a second predictor ("p2." keys, the rest as the first's) whose prediction
# is mixed with the first's. Its search starts from a slowly forgetting least-squares stage over
# a longer window (what the first, fast one misses on stationary music) and visits SECOND_GRID.
SECOND_START = {
    "predictors": 2, "mix.rate": 0.01,
    "p2.ls.own": 32, "p2.ls.cross": 32, "p2.ls.lambda": 0.9998, "p2.ls.interval": 16,
}
# The slow stage is solved every 16 samples (it changes slowly; every 4 would double the time).
# The first predictor's forgetting is searched again: beside a slow one it may forget faster.
SECOND_GRID = [
    ("ls.lambda", [0.985, 0.99, 0.993, 0.995]),
    ("p2.ls.lambda", [0.9995, 0.9998, 0.9999]),
    ("p2.ls.own", [24, 32]),
    ("p2.ls.cross", [24, 32]),
    ("mix.rate", [0.005, 0.01, 0.02]),
]
INTEGER_KEYS = {k for k, v in list(DEFAULTS.items()) + list(SECOND_START.items()) if isinstance(v, int)}

# Values tried for each setting, in this order. Orders and lengths are capped
# so that coding stays well above 100,000 samples per second; the solve
# interval is not searched (every 4 samples costs 0.02% against every 2 and
# runs 45% faster).
GRID = [
    ("ls.lambda", [0.99, 0.993, 0.995, 0.997, 0.998]),
    ("ls.own", [16, 20, 24, 32]),
    ("ls.cross", [8, 12, 16, 24]),
    ("ls.lookahead", [0, 2, 4, 8]),
    ("ls.error_decay", [0.15, 0.3, 0.6]),
    ("ls.error_offset", [0.25, 0.5, 1.0, 2.0]),
    ("stage0.taps", [256, 512, 1024]),
    ("stage0.mu", [0.1, 0.2, 0.4]),
    ("stage1.taps", [32, 64, 128]),
    ("stage1.mu", [0.03, 0.06, 0.12]),
    ("stage2.taps", [4, 8, 16]),
    ("stage2.mu", [0.03, 0.06, 0.12]),
    ("stage.power_decay", [0.5, 0.8, 1.2]),
    ("stage.rate", [0.002, 0.005, 0.01]),
    ("coder.fast_shift", [2, 3, 4]),
    ("coder.slow_shift", [4, 5, 6]),
    ("coder.map_limit", [127, 255, 1023]),
    ("coder.mixer_rate", [12, 24, 48]),
]
PRIOR_COUNTS = [0, 4, 16, 64]
PRIOR_SMOOTHING = 0.4  # added to both counts of a context


def log(*args):
    print(*args, flush=True)


# ----------------------------------------------------------------- data
def decode_training_audio(data_dir, wav_dir):
    """Every FLAC under data_dir decoded to wav_dir/<group>_<name>.wav; sorted list of (group, path)."""
    wav_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for flac in sorted(data_dir.rglob("*.flac")):
        rel = flac.relative_to(data_dir)
        wav = wav_dir / ("_".join(rel.parts)[: -len(".flac")] + ".wav")
        if not wav.exists():
            subprocess.run(["flac", "-d", "-s", "-f", "-o", str(wav), str(flac)], check=True)
        out.append(("/".join(rel.parts[:2]), wav))
    return out


def split(files):
    """Validation: every 5th file in sorted order (indices 4, 9, ...); training: the rest."""
    train = [f for i, f in enumerate(files) if i % 5 != 4]
    val = [f for i, f in enumerate(files) if i % 5 == 4]
    return train, val


def channels(path):
    with wave.open(str(path)) as w:
        return w.getnchannels()


def search_subset(train):
    """What the settings are fitted on (about 8.8 million samples, so that one evaluation
    takes seconds): the lossless stereo music of the training split and every 3rd lossless
    mono music file; every 2nd file of the other speech groups and every 8th LibriSpeech
    file. The Ogg-Vorbis-decoded music (band-limited, codec artefacts) is left out, being
    unlike any lossless recording."""
    music = [p for g, p in train if g.startswith("music/") and g != "music/librosa_ogg"]
    stereo = [p for p in music if channels(p) > 1]
    mono = [p for p in music if channels(p) == 1]
    libri = [p for g, p in train if g == "speech/librispeech"]
    other_speech = [p for g, p in train if g.startswith("speech/") and g != "speech/librispeech"]
    return stereo + mono[::3] + other_speech[::2] + libri[::8]


# ----------------------------------------------------------------- models
def metadata(params, name, description):
    kvs = [
        ("general.architecture", gg.T_STRING, "lmc-audio"),
        ("general.name", gg.T_STRING, name),
        ("general.description", gg.T_STRING, description),
        ("lmc.default_kind", gg.T_STRING, "audio"),
        ("lmc.audio.version", gg.T_UINT32, 2 if params.get("predictors", 1) > 1 else 1),
    ]
    for key in sorted(params):
        value = params[key]
        if key in INTEGER_KEYS:
            kvs.append(("lmc.audio." + key, gg.T_UINT32, int(value)))
        else:
            kvs.append(("lmc.audio." + key, gg.T_FLOAT32, float(value)))
    return kvs


def write_model(path, params, prior=None, mixer=None, name="audio-search", description="search candidate"):
    items = []
    if prior is not None:
        items.append(("audio.coder.prior", GGML_I16, [len(prior)], prior.astype("<i2").tobytes()))
    if mixer is not None:
        items.append(("audio.coder.mixer", GGML_I32, [mixer.shape[1], mixer.shape[0]], mixer.astype("<i4").tobytes()))
    gg.write_gguf(str(path), metadata(params, name, description), items)


def read_model(path):
    """(settings, prior, mixer) of an audio model written by write_model."""
    buf = Path(path).read_bytes()
    pos = 4
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, pos)
    pos += 20

    def string():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + n
        return buf[pos - n:pos].decode("utf-8")

    params = {}
    for _ in range(n_kv):
        key = string()
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if vtype == gg.T_STRING:
            string()
            continue
        (value,) = struct.unpack_from("<I" if vtype == gg.T_UINT32 else "<f", buf, pos)
        pos += 4
        if key.startswith("lmc.audio.") and key != "lmc.audio.version":
            # float32 in the file: back to the decimal it was written from
            params[key[len("lmc.audio."):]] = value if vtype == gg.T_UINT32 else float("%.7g" % value)
    infos = []
    for _ in range(n_tensors):
        name = string()
        (nd,) = struct.unpack_from("<I", buf, pos)
        ne = struct.unpack_from("<%dQ" % nd, buf, pos + 4)
        ttype, off = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, ttype, ne, off))
    start = pos + gg._pad(pos)
    tensors = {}
    for name, ttype, ne, off in infos:
        dtype = "<i2" if ttype == GGML_I16 else "<i4"
        count = int(np.prod(ne))
        tensors[name] = np.frombuffer(buf, dtype, count, start + off).reshape(tuple(reversed(ne)))
    return params, tensors.get("audio.coder.prior"), tensors.get("audio.coder.mixer")


# ----------------------------------------------------------------- the C coder
BYTES_RE = re.compile(r"^(\S+)\s.*?\s(\d+) bytes\s")


def run_tool(tool, model, files, stats=None, decode=False):
    """Per-file payload bytes of the C coder ({file name: bytes})."""
    cmd = [str(tool), str(model)]
    if not decode:
        cmd.append("--encode-only")
    if stats:
        cmd += ["--stats", str(stats)]
    cmd += [str(f) for f in files]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    sizes = {}
    for line in res.stdout.splitlines():
        m = BYTES_RE.match(line)
        if m and not line.startswith("total:"):
            sizes[m.group(1)] = int(m.group(2))
    if len(sizes) != len(files):
        raise RuntimeError("lmc_audio_eval coded %d of %d files:\n%s" % (len(sizes), len(files), res.stderr))
    return sizes


class Searcher:
    def __init__(self, tool, files, work):
        self.tool, self.files, self.work = tool, files, work
        self.cache = {}

    def cost(self, params, prior=None, mixer=None):
        key = tuple(sorted(params.items())) + ((prior is not None),)
        if key not in self.cache:
            path = self.work / "candidate.gguf"
            write_model(path, params, prior, mixer)
            self.cache[key] = sum(run_tool(self.tool, path, self.files).values())
        return self.cache[key]

    def coordinate_descent(self, params, passes=2, grid=GRID, prior=None, mixer=None):
        best = self.cost(params, prior, mixer)
        log("start: %d bytes" % best)
        for p in range(passes):
            improved = False
            for key, values in grid:
                for v in values:
                    if v == params.get(key):
                        continue
                    trial = dict(params, **{key: v})
                    c = self.cost(trial, prior, mixer)
                    if c < best:
                        best, params, improved = c, trial, True
                        log("pass %d: %s = %s -> %d bytes" % (p + 1, key, v, best))
            if not improved:
                break
        return params, best


# ----------------------------------------------------------------- statistics -> priors
def read_stats(path):
    buf = Path(path).read_bytes()
    if buf[:8] != b"LMCAST01":
        raise ValueError("not an lmc_audio_eval statistics file")
    n_prior, n_decisions, n_inputs = struct.unpack_from("<III", buf, 8)
    pos = 20
    counts = np.frombuffer(buf, "<u8", 2 * n_prior, pos).reshape(n_prior, 2).astype(np.float64)
    pos += 16 * n_prior
    mixer_sum = np.frombuffer(buf, "<i8", n_decisions * n_inputs, pos).reshape(n_decisions, n_inputs)
    pos += 8 * n_decisions * n_inputs
    streams = np.frombuffer(buf, "<u8", n_decisions, pos).astype(np.float64)
    return counts, mixer_sum.astype(np.float64), streams


def priors_from_stats(counts, mixer_sum, streams, mixer_default=1 << 14):
    """Stretched probabilities (ln(p/(1-p)) * 256, as int16) of every context, 0 for unseen
    ones; the mixers' average final weights (16.16), the default for unused decisions."""
    n = counts.sum(axis=1)
    p = (counts[:, 1] + PRIOR_SMOOTHING) / (n + 2 * PRIOR_SMOOTHING)
    stretched = np.clip(np.round(np.log(p / (1 - p)) * 256), -2047, 2047)
    stretched[n == 0] = 0
    used = streams[:, None] > 0
    mixer = np.where(used, mixer_sum / np.maximum(streams[:, None], 1), mixer_default)
    mixer = np.clip(np.round(mixer), -(1 << 22), 1 << 22)
    return stretched.astype(np.int16), mixer.astype(np.int32), int((n > 0).sum())


def flac_bytes(path, work):
    """Size of `flac -8 --no-padding`'s file for path, as in shared/corpus/BASELINES.md (written to
    a file: flac seeks back to finish it)."""
    out = work / "reference.flac"
    subprocess.run(["flac", "-8", "--no-padding", "-s", "-f", "-o", str(out), str(path)], check=True)
    return out.stat().st_size


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "train" / "audio"))
    ap.add_argument("--tool", default=str(ROOT / "build" / "lmc_audio_eval"))
    ap.add_argument("--work", default=str(ROOT / "train" / "out" / "audio"))
    ap.add_argument("--wav", default=str(ROOT / "train" / "data" / "audio"))
    ap.add_argument("--out", default=str(ROOT / "models" / "audio-pcm.gguf"))
    ap.add_argument("--passes", type=int, default=2, help="coordinate-descent passes over the grid")
    ap.add_argument("--score", action="store_true", help="only score the model --out on the validation split")
    ap.add_argument("--second", action="store_true",
                    help="version 2: add a second predictor to the model --base, write --out (default "
                         "models/audio-pcm-v2.gguf)")
    ap.add_argument("--base", default=str(ROOT / "models" / "audio-pcm.gguf"))
    args = ap.parse_args()
    if args.second and args.out == ap.get_default("out"):
        args.out = str(ROOT / "models" / "audio-pcm-v2.gguf")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    files = decode_training_audio(Path(args.data), Path(args.wav))
    train, val = split(files)
    search = search_subset(train)
    log("%d files: %d training (%d in the search subset), %d validation" % (len(files), len(train), len(search),
                                                                          len(val)))
    if args.score:
        score(args.tool, Path(args.out), val, work, {}, "score.json")
        return
    if args.second:
        second_predictor(args, search, val, work)
        return

    # 1. Settings.
    searcher = Searcher(args.tool, search, work)
    params, search_cost = searcher.coordinate_descent(dict(DEFAULTS), args.passes)
    log("settings:", json.dumps(params, sort_keys=True))

    # 2. Priors from the whole training split, coded with those settings.
    plain = work / "plain.gguf"
    write_model(plain, params)
    stats = work / "stats.bin"
    run_tool(args.tool, plain, [p for _, p in train], stats=stats)
    prior, mixer, seen = priors_from_stats(*read_stats(stats))
    log("prior: %d of %d contexts seen in training" % (seen, len(prior)))

    # 3. Trust in the priors.
    best_count, best = None, None
    for count in PRIOR_COUNTS:
        c = searcher.cost(dict(params, **{"coder.prior_count": count}), prior, mixer)
        log("prior_count %d: %d bytes (settings alone: %d)" % (count, c, search_cost))
        if best is None or c < best:
            best_count, best = count, c
    params["coder.prior_count"] = best_count

    description = ("lmc audio sample coder: settings, residual-coder priors and mixer weights fitted on "
                   "shared/train/audio (train/train_audio.py)")
    write_model(args.out, params, prior, mixer, name="audio-pcm", description=description)
    log("wrote", args.out)

    # 4. Validation split.
    score(args.tool, Path(args.out), val, work,
          {"settings": params, "search_bytes": search_cost, "prior_contexts_seen": seen}, "report.json")


def second_predictor(args, search, val, work):
    """Version 2: the --base model with a second predictor, its settings searched (one pass over
    SECOND_GRID, the priors and mixer weights of --base kept: refitting them to the mixed
    predictions is worth less than 0.01%)."""
    params, prior, mixer = read_model(args.base)
    params.update(SECOND_START)
    searcher = Searcher(args.tool, search, work)
    params, search_cost = searcher.coordinate_descent(params, args.passes, SECOND_GRID, prior, mixer)
    log("settings:", json.dumps(params, sort_keys=True))
    description = ("lmc audio sample coder, version 2: %s plus a second, slowly forgetting predictor mixed "
                   "with the first, fitted on shared/train/audio (train/train_audio.py --second)" %
                   Path(args.base).name)
    write_model(args.out, params, prior, mixer, name="audio-pcm-v2", description=description)
    log("wrote", args.out)
    score(args.tool, Path(args.out), val, work, {"settings": params, "search_bytes": search_cost},
          "report-v2.json", reference=Path(args.base))


def score(tool, model, val, work, report, report_name, reference=None):
    """The model, the reference model (default: the built-in defaults) and flac -8 --no-padding on
    the validation split (work/report_name)."""
    val_files = [p for _, p in val]
    defaults = reference or work / "defaults.gguf"
    if not reference:
        write_model(defaults, DEFAULTS)
    trained = run_tool(tool, model, val_files, decode=True)
    untrained = run_tool(tool, defaults, val_files)
    flac = {p.name: flac_bytes(p, work) for p in val_files}
    report["validation"] = {n: {"lmc": trained[n], "defaults": untrained[n], "flac8": flac[n]} for n in trained}
    for group in ("speech", "music", ""):
        names = [p.name for g, p in val if g.startswith(group)]
        t, u, f = (sum(d[n] for n in names) for d in (trained, untrained, flac))
        log("validation %-6s %3d files: lmc %9d, defaults %9d, flac -8 --no-padding %9d: %.4f x flac (defaults %.4f x)" %
            (group or "all", len(names), t, u, f, f / t, f / u))
        report["validation_" + (group or "all")] = {"files": len(names), "lmc": t, "defaults": u, "flac8": f}
    (work / report_name).write_text(json.dumps(report, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
