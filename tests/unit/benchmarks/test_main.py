"""`python -m benchmarks`: its usage, and a name that is not a benchmark refused before anything runs."""

from __future__ import annotations

from benchmarks.__main__ import main


def test_help_lists_the_benchmarks(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m benchmarks [NAME ...]")
    assert "bench_real_node" in out and "bench_seed" in out


def test_an_unknown_name_is_refused_with_the_names_there_are(capsys):
    assert main(["bench_real_node", "bench_nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("no benchmark bench_nope: the benchmarks are bench_cluster, ")
