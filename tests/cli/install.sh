#!/bin/bash
# `cmake --install` ships the binary, a shared library with a SONAME, lmc.h,
# a pkg-config file, the models and the man page; a program built against
# the installed library links and runs.
source "$(dirname "$0")/helpers.bash" "$@"
BUILD=$(dirname "$LMC")
[ -f "$BUILD/CMakeCache.txt" ] || { echo "SKIP: $BUILD is not a CMake build folder"; exit 77; }
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null || fail "cmake --install failed"
P=$WORK/prefix
expect_file "$P/bin/lmc" "install"
expect_file "$P/include/lmc.h" "install"
lib=$(ls "$P"/lib*/liblmc.so.0.* 2>/dev/null | head -n 1)
[ -n "$lib" ] || fail "no versioned shared library installed"
objdump -p "$lib" | grep -q 'SONAME *liblmc.so.0' || fail "shared library lacks SONAME liblmc.so.0"
pc=$(ls "$P"/lib*/pkgconfig/lmc.pc 2>/dev/null | head -n 1)
[ -n "$pc" ] || fail "no pkg-config file"
expect_file "$P/share/man/man1/lmc.1" "install"
ls "$P"/share/lmc/models/*.gguf >/dev/null 2>&1 || fail "no models installed"
# Only the public header is needed to use the library.
cat >use.c <<'C'
#include <lmc.h>
#include <stdio.h>
int main(void) {
    lmc_options o;
    lmc_options_init(&o);
    lmc_status s;
    lmc_encoder *e = lmc_encoder_create(&o, &s);
    printf("%s %s\n", lmc_version_string(), lmc_status_string(s));
    lmc_encoder_free(e);
    return e ? 0 : 1;
}
C
libdir=$(dirname "$lib")
cc -Wall -Wextra -o use use.c $(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs lmc) \
    || fail "cannot build against the installed library"
LD_LIBRARY_PATH=$libdir ./use >use.out || fail "program linked to liblmc failed"
grep -q success use.out || fail "unexpected output: $(cat use.out)"
finish
