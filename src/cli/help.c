/*
 * --help, `lmc help COMMAND` and --version. docs/lmc.1 says the same at length.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char general_help[] =
    "Usage: lmc COMMAND [OPTION]... [FILE]...\n"
    "Lossless compression by large models.\n"
    "\n"
    "Commands:\n"
    "  compress    FILE -> FILE.lmc (the input is kept unless --rm)\n"
    "  decompress  FILE.lmc -> FILE\n"
    "  test        decode archives fully and check them; write nothing\n"
    "  info        show an archive's kind, model, sizes, ratio and blocks\n"
    "  models      list the models found, or describe one (--inspect MODEL)\n"
    "  tokenize    print the token ids of standard input under a model (-m)\n"
    "  bench       measure lmc against other lossless codecs (general and media)\n"
    "  help [CMD]  this text, or a command's options\n"
    "\n"
    "Instead of the command word: -z compress, -d decompress, -t test, -l info.\n"
    "With no FILE, or FILE '-', standard input goes to standard output.\n"
    "\n"
    "Common options:\n"
    "  -m, --model MODEL   model name or .gguf path\n"
    "  -o, --output OUT    output file (one input only; '-' for stdout)\n"
    "  -c, --stdout        write to standard output\n"
    "  -f, --force         overwrite outputs; allow terminals for compressed data\n"
    "  -k, --keep          keep the input (the default)\n"
    "      --rm            remove the input after success (compress: after verifying)\n"
    "  -T, --threads N     worker threads (0: all cores, the default)\n"
    "      --memlimit SIZE refuse work needing more memory (K, M, G suffixes)\n"
    "      --device DEV    where neural models run: cpu, cuda (GPU 0) or cuda:N;\n"
    "                      the archive is the same (default: $LMC_DEVICE, else cpu)\n"
    "  -v, --verbose       per-file statistics\n"
    "  -q, --quiet         errors only\n"
    "  -h, --help          this text\n"
    "  -V, --version       the version\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error. See lmc(1).\n";

static const char compress_help[] =
    "Usage: lmc compress [OPTION]... [FILE]...\n"
    "Writes FILE.lmc for each FILE; the input is kept unless --rm.\n"
    "\n"
    "  -m, --model MODEL   model name or .gguf path (default: by kind; for text,\n"
    "                      text-en or the domain variant that codes its start best)\n"
    "      --kind KIND     auto, bytes, text, image, audio or video (default: auto)\n"
    "      --fast          classical context model, no neural network\n"
    "      --no-mix        the neural model alone, without the adaptive model\n"
    "      --block-size SIZE  bytes per block (default 4M; --no-mix: the model's)\n"
    "      --window N      model tokens of context per block (0: the model's)\n"
    "      --stride N      tokens the full window slides by (0: the model's)\n"
    "      --lanes N       text and bytes: parts of a block that decode in lockstep,\n"
    "                      1 to 4 (default 4): 1 codes smallest, 4 decodes fastest\n"
    "      --mpi           code the blocks on every rank of an MPI job (run under\n"
    "                      mpirun or srun; MPI builds only); the archive is the same\n"
    "      --max-error D   images, audio, video: lossy, every decoded sample within\n"
    "                      D of the original (0: lossless, the default; up to 65535);\n"
    "                      other input is refused; palette images are coded losslessly\n"
    "  -o, --output OUT    output file (one input only; '-' for stdout)\n"
    "  -c, --stdout        write to standard output\n"
    "  -f, --force         overwrite outputs, write to a terminal, recompress .lmc files\n"
    "  -k, --keep          keep the input (the default)\n"
    "      --rm            remove the input once its archive decodes back to it\n"
    "                      (with --max-error: once it decodes with every checksum)\n"
    "  -T, --threads N     worker threads (0: all cores)\n"
    "      --memlimit SIZE memory limit (K, M, G suffixes)\n"
    "      --device DEV    where neural models run: cpu, cuda (GPU 0) or cuda:N;\n"
    "                      the archive is the same (default: $LMC_DEVICE, else cpu)\n"
    "      --devices N,N   with --mpi: GPU numbers, one per rank in turn\n"
    "  -v, --verbose       per-file statistics\n"
    "  -q, --quiet         errors only\n";

static const char decompress_help[] =
    "Usage: lmc decompress [OPTION]... [FILE.lmc]...\n"
    "Writes FILE for each FILE.lmc; the archive is kept unless --rm.\n"
    "\n"
    "  -m, --model MODEL   try this model file first (default: search LMC_MODELS\n"
    "                      and the installed models for the archive's model)\n"
    "      --mpi           decode the blocks on every rank of an MPI job (run under\n"
    "                      mpirun or srun; MPI builds only)\n"
    "  -o, --output OUT    output file (one input only; '-' for stdout)\n"
    "  -c, --stdout        write to standard output\n"
    "  -f, --force         overwrite outputs, read from a terminal\n"
    "  -k, --keep          keep the archive (the default)\n"
    "      --rm            remove the archive after a verified decode\n"
    "  -T, --threads N     worker threads (0: all cores)\n"
    "      --memlimit SIZE memory limit (K, M, G suffixes)\n"
    "      --device DEV    where neural models run: cpu, cuda (GPU 0) or cuda:N;\n"
    "                      the archive is the same (default: $LMC_DEVICE, else cpu)\n"
    "      --devices N,N   with --mpi: GPU numbers, one per rank in turn\n"
    "  -v, --verbose       per-file statistics\n"
    "  -q, --quiet         errors only\n";

static const char test_help[] =
    "Usage: lmc test [OPTION]... [FILE.lmc]...\n"
    "Decodes each archive fully and checks its checksums; writes nothing.\n"
    "\n"
    "  -m, --model MODEL   try this model file first\n"
    "  -f, --force         read from a terminal\n"
    "  -T, --threads N     worker threads (0: all cores)\n"
    "      --memlimit SIZE memory limit (K, M, G suffixes)\n"
    "      --device DEV    where neural models run: cpu, cuda (GPU 0) or cuda:N;\n"
    "                      the archive is the same (default: $LMC_DEVICE, else cpu)\n"
    "  -v, --verbose       report each archive that passes\n"
    "  -q, --quiet         errors only\n";

static const char info_help[] =
    "Usage: lmc info [OPTION]... [FILE.lmc]...\n"
    "Shows each archive's kind, model name and hash, sizes, ratio, blocks (and\n"
    "how many are stored raw), block size, context window, format and numerics\n"
    "versions, checking its structure and checksums without decoding. A lossy\n"
    "archive (--max-error) also shows its bound and the PSNR measured when it\n"
    "was made.\n"
    "\n"
    "  -f, --force         read from a terminal\n";

static const char models_help[] =
    "Usage: lmc models [-v|-q]\n"
    "       lmc models --inspect MODEL\n"
    "Lists the models found in the folders of LMC_MODELS (colon-separated) and\n"
    "the installed model folder: name, kind, size, hash and description.\n"
    "\n"
    "      --inspect MODEL describe one model (a name or a .gguf path): file size,\n"
    "                      hash, metadata, tokenizer, tensor counts and types\n"
    "  -v, --verbose       also each model's path\n"
    "  -q, --quiet         names only\n";

static const char tokenize_help[] =
    "Usage: lmc tokenize -m MODEL\n"
    "Prints the token ids of all of standard input on one line, separated by\n"
    "spaces, without BOS/EOS, as llama.cpp's tokenizer gives them.\n"
    "\n"
    "  -m, --model MODEL   model name or .gguf path (a vocabulary-only file will do)\n";

static const char bench_help[] =
    "Usage: lmc bench [OPTION]... FILE|DIR...\n"
    "Compresses each file (the files directly in each DIR, by name) with lmc and\n"
    "with gzip -9, bzip2 -9, xz -9e, zstd --ultra -22 and zpaq -m5, verifying every\n"
    "round trip; prints sizes, ratios, bits per byte and speeds (KB/s, 1000 bytes\n"
    "a second) per file and in total. Exit status 1 if any lmc round trip failed.\n"
    "\n"
    "Media files (by detected kind, and read by lmc's media parser) are also\n"
    "coded with their kind's lossless codecs, whose round trips are checked on\n"
    "the samples (the same pixels or PCM samples, whatever the file's bytes):\n"
    "  image (PNG, PNM)  optipng -o7; cwebp -lossless -z 9 -exact (dwebp);\n"
    "                    cjxl -d 0 -e 9 (djxl)\n"
    "  audio (WAV)       flac -8 --no-padding; wavpack -hh -x6 (wvunpack)\n"
    "  video (Y4M)       ffmpeg FFV1 -level 3 -g 1 -slicecrc 1 in Matroska;\n"
    "                    x264 --qp 0 --preset veryslow (decoded by ffmpeg);\n"
    "                    x265 lossless -preset veryslow (ffmpeg's libx265)\n"
    "with a BPSP column (compressed bits per subpixel: per sample of each\n"
    "channel, plane and frame) for images and video, and PCM RATIO (raw sample\n"
    "bytes over compressed size) for audio. External codecs run on one thread;\n"
    "those not installed show as missing (scripts/install-deps.sh bench, as\n"
    "root on Debian 12, installs them all).\n"
    "\n"
    "  -m, --model MODEL   lmc's model (default: by kind)\n"
    "      --fast          lmc's classical context model, no neural network\n"
    "      --kind KIND     the data's kind (default: detected per file)\n"
    "      --block-size SIZE, --window N, --stride N  as for compress\n"
    "  -T, --threads N     lmc's worker threads (0: all cores)\n"
    "      --memlimit SIZE lmc's memory limit\n"
    "      --csv FILE      also write one CSV row per file and codec\n"
    "      --svg FILE      also draw the results as an SVG bar chart (compression\n"
    "                      ratios; bits per subpixel or PCM ratios for media only)\n"
    "      --no-others     measure lmc only\n"
    "      --lossy         rate-distortion instead: lmc --max-error 1, 2, 4, 8 against\n"
    "                      JPEG-LS NEAR 1, 2, 4, 8 (lmc_jpegls, built with CharLS) and\n"
    "                      cjxl -d (images), x264 and x265 -preset veryslow by CRF\n"
    "                      (video); bits per sample, PSNR and largest error of each,\n"
    "                      decoded and compared; --svg FILE draws one plot per kind\n"
    "                      (FILE-image.svg ... when there are several kinds)\n";

static const char help_help[] =
    "Usage: lmc help [COMMAND]\n"
    "Shows the general help, or COMMAND's options.\n";

static const struct {
    const char *topic;
    const char *text;
} topics[] = {
    {"compress", compress_help}, {"decompress", decompress_help}, {"test", test_help},
    {"info", info_help},         {"models", models_help},         {"tokenize", tokenize_help},
    {"bench", bench_help},       {"help", help_help},
};

int cli_print_help(const char *topic) {
    if (topic == NULL) {
        fputs(general_help, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        if (strcmp(topic, topics[i].topic) == 0) {
            fputs(topics[i].text, stdout);
            return 0;
        }
    }
    return -1;
}

void cli_print_version(void) {
    printf("lmc %s\n", lmc_version_string());
}
