"""Reply values and their wire form (RFC 5321 §4.2, RFC 2034, RFC 3463)."""

from __future__ import annotations

import pytest

from mailyard.proto.smtp import replies
from mailyard.proto.smtp.replies import Reply, render


def test_rfc5321_4_2_single_and_multi_line() -> None:
    assert render(Reply(250, "2.0.0", "OK")) == b"250 2.0.0 OK\r\n"
    assert render(Reply(250, None, ("a", "b", "c"))) == b"250-a\r\n250-b\r\n250 c\r\n"
    # RFC 2034 §4: the enhanced code goes on every line.
    two = render(Reply(550, "5.1.1", ("no", "such user")))
    assert two == b"550-5.1.1 no\r\n550 5.1.1 such user\r\n"
    assert render(Reply(250, None, "x"), ("PIPELINING",)) == b"250-x\r\n250 PIPELINING\r\n"


@pytest.mark.parametrize(
    ("code", "enhanced", "text"),
    [(199, None, "x"), (600, None, "x"), (250, "5.0.0", "x"), (250, "2.0", "x"),
     (250, None, "a\r\nb"), (250, None, ()), (250, None, ("ok", "b\n"))],
)
def test_invalid_replies_are_refused(code: int, enhanced: str | None, text: object) -> None:
    with pytest.raises(ValueError):
        Reply(code, enhanced, text)  # type: ignore[arg-type]


def test_named_constants_are_consistent() -> None:
    for name in replies.__all__:
        value = getattr(replies, name)
        if isinstance(value, Reply):
            assert name.startswith(f"R{value.code}_"), name
            assert value.enhanced is not None or value.code == 334
