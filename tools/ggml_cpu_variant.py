#!/usr/bin/env python3
"""Which of Ollama's release CPU backends a machine runs, and the compiler flags that build it.

Ollama's release binaries carry one ggml CPU backend per x86 variant and load, at start, the one with
the highest score among those whose features the CPU has. The variants and their features are
ggml's `ggml_add_cpu_backend_variant` calls (ml/backend/ggml/ggml/src/CMakeLists.txt, reached through
Ollama's CMakeLists.txt, which sets GGML_CPU_ALL_VARIANTS on x86); the compiler flag of each feature is
ggml-cpu/CMakeLists.txt's non-MSVC branch; the score is ggml-cpu/arch/x86/cpu-feats.cpp's. Ollama
0.18.3 built from its Go module compiles ggml with only the cgo flags of
ml/backend/ggml/ggml/src/ggml-cpu/cpu.go (-O3, no -m flag): baseline x86-64 kernels, the `x64`
variant, slower than anything a user runs. tools/setup.sh adds the flags printed here to
CGO_CFLAGS/CGO_CXXFLAGS so the build's kernels are the ones the release loads on this machine.

Usage:
  ggml_cpu_variant.py [--cpuinfo PATH] [--variant NAME]
      prints "NAME FLAGS...": the variant the release would load (or NAME, checked against the CPU)
  ggml_cpu_variant.py --isa < ollama.log
      prints the variant whose features Ollama's "system" log line reports for its CPU backend
"""

from __future__ import annotations

import argparse
import re
import sys

# ggml feature -> the /proc/cpuinfo flags it needs and the gcc flags that enable it, in the order
# ggml-cpu/CMakeLists.txt appends them
FEATURES = {
    "SSE42": (("sse4_2",), ("-msse4.2",)),
    "F16C": (("f16c",), ("-mf16c",)),
    "FMA": (("fma",), ("-mfma",)),
    "BMI2": (("bmi2",), ("-mbmi2",)),
    "AVX": (("avx",), ("-mavx",)),
    "AVX2": (("avx2",), ("-mavx2",)),
    "AVX_VNNI": (("avx_vnni",), ("-mavxvnni",)),
    "AVX512": (("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
               ("-mavx512f", "-mavx512cd", "-mavx512vl", "-mavx512dq", "-mavx512bw")),
    "AVX512_VBMI": (("avx512vbmi",), ("-mavx512vbmi",)),
    "AVX512_VNNI": (("avx512_vnni",), ("-mavx512vnni",)),
    "AVX512_BF16": (("avx512_bf16",), ("-mavx512bf16",)),
    "AMX_INT8": (("amx_int8",), ("-mamx-int8",)),
}

# ggml_add_cpu_backend_variant(...) for x86, in ggml's order
VARIANTS = {
    "x64": (),
    "sse42": ("SSE42",),
    "sandybridge": ("SSE42", "AVX"),
    "haswell": ("SSE42", "AVX", "F16C", "AVX2", "BMI2", "FMA"),
    "skylakex": ("SSE42", "AVX", "F16C", "AVX2", "BMI2", "FMA", "AVX512"),
    "icelake": ("SSE42", "AVX", "F16C", "AVX2", "BMI2", "FMA", "AVX512", "AVX512_VBMI", "AVX512_VNNI"),
    "alderlake": ("SSE42", "AVX", "F16C", "AVX2", "BMI2", "FMA", "AVX_VNNI"),
}

# ggml_backend_cpu_x86_score's weight of each feature (the base score is 1)
SCORE = {"FMA": 1, "F16C": 1 << 1, "SSE42": 1 << 2, "BMI2": 1 << 3, "AVX": 1 << 4, "AVX2": 1 << 5,
         "AVX_VNNI": 1 << 6, "AVX512": 1 << 7, "AVX512_VBMI": 1 << 8, "AVX512_BF16": 1 << 9,
         "AVX512_VNNI": 1 << 10, "AMX_INT8": 1 << 11}


def cpu_flags(cpuinfo_text):
    """The flags every processor of /proc/cpuinfo has (a kernel built for one must run on all)."""
    sets = [set(line.split(":", 1)[1].split()) for line in cpuinfo_text.splitlines()
            if re.match(r"^flags\s*:", line)]
    return set.intersection(*sets) if sets else set()


def features(flags):
    """The ggml features the CPU flags provide."""
    return {name for name, (needed, _gcc) in FEATURES.items() if all(f in flags for f in needed)}


def score(variant):
    return 1 + sum(SCORE[f] for f in VARIANTS[variant])


def best_variant(flags):
    """The variant Ollama's loader picks: the highest score among those the CPU can run."""
    have = features(flags)
    usable = [name for name, needs in VARIANTS.items() if set(needs) <= have]
    return max(usable, key=score)


def cflags(variant):
    """The gcc flags of a variant, in ggml's order."""
    needs = set(VARIANTS[variant])
    return [flag for name, (_cpu, gcc) in FEATURES.items() if name in needs for flag in gcc]


def choose(flags, variant=None):
    """(variant, flags): the one asked for, checked against the CPU, else the one the release loads."""
    if not variant:
        variant = best_variant(flags)
    if variant not in VARIANTS:
        raise ValueError(f"unknown ggml CPU variant {variant!r}: one of {', '.join(VARIANTS)}")
    missing = sorted(set(VARIANTS[variant]) - features(flags))
    if missing:
        # kernels built for features the CPU lacks die of SIGILL at the first model load
        raise ValueError(f"this CPU lacks {', '.join(missing)}, which the {variant} variant needs")
    return variant, cflags(variant)


def reported_features(log_text):
    """The features Ollama's `msg=system` log line reports for its first CPU backend (CPU.0.X=1)."""
    line = next((line for line in log_text.splitlines() if "msg=system " in line), "")
    return {m.group(1) for m in re.finditer(r"\bCPU\.0\.([A-Z0-9_]+)=1\b", line)}


# ggml_backend_cpu_get_features lists SSE3 and SSSE3 but not SSE4.2: a log cannot tell sse42 from x64
UNREPORTED = {"SSE42"}


def variant_of(reported):
    """The widest variant whose features the kernels report: which ISA the running build's kernels use.
    Of variants a log cannot tell apart, the narrowest: x64 for a build that reports no SIMD feature."""
    def reportable(name):
        return set(VARIANTS[name]) - UNREPORTED

    matching = [name for name in VARIANTS if reportable(name) <= reported]
    return max(matching, key=lambda name: (sum(SCORE[f] for f in reportable(name)), -score(name)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpuinfo", default="/proc/cpuinfo")
    parser.add_argument("--variant", default="", help="a variant name instead of the best one")
    parser.add_argument("--isa", action="store_true", help="read an Ollama log on stdin")
    args = parser.parse_args(argv)
    if args.isa:
        print(variant_of(reported_features(sys.stdin.read())))
        return 0
    with open(args.cpuinfo, encoding="utf-8") as f:
        flags = cpu_flags(f.read())
    try:
        variant, gcc = choose(flags, args.variant)
    except ValueError as exc:
        print(f"ggml_cpu_variant: {exc}", file=sys.stderr)
        return 1
    print(" ".join([variant, *gcc]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
