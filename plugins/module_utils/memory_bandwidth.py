# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Memory bandwidth of the machine this runs on, the ceiling of CPU decode speed.

Method: the Copy kernel of McCalpin's STREAM benchmark (https://www.cs.virginia.edu/stream/ref.html),
with the standard library only:

* One worker per physical core of one NUMA node (the cores one Ollama pod of the recommended layout
  runs on), all bound to that node's cores with sched_setaffinity, each owning two arrays it allocates
  and touches itself, so that first-touch places them in that node's memory. Bound to the set rather
  than one core each, so that the scheduler can move a worker off a core something else is using (on
  an idle 2-vCPU machine both ways gave the same figures).
* The source arrays together (and so the destinations) are at least 256 MiB and at least 4 x the
  last-level caches (STREAM's rule), split evenly over the workers; anonymous mmaps, with transparent
  huge pages asked for where the kernel offers them (as numpy does for large arrays).
* A copy is one memoryview slice assignment, which CPython runs as a single memcpy; for copies this
  large glibc uses non-temporal stores, so the bytes moved are what STREAM counts: the array read
  plus the array written, 2 x array bytes, with no read-for-ownership of the destination (a C library
  that writes through the cache moves a third more than is counted, so the figure errs low).
* Workers are processes (os.fork), not threads: CPython holds the GIL through slice assignment.
  Checked on CPython 3.11: two threads copying 128 MiB arrays kept the process at 1.0 CPU of wall
  time and the same aggregate rate as one thread (16-18 GB/s), while two forked processes reached
  1.3-1.5 x one, as numpy's copy (which releases the GIL) does in two threads.
* Every repetition starts all workers together (one byte down a pipe each); each reports when its
  copy began and ended on the system-wide monotonic clock, and the repetition's time runs from the
  earliest start to the latest end. Like STREAM, the first copy (which faults the pages in) is not
  timed and the best repetition is reported; repetitions go on until a time budget has passed.

The result is the rate those cores can stream from local memory. A pod with fewer threads than
the node's cores may draw less; decode on CPU reaches 55-75 % of this figure in published runs.
"""

from __future__ import annotations

import contextlib
import glob
import json
import mmap
import os
import select
import signal
import struct
import time

MIB = 1024 * 1024
GIB = 1024 * MIB
METHOD = "stream-copy-fork-memcpy-v1"
MIN_ARRAYS_BYTES = 256 * MIB
CACHE_FACTOR = 4  # STREAM: each array at least 4 x the size of all last-level caches together
ARRAY_ALIGN = 2 * MIB  # one transparent huge page
MEMORY_SHARE = 4  # use at most a quarter of MemAvailable
MIN_REPETITIONS = 10  # STREAM's NTIMES
MAX_REPETITIONS = 500
DEFAULT_BUDGET_SECONDS = 2.0
RECORD = 128  # below PIPE_BUF, so every record is written atomically
_SPAN = struct.Struct("=cdd")


class BandwidthError(Exception):
    """The measurement could not run; the message says what was found and what to do."""


def parse_cache_size(text):
    """sysfs cache size ('32768K', '1M', '512') -> bytes."""
    value = (text or "").strip().upper()
    units = {"K": 1024, "M": MIB, "G": GIB}
    try:
        if value and value[-1] in units:
            return int(value[:-1]) * units[value[-1]]
        return int(value)
    except ValueError:
        raise BandwidthError(f"cache size {text!r} is not a number of bytes, K, M or G") from None


def last_level_cache_bytes(root="/"):
    """All last-level caches of the machine together (each shared cache counted once), 0 when sysfs
    does not say."""
    caches = {}
    pattern = os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/cache/index[0-9]*")
    for path in glob.glob(pattern):
        try:
            with open(os.path.join(path, "type")) as handle:
                if handle.read().strip() == "Instruction":
                    continue
            with open(os.path.join(path, "level")) as handle:
                level = int(handle.read())
            with open(os.path.join(path, "size")) as handle:
                size = parse_cache_size(handle.read())
            with open(os.path.join(path, "shared_cpu_list")) as handle:
                shared = handle.read().strip()
        except (OSError, ValueError, BandwidthError):
            continue
        caches[(level, shared)] = size
    if not caches:
        return 0
    top = max(level for level, _shared in caches)
    return sum(size for (level, _shared), size in caches.items() if level == top)


def array_bytes(workers, llc_bytes, memory_available=None):
    """Bytes of each of a worker's two arrays: together at least MIN_ARRAYS_BYTES and CACHE_FACTOR x
    the last-level caches, split over the workers, in whole huge pages."""
    if workers < 1:
        raise BandwidthError(f"workers must be at least 1, got {workers}")
    total = max(MIN_ARRAYS_BYTES, CACHE_FACTOR * max(0, llc_bytes))
    per_worker = -(-total // workers)
    per_worker = -(-per_worker // ARRAY_ALIGN) * ARRAY_ALIGN
    needed = 2 * per_worker * workers
    if memory_available is not None and needed > memory_available // MEMORY_SHARE:
        raise BandwidthError(
            f"the measurement needs {needed // MIB} MiB ({workers} workers x 2 arrays of {per_worker // MIB} MiB, so "
            f"that the copies exceed 256 MiB and 4 x the {llc_bytes // MIB} MiB of last-level cache), but only a "
            f"quarter of MemAvailable "
            f"({memory_available // MIB} MiB) is used for it: free memory on the node, or opt out of the measurement"
        )
    return per_worker


def worker_cpus(numa_node_cpus, core_map, allowed, workers=0):
    """CPUs to pin the workers to: first one thread of each physical core of the first NUMA node that
    has CPUs this process may use, then their SMT siblings, then the other nodes' CPUs.
    workers=0 takes one per physical core of that node."""
    allowed = set(allowed)
    core_of = {}
    for key, cpus in core_map.items():
        for cpu in cpus:
            core_of[cpu] = key
    nodes = [sorted(set(cpus) & allowed) for _node, cpus in sorted(numa_node_cpus.items(), key=lambda kv: int(kv[0]))]
    nodes = [cpus for cpus in nodes if cpus] or [sorted(allowed)]
    first, seen = [], set()
    for cpu in nodes[0]:
        core = core_of.get(cpu, ("cpu", cpu))
        if core not in seen:
            seen.add(core)
            first.append(cpu)
    order = first + [cpu for cpu in nodes[0] if cpu not in first]
    order += [cpu for cpus in nodes[1:] for cpu in cpus]
    wanted = workers or len(first)
    if wanted > len(order):
        raise BandwidthError(
            f"{wanted} bandwidth workers asked for, but this process may run on {len(order)} CPUs "
            f"({', '.join(map(str, sorted(allowed)))}): ask for at most {len(order)}, or 0 for one per physical core"
        )
    return order[:wanted]


def copy_rate(spans, array_size):
    """Bytes per second of one repetition: every worker read and wrote array_size bytes between the
    earliest start and the latest end of spans [(start, end), ...]."""
    if not spans:
        raise BandwidthError("no worker reported a copy")
    seconds = max(end for _start, end in spans) - min(start for start, _end in spans)
    if seconds <= 0:
        raise BandwidthError(f"the copies took {seconds} s: the clock did not advance")
    return 2 * array_size * len(spans) / seconds


def summarize(rates, workers, cpus, array_size, huge_pages):
    """The measurement as it goes into the node profile."""
    if not rates:
        raise BandwidthError("no repetition completed")
    ordered = sorted(rates)
    best = ordered[-1]
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "bytes_per_s": int(best),
        "gb_per_s": round(best / 1e9, 2),
        "median_gb_per_s": round(median / 1e9, 2),
        "method": METHOD,
        "workers": workers,
        "cpus": list(cpus),
        "array_bytes": array_size,
        "bytes_per_repetition": 2 * array_size * workers,
        "repetitions": len(rates),
        "huge_pages": huge_pages,
    }


def _buffer(size):
    buf = mmap.mmap(-1, size)
    huge = False
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            buf.madvise(mmap.MADV_HUGEPAGE)
            huge = True
        except OSError:
            pass
    return buf, huge


def _send(fd, kind, first=0.0, second=0.0, text=b""):
    record = _SPAN.pack(kind, first, second) + text[: RECORD - _SPAN.size]
    os.write(fd, record.ljust(RECORD, b"\0"))


def _worker(cpus, size, go_fd, done_fd):
    """The child's side: bind to cpus, allocate, touch, then copy once per byte read from go_fd."""
    try:
        with contextlib.suppress(AttributeError, OSError):  # unbound still measures, less reproducibly
            os.sched_setaffinity(0, cpus)
        src, huge = _buffer(size)
        dst, _huge = _buffer(size)
        source, target = memoryview(src), memoryview(dst)
        # untouched anonymous pages all map the one zero page, which would be read from cache
        chunk = bytes(range(1, 256)) * (ARRAY_ALIGN // 255 + 1)
        for offset in range(0, size, ARRAY_ALIGN):
            source[offset:offset + ARRAY_ALIGN] = chunk[:ARRAY_ALIGN]
        target[:] = source  # faults the destination in; not timed
        _send(done_fd, b"r", float(huge))
        while os.read(go_fd, 1) == b"g":
            started = time.monotonic()
            target[:] = source
            _send(done_fd, b"s", started, time.monotonic())
    except Exception as exc:  # the parent reports it; a child must never unwind into the caller's code
        with contextlib.suppress(OSError):
            _send(done_fd, b"e", text=f"{type(exc).__name__}: {exc}".encode(errors="replace"))


def _receive(fd, deadline, worker, expected):
    """The next record of a worker, of kind expected: its two numbers."""
    data = b""
    while len(data) < RECORD:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise BandwidthError(f"bandwidth worker {worker} did not answer in time: the node may be overloaded")
        part = os.read(fd, RECORD - len(data))
        if not part:
            raise BandwidthError(f"bandwidth worker {worker} exited before reporting (out of memory?)")
        data += part
    kind, first, second = _SPAN.unpack(data[:_SPAN.size])
    if kind == b"e":
        message = data[_SPAN.size:].rstrip(b"\0").decode(errors="replace")
        raise BandwidthError(f"bandwidth worker {worker} failed: {message}")
    if kind != expected:
        raise BandwidthError(f"bandwidth worker {worker} sent a {kind!r} record where {expected!r} was due")
    return first, second


def measure(cpus, size, budget_seconds=DEFAULT_BUDGET_SECONDS, timeout=120.0):
    """Fork one worker per CPU of cpus, bound to them all, copy until budget_seconds have passed
    (MIN_REPETITIONS at least), and return summarize()'s dict. Every child is reaped before this
    returns or raises."""
    children = []
    try:
        for index in range(len(cpus)):
            go_read, go_write = os.pipe()
            done_read, done_write = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                for fd in (go_read, go_write, done_read, done_write):
                    os.close(fd)
                raise
            if pid == 0:
                try:
                    for child in children:  # the parent's ends of earlier workers' pipes
                        os.close(child["go"])
                        os.close(child["done"])
                    os.close(go_write)
                    os.close(done_read)
                    _worker(set(cpus), size, go_read, done_write)
                finally:
                    os._exit(0)
            os.close(go_read)
            os.close(done_write)
            children.append({"pid": pid, "index": index, "go": go_write, "done": done_read})
        deadline = time.monotonic() + timeout
        ready = [_receive(child["done"], deadline, child["index"], b"r") for child in children]
        rates = []
        stop = time.monotonic() + budget_seconds
        while len(rates) < MAX_REPETITIONS and (len(rates) < MIN_REPETITIONS or time.monotonic() < stop):
            for child in children:
                os.write(child["go"], b"g")
            deadline = time.monotonic() + timeout
            spans = [_receive(child["done"], deadline, child["index"], b"s") for child in children]
            rates.append(copy_rate(spans, size))
        return summarize(rates, len(cpus), cpus, size, all(huge > 0 for huge, _unused in ready))
    finally:
        for child in children:
            with contextlib.suppress(OSError):
                os.write(child["go"], b"q")
            os.close(child["go"])
            os.close(child["done"])
        for child in children:
            _reap(child["pid"])


def _reap(pid, grace=5.0):
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _allowed_cpus(profile):
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return [cpu for cpus in profile["core_map"].values() for cpu in cpus]


def fingerprint(profile):
    """What must be unchanged for an earlier measurement to stand for this node."""
    return {
        "cpu_model": profile["cpu_model"],
        "logical_cpus": profile["logical_cpus"],
        "numa_nodes": profile["numa_nodes"],
        "memory_total_gib": round(profile["memory_total_bytes"] / GIB),
    }


def earlier_measurement(path, profile):
    """The memory_bandwidth an earlier run left in path (the role's local facts file) when it was
    taken with this method on this hardware, else None with the reason."""
    try:
        with open(path) as handle:
            previous = json.load(handle).get("memory_bandwidth")
    except FileNotFoundError:
        return None, f"{path} does not exist yet"
    except (OSError, ValueError, AttributeError) as exc:
        return None, f"{path} cannot be read as JSON ({exc})"
    if not isinstance(previous, dict) or not previous.get("bytes_per_s"):
        return None, f"{path} holds no measurement"
    if previous.get("method") != METHOD:
        return None, f"{path} holds a measurement by method {previous.get('method')!r}, not {METHOD}"
    if previous.get("fingerprint") != fingerprint(profile):
        return None, f"{path} holds a measurement of other hardware ({previous.get('fingerprint')})"
    return previous, ""


def node_bandwidth(profile, enabled, facts_file=None, workers=0, root="/",
                   budget_seconds=DEFAULT_BUDGET_SECONDS):
    """(measurement or None, status) for the node profile. status = {'source': measured | reused |
    skipped | failed, 'reason', 'seconds'}. A measurement that cannot run is a status, not an error:
    the bandwidth informs, it decides nothing."""
    if not enabled:
        return None, {"source": "skipped", "reason": "measurement turned off", "seconds": 0.0}
    if facts_file:
        previous, why = earlier_measurement(facts_file, profile)
        if previous:
            return previous, {"source": "reused", "reason": f"measured earlier, read from {facts_file}",
                              "seconds": 0.0}
    else:
        why = "no earlier measurement asked for"
    started = time.monotonic()
    try:
        cpus = worker_cpus(profile["numa_node_cpus"], profile["core_map"], _allowed_cpus(profile), workers)
        size = array_bytes(len(cpus), last_level_cache_bytes(root), profile.get("memory_available_bytes") or None)
        result = measure(cpus, size, budget_seconds)
    except (BandwidthError, OSError) as exc:
        return None, {"source": "failed", "reason": str(exc), "seconds": round(time.monotonic() - started, 2)}
    result["fingerprint"] = fingerprint(profile)
    return result, {"source": "measured", "reason": why, "seconds": round(time.monotonic() - started, 2)}
