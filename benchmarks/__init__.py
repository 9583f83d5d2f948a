"""Benchmarks: each benchmarks/bench_*.py has run() -> dict of figure name to value."""
