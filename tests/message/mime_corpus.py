"""Real-shaped messages shared by the MIME, ENVELOPE, section and SEARCH tests.

Each is written out by hand (CRLF line ends unless said otherwise) in the
shapes mailers really produce; the tests state the expected structures
from the RFC rules.
"""

from __future__ import annotations

import base64


def crlf(text: str) -> bytes:
    """Author messages with \\n; store them with CRLF, as SMTP delivers them."""
    return text.replace("\n", "\r\n").encode("utf-8")


SIMPLE = crlf(
    """Return-Path: <alice@example.org>
Received: from client.example (client.example [192.0.2.1])
\tby mx.example.test (mailyard) with ESMTP id 1A2B;
\tTue, 1 Dec 2026 17:00:00 +0000
Date: Tue, 1 Dec 2026 17:59:01 +0100
From: Alice Example <alice@example.org>
To: Bob <bob@example.test>
Subject: Lunch on
 Thursday?
Message-ID: <20261201165901.1234@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

Hi Bob,

shall we have lunch on Thursday? The café opens at noon.

Alice
"""
)

ALTERNATIVE = crlf(
    """Date: Wed, 2 Dec 2026 09:15:00 -0800
From: "Newsletter Team" <news@shop.example>
To: customer@example.test
Subject: =?UTF-8?Q?Winter_sale_=E2=9D=84?=
Message-ID: <n.42@shop.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1_alt"

This is a multi-part message in MIME format.

--b1_alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Everything is 20% off this week =E2=80=93 including gloves.
Visit us soon=21

--b1_alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PGJvZHk+PHA+RXZlcnl0aGluZyBpcyAyMCUgb2ZmIHRoaXMgd2VlayAmbmRhc2g7
IGluY2x1ZGluZyBnbG92ZXMuPC9wPjwvYm9keT48L2h0bWw+

--b1_alt--
"""
)

PDF_BYTES = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + bytes(200)


def _b64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


MIXED = crlf(
    f"""Date: Thu, 3 Dec 2026 12:00:00 +0000
From: Carol <carol@example.net>
To: Dave <dave@example.test>, Erin <erin@example.test>
Cc: records@example.net
Subject: Invoice and photo
Message-ID: <inv-7@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed;
 boundary="----=_Part_0_1234.5678"

------=_Part_0_1234.5678
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Please find the invoice attached.
------=_Part_0_1234.5678
Content-Type: application/pdf; name="invoice.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="invoice.pdf"
Content-Description: Invoice 7
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

{_b64_lines(PDF_BYTES)}
------=_Part_0_1234.5678
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <photo1@example.net>
Content-Disposition: inline;
 filename*0*=utf-8''%C3%A9t%C3%A9%20;
 filename*1="photo.png"
Content-Language: en, fr
Content-Location: http://example.net/photo.png

{_b64_lines(PNG_BYTES)}
------=_Part_0_1234.5678--
"""
)

NESTED = crlf(
    """From: frank@example.org
To: grace@example.test
Subject: Nested parts
Date: Fri, 4 Dec 2026 08:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

plain body
--inner
Content-Type: text/html

<p>html body</p>
--inner--

--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=data.bin

AAECAwQF
--outer--
"""
)

INNER_MESSAGE = """From: Heidi <heidi@example.com>
To: Ivan <ivan@example.com>
Subject: The original
Date: Sat, 5 Dec 2026 10:00:00 +0000
Message-ID: <orig-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=in2

--in2
Content-Type: text/plain

original text
--in2
Content-Type: application/zip
Content-Transfer-Encoding: base64

UEsDBA==
--in2--
"""

FORWARD = crlf(
    f"""From: Judy <judy@example.org>
To: Mallory <mallory@example.test>
Subject: Fwd: The original
Date: Sat, 5 Dec 2026 11:00:00 +0000
Message-ID: <fwd-1@example.org>
In-Reply-To: <orig-1@example.com>
References: <orig-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=fw1

--fw1
Content-Type: text/plain

See below.
--fw1
Content-Type: message/rfc822
Content-Disposition: attachment

{INNER_MESSAGE}
--fw1--
"""
)

ENCODED = crlf(
    """From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
To: =?UTF-8?B?SsO8cmdlbg==?= <juergen@example.de>, team: a@example.de, "B, C" <bc@example.de>;
Cc: undisclosed-recipients:;
Reply-To: <@relay1.example,@relay2.example:list@example.de>
Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=
 =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=
Date: 6 Dec 26 07:00 EST
Message-ID: <enc@example.de>

body
"""
)

