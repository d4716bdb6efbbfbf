"""The saved index and the blob cache: round trips, and garbage never trusted or fatal."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.maildir import cache as blob_cache
from mailyard.maildir import index
from mailyard.maildir.cache import BlobCache
from mailyard.maildir.journal import Added, Expunged, Header
from mailyard.maildir.scan import DirStamp
from mailyard.maildir.table import MessageTable

names = st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
                min_size=1, max_size=30)


def _table(bases: list[str], gone: int) -> MessageTable:
    table = MessageTable(Header(42, 1, 1, 0, "g"))
    records = [Added(uid, uid, uid * 10, 1000 + uid, ":2,S" if uid % 2 else "", base)
               for uid, base in enumerate(dict.fromkeys(bases), start=1)]
    table.apply(records)
    table.apply([Expunged(uid, 500 + uid) for uid in range(1, min(gone, len(records)) + 1)])
    return table


@settings(max_examples=40)
@given(st.lists(names, max_size=20), st.integers(0, 5), st.booleans())
def test_index_round_trip(bases: list[str], gone: int, settled: bool) -> None:
    table = _table(bases, gone)
    stamp = DirStamp(123, 456, settled)
    with tempfile.TemporaryDirectory() as directory:
        assert index.save_index(directory, "gen1", 77, table, stamp, None)
        saved = index.load_index(directory)
    assert saved is not None
    assert (saved.generation, saved.offset, saved.new_stamp, saved.cur_stamp) == (
        "gen1", 77, stamp, None)
    loaded = saved.table
    for field in ("uids", "modseqs", "flags", "sizes", "dates", "names", "where", "xuids",
                  "xmods", "uidvalidity", "uidnext", "highest", "floor"):
        assert getattr(loaded, field) == getattr(table, field), field


@settings(max_examples=60)
@given(st.binary(max_size=400), st.booleans())
def test_index_garbage_is_ignored(data: bytes, with_magic: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        blob = (index._MAGIC + data) if with_magic else data
        (Path(directory) / index.FILE_NAME).write_bytes(blob)
        assert index.load_index(directory) is None


def test_a_name_with_a_newline_is_not_indexed(tmp_path: Path) -> None:
    table = _table(["a", "b\nc"], 0)
    assert not index.save_index(str(tmp_path), "g", 1, table, None, None)
    assert index.load_index(str(tmp_path)) is None


@settings(max_examples=60)
@given(st.binary(max_size=300))
def test_cache_garbage_is_never_fatal(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / blob_cache.FILE_NAME).write_bytes(data)
        cache = BlobCache(directory, 7)
        assert cache.get(1, 1) is None or isinstance(cache.get(1, 1), bytes)
        cache.put(1, 1, b"value")
        assert cache.get(1, 1) in (b"value", None)
        cache.close()
        again = BlobCache(directory, 7)
        assert again.get(2, 1) is None
        again.close()


def test_cache_survives_and_compacts(tmp_path: Path) -> None:
    cache = BlobCache(str(tmp_path), 7)
    big = b"x" * 100_000
    for uid in range(1, 80):
        cache.put(uid, 1, big)
    cache.put(80, 2, b"kept")
    cache.forget(set(range(1, 80)), live=1)
    assert (tmp_path / blob_cache.FILE_NAME).stat().st_size < 1000
    assert cache.get(80, 2) == b"kept" and cache.get(5, 1) is None
    cache.close()
    assert BlobCache(str(tmp_path), 8).get(80, 2) is None  # another UIDVALIDITY: reset


@settings(max_examples=40)
@given(st.dictionaries(st.integers(1, 400), st.binary(max_size=3000), max_size=60),
       st.lists(st.integers(1, 450), max_size=80))
def test_cache_get_many_is_get_for_each(blobs: dict[int, bytes], asked: list[int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        cache = BlobCache(directory, 7)
        for uid, blob in blobs.items():
            cache.put(uid, 3, blob)
        cache.put(1, 4, b"another kind")
        expected = {uid: cache.get(uid, 3) for uid in asked if uid in blobs}
        assert cache.get_many(asked, 3) == expected
        cache.close()


def test_cache_get_many_spans_windows(tmp_path: Path) -> None:
    cache = BlobCache(str(tmp_path), 7)
    blob = bytes(range(256)) * 1024  # 256 KiB: four to a read window
    for uid in range(1, 11):
        cache.put(uid, 1, blob[uid:] + bytes([uid]))
    found = cache.get_many(range(11, 0, -1), 1)
    assert sorted(found) == list(range(1, 11))
    assert all(found[uid] == blob[uid:] + bytes([uid]) for uid in found)
    cache.close()
