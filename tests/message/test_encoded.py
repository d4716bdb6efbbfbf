"""mailyard.message.encoded: RFC 2047 words, charsets, transfer encodings, RFC 2231."""

from __future__ import annotations

import base64
import binascii
import email.header
import quopri

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.encoded import (
    decode_charset,
    decode_transfer,
    decode_words,
    merge_params,
    param_text,
)

# -- RFC 2047 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        # RFC 2047 §8, the examples of how white space between words is read.
        (b"(=?ISO-8859-1?Q?a?=)", "(a)"),
        (b"(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
        (b"(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        (b"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
        (b"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        (b"=?US-ASCII?Q?Keith_Moore?=", "Keith Moore"),
        (b"=?utf-8?b?SsO8cmdlbg==?=", "Jürgen"),
        (b"=?utf-8*en?q?Hi?=", "Hi"),  # RFC 2231 §5 language suffix
        (b"plain text", "plain text"),
        (b"caf\xc3\xa9", "café"),  # RFC 6532 raw UTF-8
        (b"caf\xe9", "café"),  # legacy 8-bit: windows-1252 guess
        (b"=?x-unknown?q?abc?=", "abc"),  # unknown charset: guessed
        (b"=?utf-8?q?broken", "=?utf-8?q?broken"),  # not a word: kept
        (b"=?utf-8?b?!!!?=", ""),  # garbage inside a word: decodes to nothing
    ],
)
def test_decode_words(raw: bytes, text: str) -> None:
    assert decode_words(raw) == text


def test_multi_octet_character_split_between_words() -> None:
    # "é" is C3 A9; a mailer that folds mid-character writes two words.
    assert decode_words(b"=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=") == "café"


def test_glued_words_are_decoded_too() -> None:
    assert decode_words(b"=?utf-8?q?a?==?utf-8?q?b?=") == "ab"


# A header value holds no line break (the stdlib encoder drops what
# str.splitlines breaks at).
# Lone surrogates cannot be encoded at all: they are not text a header holds.
_NO_BREAKS = st.characters(blacklist_characters="\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029",
                           blacklist_categories=("Cs",))


@given(st.text(alphabet=_NO_BREAKS, max_size=200))
def test_decode_words_round_trips_the_stdlib_encoder(text: str) -> None:
    encoded = email.header.Header(text, "utf-8", maxlinelen=76).encode().encode("ascii")
    assert decode_words(encoded) == text


@given(st.binary(max_size=300))
def test_decode_words_never_raises(raw: bytes) -> None:
    assert isinstance(decode_words(raw), str)


# -- charsets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        (b"Gr\xfc\xdfe", "iso-8859-1", "Grüße"),
        (b"\x93quoted\x94", "iso-8859-1", "\u201cquoted\u201d"),  # read as windows-1252
        (b"\xc3\xa9", None, "é"),
        (b"\xc3\xa9", "us-ascii", "é"),  # mislabelled 8-bit
        (b"\xe9", "us-ascii", "é"),
        (b"\xb0\xa1", "gb2312", "啊"),
        (b"\xff", "utf-8", "\ufffd"),
        (b"abc", "x-nonsense", "abc"),
        (b"abc", "base64", "abc"),  # a bytes codec is no charset
        (b"\\u0041", "unicode_escape", "\\u0041"),  # nor is an escape codec
    ],
)
def test_decode_charset(data: bytes, charset: str | None, text: str) -> None:
    assert decode_charset(data, charset) == text


@given(st.binary(max_size=100), st.text(max_size=30))
def test_decode_charset_never_raises(data: bytes, charset: str) -> None:
    assert isinstance(decode_charset(data, charset), str)


# -- transfer encodings ---------------------------------------------------------------


@pytest.mark.parametrize("encoding", [b"7bit", b"8bit", b"binary", b"", b"7BIT"])
def test_identity_encodings(encoding: bytes) -> None:
    assert decode_transfer(b"a\r\nb", encoding) == b"a\r\nb"


def test_unknown_encoding_is_reported() -> None:
    assert decode_transfer(b"begin 644 x\r\n", b"x-uuencode") is None


def test_base64_is_lenient() -> None:
    assert decode_transfer(b"aGVs\r\nbG8=\r\n", b"base64") == b"hello"
    assert decode_transfer(b"aGVsbG8", b"BASE64") == b"hello"  # padding missing
    assert decode_transfer(b"aGVs!!bG8=", b"base64") == b"hello"  # junk ignored
    assert decode_transfer(b"aGVsbG8gd", b"base64") == b"hello "  # a lone sextet is dropped


