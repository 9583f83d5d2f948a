"""Downloads in ranged parts (module_utils/blob_download.py) into a temporary store: the plan, the progress file,
resuming, the fallback to one stream, the connection limits, verification.

The bytes come from BytesSource, which serves a blob from memory through the same source interface the
registry's (ollama_registry.RegistryBlobSource) implements; the real registry and CDN are in
tests/integration/model_cache/test_store_parallel.py. Two failures that cannot be caused for real here are
stood in for and named so: a connection that breaks (BreakingSource) and a crash that lost written data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time

import pytest

from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_download import DownloadFailed
from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_partial import (
    AUTO_PART_MAX,
    AUTO_PART_MIN,
    MAX_PARTS_PER_BLOB,
    PartialBlob,
    part_size_for,
    plan,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import OllamaStore, StoreError

MIB = 1 << 20


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_bytes(size: int, seed: int = 0) -> bytes:
    # incompressible, so that a part in the wrong place changes the sha256
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


class BytesSource:
    """A blob served from memory: `open(start, end)` honours the range (or ignores it, as a server without Range
    support does), and records what was asked and how many streams were open at once."""

    def __init__(self, data: bytes, honour_range: bool = True, delay: float = 0.0):
        self.data = data
        self.honour_range = honour_range
        self.delay = delay
        self.asked = []
        self.open_now = 0
        self.most_open = 0
        self.lock = threading.Lock()

    def open(self, start, end):
        with self.lock:
            self.asked.append((start, end))
        if not self.honour_range:
            return self._stream(self.data), 0, len(self.data)
        return self._stream(self.data[start:end]), start, end

    def _stream(self, data):
        source = self

        class Stream(io.BytesIO):
            def __init__(self, body):
                super().__init__(body)
                with source.lock:
                    source.open_now += 1
                    source.most_open = max(source.most_open, source.open_now)
                self.counted = True

            def readinto(self, buffer):
                if source.delay:
                    time.sleep(source.delay)
                return super().readinto(buffer)

            def close(self):
                if self.counted:
                    self.counted = False
                    with source.lock:
                        source.open_now -= 1
                super().close()

        return Stream(data)


class BreakingSource(BytesSource):
    """Stands in for a connection that breaks: the first stream of each part (of `part` bytes) ends after `cut`."""

    def __init__(self, data: bytes, cut: int, part: int):
        super().__init__(data)
        self.cut = cut
        self.part = part

    def open(self, start, end):
        stream, begins, stops = super().open(start, end)
        if start % self.part == 0 and end - start > self.cut:
            stream.close()
            return self._stream(self.data[start:start + self.cut]), begins, stops
        return stream, begins, stops


def download(store: OllamaStore, blobs, **options):
    return store.download_blobs([(digest_of(data), len(data), source) for data, source in blobs], **options)


def content(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def blob_files(store: OllamaStore) -> list[str]:
    return sorted(os.listdir(store.blobs_dir)) if os.path.isdir(store.blobs_dir) else []


# -- the plan -----------------------------------------------------------------------------------------------


def test_part_sizes_follow_ollamas_bounds():
    assert part_size_for(1 << 30) == (1 << 30) // 16  # 16 parts of 64 MiB
    assert part_size_for(100 * MIB) == AUTO_PART_MIN  # no smaller than 16 MiB
    assert part_size_for(47_415_724_544) == AUTO_PART_MAX  # no larger than 1 GB: 48 parts, 16 at a time
    assert part_size_for(1 << 30, parts=4) == (1 << 30) // 4
    assert part_size_for(1 << 30, part_size=8 * MIB) == 8 * MIB
    # a part size that would make the progress file huge is raised
    assert part_size_for(47_415_724_544, part_size=MIB) == -(-47_415_724_544 // MAX_PARTS_PER_BLOB)


def test_plan_keeps_finished_ranges_and_cuts_the_rest():
    parts = plan(100, [(0, 40, 40), (40, 70, 10), (70, 100, 0)], part_size=12)
    rows = [p.row() for p in parts]
    # the finished prefix and the finished start of the second range are one finished part
    assert rows[0] == [0, 50, 50]
    assert [r[0] for r in rows[1:]] == [50, 62, 70, 82, 94]
    assert all(r[2] == 0 for r in rows[1:]) and sum(r[1] for r in rows) == 100


# -- parallel parts -----------------------------------------------------------------------------------------


def test_parts_download_at_once_and_the_blob_is_verified(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(10 * MIB + 123)
    source = BytesSource(data, delay=0.002)
    received = download(store, [(data, source)], parts=4, part_size=MIB, max_connections=8)
    assert received == {digest_of(data): len(data)}
    assert content(store.blob_path(digest_of(data))) == data
    assert blob_files(store) == ["sha256-" + digest_of(data)[7:]]  # no partial, no progress file
    assert len(source.asked) == 11 and 1 < source.most_open <= 4


def test_max_connections_holds_over_all_blobs(tmp_path):
    store = OllamaStore(tmp_path)
    first, second = blob_bytes(6 * MIB, seed=1), blob_bytes(6 * MIB, seed=2)
    sources = [BytesSource(first, delay=0.003), BytesSource(second, delay=0.003)]
    shared = threading.Lock()
    peak = {"now": 0, "most": 0}
    for source in sources:
        original = source._stream

        def counted(body, original=original):
            stream = original(body)
            close = stream.close
            with shared:
                peak["now"] += 1
                peak["most"] = max(peak["most"], peak["now"])

            def closing():
                if not stream.closed:
                    with shared:
                        peak["now"] -= 1
                close()

            stream.close = closing
            return stream

        source._stream = counted
    download(store, [(first, sources[0]), (second, sources[1])], parts=8, part_size=MIB, max_connections=3)
    assert peak["most"] == 3
    assert sources[0].most_open >= 1 and sources[1].most_open >= 1
    for data in (first, second):
        assert content(store.blob_path(digest_of(data))) == data


def test_a_server_without_range_support_gets_one_stream(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(5 * MIB)
    source = BytesSource(data, honour_range=False)
    assert download(store, [(data, source)], parts=8, part_size=MIB)[digest_of(data)] == len(data)
    assert source.asked == [(0, MIB)]  # the first answer was the whole blob: no other part was asked for
    assert content(store.blob_path(digest_of(data))) == data


def test_a_broken_connection_is_resumed_where_it_stopped(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(4 * MIB)
    source = BreakingSource(data, cut=300_000, part=MIB)
    received = download(store, [(data, source)], parts=4, part_size=MIB, max_connections=4)
    # each part asked again from the byte its broken stream stopped at, not from its start
    again = sorted(start for start, _end in source.asked if start % MIB)
    assert again == [n * MIB + 300_000 for n in range(4)]
    assert received[digest_of(data)] == len(data)
    assert content(store.blob_path(digest_of(data))) == data


class ShortRangeSource(BytesSource):
    """A server that answers a range with fewer bytes than asked (HTTP allows it), at most `most` at a time."""

    def __init__(self, data: bytes, most: int):
        super().__init__(data)
        self.most = most

    def open(self, start, end):
        with self.lock:
            self.asked.append((start, end))
        stops = min(end, start + self.most)
        return self._stream(self.data[start:stops]), start, stops


def test_a_range_answered_in_pieces_is_asked_for_again_from_where_it_ended(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(2 * MIB)
    source = ShortRangeSource(data, most=700_000)
    assert download(store, [(data, source)], parts=2, part_size=MIB)[digest_of(data)] == len(data)
    assert sorted(source.asked) == [(0, MIB), (700_000, MIB), (MIB, 2 * MIB), (MIB + 700_000, 2 * MIB)]
    assert content(store.blob_path(digest_of(data))) == data


def test_content_that_does_not_verify_leaves_nothing(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(3 * MIB)
    wrong = bytearray(data)
    wrong[MIB + 7] ^= 1
    with pytest.raises(DownloadFailed) as failed:
        store.download_blobs([(digest_of(data), len(data), BytesSource(bytes(wrong)))], parts=3, part_size=MIB)
    assert isinstance(failed.value.cause, StoreError) and failed.value.cause.kind == "digest"
    assert failed.value.digest == digest_of(data)
    assert blob_files(store) == []


def test_an_empty_blob(tmp_path):
    store = OllamaStore(tmp_path)
    assert download(store, [(b"", BytesSource(b""))]) == {digest_of(b""): 0}
    assert os.path.getsize(store.blob_path(digest_of(b""))) == 0 and len(blob_files(store)) == 1


def test_progress_adds_up_to_the_bytes_received(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(3 * MIB)
    seen = []
    download(store, [(data, BytesSource(data))], parts=3, part_size=MIB,
             progress=lambda count, downloader: seen.append((count, downloader.active_connections)))
    assert sum(count for count, _active in seen) == len(data)


# -- resuming -----------------------------------------------------------------------------------------------


def interrupted(store: OllamaStore, data: bytes, rows) -> PartialBlob:
    """The `-partial` file and progress an interrupted run leaves: the recorded bytes written, the rest zero."""
    os.makedirs(store.blobs_dir, exist_ok=True)
    blob = PartialBlob(store.blob_path(digest_of(data)), digest_of(data), len(data))
    content = bytearray(len(data))
    for offset, _size, done in rows:
        content[offset:offset + done] = data[offset:offset + done]
    with open(blob.partial, "wb") as handle:
        handle.write(content)
    with open(blob.progress_path, "w") as handle:
        json.dump({"format": "aiplatform.ollama.blob-parts/1", "digest": blob.digest, "size": len(data),
                   "parts": rows}, handle)
    return blob


def test_a_rerun_fetches_only_what_each_part_misses(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(4 * MIB)
    rows = [[0, MIB, MIB], [MIB, MIB, 1000], [2 * MIB, MIB, 0], [3 * MIB, MIB, MIB - 5]]
    interrupted(store, data, rows)
    assert store.partial_bytes(digest_of(data), len(data)) == 2 * MIB + 995
    source = BytesSource(data)
    received = download(store, [(data, source)], parts=4, part_size=MIB)
    assert sorted(source.asked) == [(MIB + 1000, 2 * MIB), (2 * MIB, 3 * MIB), (4 * MIB - 5, 4 * MIB)]
    assert received[digest_of(data)] == len(data) - (2 * MIB + 995)
    assert content(store.blob_path(digest_of(data))) == data


def test_progress_that_does_not_fit_the_file_is_ignored(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(2 * MIB)
    blob = interrupted(store, data, [[0, MIB, MIB], [MIB, MIB, 0]])
    for broken in ({"parts": [[0, MIB, MIB]]},  # does not cover the blob
                   {"size": 5},  # another size
                   {"digest": "sha256:" + "0" * 64},  # another blob
                   {"parts": [[0, MIB, 2 * MIB], [MIB, MIB, 0]]}):  # more done than the part holds
        saved = json.loads(content(blob.progress_path))
        saved.update(broken)
        with open(blob.progress_path, "w") as handle:
            json.dump(saved, handle)
        assert blob.saved_ranges() == [], broken
        interrupted(store, data, [[0, MIB, MIB], [MIB, MIB, 0]])
    os.truncate(blob.partial, MIB // 2)  # the file lost what the progress says it holds
    assert blob.saved_ranges() == []


def test_resumed_content_that_does_not_verify_is_fetched_again_from_nothing(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(2 * MIB)
    blob = interrupted(store, data, [[0, MIB, MIB], [MIB, MIB, 0]])
    # stands in for a crash that lost written data the progress file had recorded
    with open(blob.partial, "r+b") as handle:
        handle.write(b"\0" * 4096)
    source = BytesSource(data)
    received = download(store, [(data, source)], parts=2, part_size=MIB)
    assert (0, MIB) in source.asked  # the recorded part was fetched again once its content failed the sha256
    assert received[digest_of(data)] == len(data) + MIB
    assert content(store.blob_path(digest_of(data))) == data


# -- the store's lock and verification ------------------------------------------------------------------------


def test_the_lock_names_its_holder_and_goes_with_it(tmp_path):
    store = OllamaStore(tmp_path)
    lock_file = tmp_path / ".ollama_store.lock"
    with store.lock(holder="seeding qwen2.5:72b"):
        assert json.loads(lock_file.read_text())["what"] == "seeding qwen2.5:72b"
        with pytest.raises(StoreError) as err:
            store.lock(timeout=0.3, holder="another").acquire()
        assert err.value.kind == "locked"
        assert f"pid {os.getpid()}" in err.value.msg and "seeding qwen2.5:72b" in err.value.msg
        assert "lock_timeout" in err.value.msg
    assert not lock_file.exists()


def test_a_waiter_locks_the_file_that_replaced_the_one_it_waited_on(tmp_path):
    store = OllamaStore(tmp_path)
    first = store.lock(holder="first")
    first.acquire()
    got = {}

    def wait():
        with store.lock(holder="second") as second:
            got["inode"] = os.fstat(second.fd).st_ino
            got["named"] = os.stat(tmp_path / ".ollama_store.lock").st_ino

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive()
    first.release()  # removes the file it locked: the waiter must not settle for that one
    waiter.join(10)
    assert got and got["inode"] == got["named"]


def test_verify_blob_tells_ok_missing_and_corrupt(tmp_path):
    store = OllamaStore(tmp_path)
    data = blob_bytes(MIB)
    download(store, [(data, BytesSource(data))])
    digest = digest_of(data)
    assert store.verify_blob(digest, len(data)) == ("ok", digest)
    assert store.verify_blob(digest, len(data) + 1)[0] == "corrupt"
    path = store.blob_path(digest)
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"x")
    status, found = store.verify_blob(digest, len(data))
    assert status == "corrupt" and found.startswith("sha256 sha256:")
    os.remove(path)
    assert store.verify_blob(digest, len(data)) == ("missing", None)
