"""The blob cache's scan of its file (maildir/cache.py ``_scan``): records are
read a window at a time, and a torn or damaged record still ends what is
read, exactly as when they were read one by one."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.maildir import cache as blob_cache
from mailyard.maildir.cache import BlobCache

HEAD = 16  # magic + UIDVALIDITY
RECORD = 13  # crc32, uid, kind, length


def _fill(directory: str, blobs: list[bytes]) -> list[int]:
    """Cache ``blobs`` as uids 1…; the file offset where each record ends."""
    cache = BlobCache(directory, 7)
    ends = []
    end = HEAD
    for uid, blob in enumerate(blobs, start=1):
        cache.put(uid, 1, blob)
        end += RECORD + len(blob)
        ends.append(end)
    cache.close()
    return ends


def _read_all(directory: str, count: int) -> dict[int, bytes]:
    cache = BlobCache(directory, 7)
    try:
        return cache.get_many(range(1, count + 1), 1)
    finally:
        cache.close()


def test_many_records_over_several_windows(tmp_path: Path) -> None:
    blobs = [bytes([uid % 256]) * (uid % 700) for uid in range(1, 6001)]
    _fill(str(tmp_path), blobs)
    assert _read_all(str(tmp_path), len(blobs)) == dict(enumerate(blobs, start=1))


def test_a_record_larger_than_the_window(tmp_path: Path) -> None:
    big = bytes(range(256)) * 9000  # over 2 MB: more than one read window
    blobs = [b"small", big, b"after", big[:-1], b"last"]
    _fill(str(tmp_path), blobs)
    assert _read_all(str(tmp_path), len(blobs)) == dict(enumerate(blobs, start=1))


def test_a_torn_tail_ends_the_scan_until_it_is_whole(tmp_path: Path) -> None:
    blobs = [b"one" * 50, b"two" * 50, b"three" * 50]
    ends = _fill(str(tmp_path), blobs)
    path = tmp_path / blob_cache.FILE_NAME
    whole = path.read_bytes()
    path.write_bytes(whole[: ends[-1] - 7])  # the last record is half written
    cache = BlobCache(str(tmp_path), 7)
    assert cache.get_many([1, 2, 3], 1) == {1: blobs[0], 2: blobs[1]}
    with path.open("ab") as tail:  # the writer finishes it
        tail.write(whole[ends[-1] - 7 :])
    assert cache.get(3, 1) == blobs[2]
    cache.close()


def test_a_damaged_record_hides_what_follows(tmp_path: Path) -> None:
    blobs = [b"a" * 100, b"b" * 100, b"c" * 100, b"d" * 100]
    ends = _fill(str(tmp_path), blobs)
    path = tmp_path / blob_cache.FILE_NAME
    data = bytearray(path.read_bytes())
    data[ends[1] - 3] ^= 0xFF  # inside the second blob
    path.write_bytes(bytes(data))
    assert _read_all(str(tmp_path), 4) == {1: blobs[0]}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=400), min_size=1, max_size=30), st.data())
def test_any_cut_keeps_exactly_the_whole_records(blobs: list[bytes], data: st.DataObject
                                                 ) -> None:
    with tempfile.TemporaryDirectory() as directory:
        ends = _fill(directory, blobs)
        cut = data.draw(st.integers(HEAD, ends[-1]))
        path = Path(directory) / blob_cache.FILE_NAME
        path.write_bytes(path.read_bytes()[:cut])
        expected = {uid: blob for uid, (blob, end) in enumerate(zip(blobs, ends, strict=True),
                                                                start=1) if end <= cut}
        assert _read_all(directory, len(blobs)) == expected
