# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tools/ggml_cpu_variant.py: the Ollama release CPU backend a machine loads, the flags that build it, and
which one a running build's log reports, against recorded /proc/cpuinfo of several CPU families."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import ggml_cpu_variant as gv

SAMPLES = Path(__file__).resolve().parents[1] / "node_samples"

AVX512 = ["-mavx512f", "-mavx512cd", "-mavx512vl", "-mavx512dq", "-mavx512bw"]
HASWELL = ["-msse4.2", "-mf16c", "-mfma", "-mbmi2", "-mavx", "-mavx2"]


def flags_of(sample):
    return gv.cpu_flags((SAMPLES / sample / "proc" / "cpuinfo").read_text())


@pytest.mark.parametrize("sample, variant, cflags", [
    # Sapphire Rapids also has AVX-VNNI (alderlake), but icelake scores higher, as ggml's loader ranks them
    ("kvm-sapphire-rapids-2vcpu", "icelake", HASWELL + AVX512 + ["-mavx512vbmi", "-mavx512vnni"]),
    ("ryzen7-5800x-1s-smt", "haswell", HASWELL),
    # Cascade Lake: AVX-512 and its VNNI, no VBMI: icelake's needs are not all met
    ("xeon-gold-6248-2s-numa-smt", "skylakex", HASWELL + AVX512),
    ("xeon-e5-2680v2-1s-noavx2", "sandybridge", ["-msse4.2", "-mavx"]),
])
def test_the_variant_the_release_loads(sample, variant, cflags):
    assert gv.choose(flags_of(sample)) == (variant, cflags)


def test_a_variant_asked_for_is_checked_against_the_cpu():
    assert gv.choose(flags_of("ryzen7-5800x-1s-smt"), "x64") == ("x64", [])
    assert gv.choose(flags_of("kvm-sapphire-rapids-2vcpu"), "alderlake")[1] == HASWELL + ["-mavxvnni"]
    with pytest.raises(ValueError, match="lacks AVX512"):
        gv.choose(flags_of("ryzen7-5800x-1s-smt"), "skylakex")
    with pytest.raises(ValueError, match="unknown ggml CPU variant"):
        gv.choose(flags_of("ryzen7-5800x-1s-smt"), "znver4")


def test_a_flag_one_processor_lacks_does_not_count():
    cpuinfo = "processor\t: 0\nflags\t\t: sse4_2 avx avx2 fma f16c bmi2\n\nprocessor\t: 1\nflags\t\t: sse4_2 avx\n"
    assert gv.choose(gv.cpu_flags(cpuinfo))[0] == "sandybridge"
    assert gv.choose(set())[0] == "x64"


# Ollama's startup line, as the two builds print it
BASELINE_LOG = ('time=2026-12-04T16:52:01 level=INFO source=ggml.go:104 msg=system '
                'CPU.0.LLAMAFILE=1 compiler=cgo(gcc)\n')
ICELAKE_LOG = ('level=INFO msg="starting"\ntime=2026-12-05T11:50:00 level=INFO source=ggml.go:104 msg=system '
               'CPU.0.SSE3=1 CPU.0.SSSE3=1 CPU.0.AVX=1 CPU.0.AVX2=1 CPU.0.F16C=1 CPU.0.FMA=1 CPU.0.BMI2=1 '
               'CPU.0.AVX512=1 CPU.0.AVX512_VBMI=1 CPU.0.AVX512_VNNI=1 CPU.0.LLAMAFILE=1 compiler=cgo(gcc)\n')


def test_the_isa_a_running_build_reports():
    assert gv.variant_of(gv.reported_features(BASELINE_LOG)) == "x64"
    assert gv.reported_features(ICELAKE_LOG) >= {"AVX2", "AVX512", "AVX512_VNNI"}
    # ggml reports SSE3 but never SSE4.2: the levels above it are still told apart by what they add
    assert gv.variant_of(gv.reported_features(ICELAKE_LOG)) == "icelake"
    assert gv.variant_of({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2", "LLAMAFILE"}) == "haswell"
    assert gv.variant_of({"AVX"}) == "sandybridge"
    assert gv.variant_of(set()) == "x64"


def test_the_command_line(capsys, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text((SAMPLES / "ryzen7-5800x-1s-smt" / "proc" / "cpuinfo").read_text())
    assert gv.main(["--cpuinfo", str(cpuinfo)]) == 0
    assert capsys.readouterr().out == "haswell " + " ".join(HASWELL) + "\n"
    assert gv.main(["--cpuinfo", str(cpuinfo), "--variant", "icelake"]) == 1
    assert "lacks" in capsys.readouterr().err
