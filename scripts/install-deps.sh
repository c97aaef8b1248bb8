#!/usr/bin/env bash
# Installs the Debian 12 packages lmc needs, when run as root and they are missing.
#   scripts/install-deps.sh build   # to build and run lmc
#   scripts/install-deps.sh test    # additionally, to run the test suite
#   scripts/install-deps.sh bench   # build, plus every codec `lmc bench` compares with
#   scripts/install-deps.sh mpi     # build, plus MPI for `cmake -DLMC_MPI=ON` (lmc --mpi)
# Why each package:
#   cmake, gcc, make, pkg-config  the build
#   libxxhash-dev                 block checksums and model hashes (xxHash XXH3)
#   libpcre2-dev                  Unicode-aware tokenizer pre-splitting (PCRE2 with UCP)
#   libpng-dev                    PNG images in the media readers (src/format/png_io.c)
#   libflac-dev                   FLAC audio in the media readers (src/format/flac_io.c): decoding and
#                                 sample-exact re-encoding with libFLAC
#   libcmocka-dev                 unit tests
#   clang, libclang-rt-14-dev     fuzz targets (libFuzzer) and the gcc/clang determinism check
#   libopenmpi-dev, openmpi-bin   lmc --mpi (blocks over the ranks of an MPI job) and its test,
#                                 tests/cli/mpi.sh (skipped without them)
#   gzip bzip2 xz-utils zstd      reference codecs for `lmc bench` and bench/
#   zpaq                          reference codec: `lmc bench`'s zpaq -m5 column
# bench group, the media codecs of `lmc bench` (none is needed by the test suite;
# tests that use one skip without it):
#   optipng                       PNG images: optipng -o7
#   webp                          WebP lossless: cwebp -lossless -z 9, decoded by dwebp
#   libjxl-tools                  JPEG XL lossless: cjxl -d 0 -e 9, decoded by djxl
#   flac                          audio: flac -8 (and flac -d)
#   wavpack                       audio: wavpack -hh -x6, decoded by wvunpack
#   ffmpeg                        video: FFV1 (-level 3) both ways, and decoding x264's H.264; libx264 and
#                                 libx265 by CRF for `lmc bench --lossy`
#   x264                          video: x264 --qp 0 --preset veryslow (lossless H.264)
#   libcharls-dev                 `lmc bench --lossy`: JPEG-LS near-lossless through tools/lmc_jpegls
#                                 (Debian ships CharLS without a command; built only when found)
set -euo pipefail
build_packages=(cmake gcc make pkg-config libxxhash-dev libpcre2-dev libpng-dev libflac-dev)
mpi_packages=(libopenmpi-dev openmpi-bin)
test_packages=("${build_packages[@]}" libcmocka-dev clang libclang-rt-14-dev xxd "${mpi_packages[@]}")
bench_packages=("${build_packages[@]}" gzip bzip2 xz-utils zstd zpaq
                optipng webp libjxl-tools flac wavpack ffmpeg x264 libcharls-dev)
case "${1:-build}" in
  build) wanted=("${build_packages[@]}") ;;
  test) wanted=("${test_packages[@]}") ;;
  bench) wanted=("${bench_packages[@]}") ;;
  mpi) wanted=("${build_packages[@]}" "${mpi_packages[@]}") ;;
  *) echo "usage: $0 build|test|bench|mpi" >&2; exit 2 ;;
esac
missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
