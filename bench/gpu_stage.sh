#!/usr/bin/env bash
# Stages the GPU kit that bench/gpu_device.sh, gpu_corpus.sh and gpu_1b.sh
# run on the device machine, into .device/gpu (git-ignored; it travels with
# `carry`): lmc, lmc_bench_nn and test_cuda from a CUDA build of this tree
# (build-gpu), the Debian shared libraries they load that the device
# machine lacks, alice29.txt, and the corpus's text files plus one file of
# every other kind. ../shared does not travel to the device machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kit=$root/.device/gpu
corpus=$root/../shared/corpus
cmake -S "$root" -B "$root/build-gpu" -DCMAKE_BUILD_TYPE=Release -DLMC_CUDA=ON >/dev/null
cmake --build "$root/build-gpu" -j2 --target lmc lmc_bench_nn test_cuda >/dev/null
rm -rf "$kit" && mkdir -p "$kit/bin" "$kit/lib" "$kit/data" "$kit/corpus/text" "$kit/corpus/mixed"
cp "$root/build-gpu/lmc" "$root/build-gpu/lmc_bench_nn" "$root/build-gpu/tests/test_cuda" "$kit/bin/"
for lib in libpcre2-8.so.0 libpng16.so.16 libFLAC.so.12 libogg.so.0 libcmocka.so.0; do
  cp -L "/lib/x86_64-linux-gnu/$lib" "$kit/lib/"
done
cp "$corpus/text/alice29.txt" "$kit/data/"
cp "$corpus"/text/* "$kit/corpus/text/"
# One file of every other kind, and slices for the byte and legal models.
cp "$corpus/image/kodim03.png" "$corpus/audio/speech_ljspeech_LJ001-0008.wav" \
  "$corpus/video/foreman_cif_2f.y4m" "$kit/corpus/mixed/"
head -c 65536 /usr/bin/cmake >"$kit/corpus/mixed/cmake-64K.bin"
head -c 204800 "$corpus/text/legal_scotus_OT2009_opinions.txt" >"$kit/corpus/mixed/legal-200K.txt"
du -sh "$kit"
