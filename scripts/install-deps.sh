#!/usr/bin/env bash
# Installs the Debian 12 packages lmc needs, when run as root and they are missing.
#   scripts/install-deps.sh build   # to build and run lmc
#   scripts/install-deps.sh test    # additionally, to run the test suite
# Why each package:
#   cmake, gcc, make, pkg-config  the build
#   libxxhash-dev                 block checksums and model hashes (xxHash XXH3)
#   libpcre2-dev                  Unicode-aware tokenizer pre-splitting (PCRE2 with UCP)
#   libpng-dev                    PNG images in the media readers (src/format/png_io.c)
#   libcmocka-dev                 unit tests
#   clang, libclang-rt-14-dev     fuzz targets (libFuzzer) and the gcc/clang determinism check
#   gzip bzip2 xz-utils zstd      reference codecs for `lmc bench` and bench/
set -euo pipefail
build_packages=(cmake gcc make pkg-config libxxhash-dev libpcre2-dev libpng-dev)
test_packages=("${build_packages[@]}" libcmocka-dev clang libclang-rt-14-dev xxd)
case "${1:-build}" in
  build) wanted=("${build_packages[@]}") ;;
  test) wanted=("${test_packages[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
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