MISSING_BOUNDARY = crlf(
    """From: broken@example.org
Subject: no boundary
Content-Type: multipart/mixed

--xyz
Content-Type: text/plain

one
--xyz--
"""
)

UNTERMINATED = crlf(
    """From: broken@example.org
Subject: unterminated
Content-Type: multipart/mixed; boundary=zz

--zz
Content-Type: text/plain

first
--zz
Content-Type: text/plain

second, and the sender died here
"""
)

BOUNDARY_NEVER_SEEN = crlf(
    """From: broken@example.org
Subject: absent boundary
Content-Type: multipart/mixed; boundary=nowhere

Just text, the parts never came.
"""
)

EIGHT_BIT = (
    "From: Jürgen Groß <jg@example.de>\r\nSubject: Grüße aus Köln\r\n".encode()
    + b"X-Legacy: caf\xe9\r\n"  # windows-1252 / latin-1, no label
    + b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    + b"Content-Transfer-Encoding: 8bit\r\n"
    + b"\r\n"
    + "Schöne Grüße\r\n".encode("latin-1")
)

LF_ONLY = MIXED.replace(b"\r\n", b"\n")

DIGEST = crlf(
    """From: list@example.org
Subject: Digest 12
Content-Type: multipart/digest; boundary=dg

--dg

From: one@example.org
Subject: first

first digest entry
--dg

From: two@example.org
Subject: second

second digest entry
--dg--
"""
)

# The complex message of RFC 9051 §6.4.5.1; each part's content names its
# own part number.
SECTIONS_EXAMPLE = crlf(
    """From: sections@example.org
Subject: RFC 9051 section example
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=top

--top
Content-Type: text/plain

1 text
--top
Content-Type: application/octet-stream

2 data
--top
Content-Type: message/rfc822

Subject: part 3 message
Content-Type: multipart/mixed; boundary=m3

--m3
Content-Type: text/plain

3.1 text
--m3
Content-Type: application/octet-stream

3.2 data
--m3--

--top
Content-Type: multipart/mixed; boundary=p4

--p4
Content-Type: image/gif

4.1 gif
--p4
Content-Type: message/rfc822

Subject: part 4.2 message
Content-Type: multipart/mixed; boundary=m42

--m42
Content-Type: text/plain

4.2.1 text
--m42
Content-Type: multipart/alternative; boundary=a422

--a422
Content-Type: text/plain

4.2.2.1 text
--a422
Content-Type: text/richtext

4.2.2.2 richtext
--a422--
--m42--
--p4--
--top--
"""
)


def huge_header(fields: int = 5000) -> bytes:
    """A message whose header holds ``fields`` Received: fields."""
    received = b"".join(
        b"Received: from relay%d.example (relay%d.example [192.0.2.%d])\r\n"
        b"\tby relay%d.example with ESMTP id %d; Tue, 1 Dec 2026 17:00:00 +0000\r\n"
        % (i, i, i % 250, i + 1, i)
        for i in range(fields)
    )
    return received + b"From: far@example.org\r\nSubject: far away\r\n\r\nbody\r\n"


def large_multipart(size: int = 100_000) -> bytes:
    """About ``size`` octets: text, html and a base64 attachment."""
    text = ("The quick brown fox jumps over the lazy dog. " * 30 + "\n") * (size // 4000)
    html = "<p>" + text.replace("\n", "</p>\n<p>") + "</p>"
    blob = _b64_lines(bytes(range(256)) * (size // 1024))
    return crlf(
        f"""From: big@example.org
To: you@example.test
Subject: large
Content-Type: multipart/mixed; boundary=BIG

--BIG
Content-Type: multipart/alternative; boundary=ALT

--ALT
Content-Type: text/plain; charset=utf-8

{text}
--ALT
Content-Type: text/html; charset=utf-8

{html}
--ALT--
--BIG
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

{blob}
--BIG--
"""
    )


CORPUS: dict[str, bytes] = {
    "simple": SIMPLE,
    "alternative": ALTERNATIVE,
    "mixed": MIXED,
    "nested": NESTED,
    "forward": FORWARD,
    "encoded": ENCODED,
    "missing_boundary": MISSING_BOUNDARY,
    "unterminated": UNTERMINATED,
    "boundary_never_seen": BOUNDARY_NEVER_SEEN,
    "eight_bit": EIGHT_BIT,
    "lf_only": LF_ONLY,
    "digest": DIGEST,
    "sections_example": SECTIONS_EXAMPLE,
}
