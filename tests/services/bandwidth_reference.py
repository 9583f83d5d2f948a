"""A reference for the collection's memory bandwidth measurement: the same STREAM Copy, by numpy.

numpy releases the GIL while it copies large arrays (checked: two threads keep ~2 CPUs busy), so
plain threads run the copies in parallel; its arrays get transparent huge pages where the kernel
offers them. Measured like plugins/module_utils/memory_bandwidth.py measures: one worker per given
CPU with its own pair of arrays, all starting together, bytes read plus bytes written over the time
from the first worker's start to the last worker's end, best of the repetitions.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np


def numpy_copy_bandwidth(cpus: list[int], array_bytes: int, budget_seconds: float = 2.0,
                         min_repetitions: int = 10) -> dict:
    """{'bytes_per_s': best, 'median_bytes_per_s', 'repetitions'} of np.copyto in one thread per CPU."""
    workers = len(cpus)
    start, done = threading.Barrier(workers + 1), threading.Barrier(workers + 1)
    stop = threading.Event()

    # each worker times its own copy: the coordinating thread may wake late on CPUs the copies keep busy
    starts, ends = [0.0] * workers, [0.0] * workers

    def work(index: int) -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cpus))  # this thread only, as the collection's workers are bound
        source = np.full(array_bytes, 0x5A, dtype=np.uint8)
        target = np.empty(array_bytes, dtype=np.uint8)
        np.copyto(target, source)  # faults the pages in; not timed
        while True:
            start.wait()
            if stop.is_set():
                return
            starts[index] = time.monotonic()
            np.copyto(target, source)
            ends[index] = time.monotonic()
            done.wait()

    threads = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(workers)]
    for thread in threads:
        thread.start()
    rates = []
    deadline = time.monotonic() + budget_seconds
    try:
        while len(rates) < min_repetitions or time.monotonic() < deadline:
            start.wait()
            done.wait()
            rates.append(2 * array_bytes * workers / (max(ends) - min(starts)))
    finally:
        stop.set()
        start.wait()
        for thread in threads:
            thread.join()
    rates.sort()
    return {"bytes_per_s": rates[-1], "median_bytes_per_s": rates[len(rates) // 2], "repetitions": len(rates)}