def test_quoted_printable() -> None:
    assert decode_transfer(b"caf=C3=A9 =\r\nau lait=3D", b"quoted-printable") == (
        "café au lait=".encode()
    )
    assert decode_transfer(b"=ZZ stays", b"quoted-printable") == b"=ZZ stays"


@given(st.binary(max_size=500))
def test_base64_round_trip(data: bytes) -> None:
    assert decode_transfer(base64.encodebytes(data), b"base64") == data


@given(st.binary(max_size=500))
def test_quoted_printable_round_trip(data: bytes) -> None:
    assert decode_transfer(quopri.encodestring(data), b"quoted-printable") == data


@given(st.binary(max_size=300), st.sampled_from([b"base64", b"quoted-printable", b"7bit", b"x"]))
def test_decode_transfer_never_raises(data: bytes, encoding: bytes) -> None:
    result = decode_transfer(data, encoding)
    assert result is None or isinstance(result, bytes)


def test_base64_binascii_agrees_on_clean_input() -> None:
    assert decode_transfer(b"AAECAwQF", b"base64") == binascii.a2b_base64(b"AAECAwQF")


# -- RFC 2231 -----------------------------------------------------------------------------


def test_rfc2231_example_is_merged_and_decoded() -> None:
    # RFC 2231 §4.1: continuations, some encoded, one quoted.
    raw = [
        (b"title*0*", b"us-ascii'en'This%20is%20even%20more%20"),
        (b"title*1*", b"%2A%2A%2Afun%2A%2A%2A%20"),
        (b"title*2", b"isn't it!"),
    ]
    merged = merge_params(raw)
    assert merged == (
        (b"title*", b"us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!"),
    )
    assert param_text(merged, b"title") == "This is even more ***fun*** isn't it!"


def test_plain_continuations_join_unencoded() -> None:
    # RFC 2231 §3
    merged = merge_params([(b"url*0", b"ftp://"), (b"url*1", b"cs.utk.edu/pub/moore/bulk")])
    assert merged == ((b"url", b"ftp://cs.utk.edu/pub/moore/bulk"),)


def test_sections_are_ordered_by_number_not_position() -> None:
    merged = merge_params([(b"a*1", b"y"), (b"a*0", b"x"), (b"a*2", b"z")])
    assert merged == ((b"a", b"xyz"),)


def test_single_extended_value() -> None:
    merged = merge_params([(b"filename*", b"utf-8''%E2%82%AC%20rates.txt")])
    assert merged == ((b"filename*", b"utf-8''%E2%82%AC%20rates.txt"),)
    assert param_text(merged, b"filename") == "€ rates.txt"


def test_plain_and_extended_forms_both_kept_extended_preferred() -> None:
    merged = merge_params([(b"filename", b"rates.txt"), (b"filename*", b"utf-8''%E2%82%AC.txt")])
    assert merged == ((b"filename", b"rates.txt"), (b"filename*", b"utf-8''%E2%82%AC.txt"))
    assert param_text(merged, b"filename") == "€.txt"


def test_first_occurrence_wins_and_order_is_kept() -> None:
    merged = merge_params([(b"b", b"1"), (b"a", b"2"), (b"b", b"3")])
    assert merged == ((b"b", b"1"), (b"a", b"2"))


def test_rfc2047_in_a_parameter_is_decoded_for_text() -> None:
    merged = merge_params([(b"name", b"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=")])
    assert param_text(merged, b"name") == "résumé.pdf"
    assert param_text(merged, b"missing") is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"a", b"a*", b"a*0", b"a*0*", b"a*1", b"a*1*", b"b", b"b*9"]),
            st.binary(max_size=20),
        ),
        max_size=12,
    )
)
def test_merge_params_never_raises_and_names_are_unique(raw: list[tuple[bytes, bytes]]) -> None:
    merged = merge_params(raw)
    names = [name for name, _ in merged]
    assert len(names) == len(set(names))
    for name, _ in merged:
        assert param_text(merged, name.rstrip(b"*")) is not None


@given(st.lists(st.text(max_size=8), min_size=1, max_size=6))
def test_plain_continuations_round_trip(pieces: list[str]) -> None:
    raw = [(b"p*%d" % index, piece.encode()) for index, piece in enumerate(pieces)]
    merged = merge_params(raw)
    assert param_text(merged, b"p") == decode_words("".join(pieces).encode())
