"""mailyard.message.threads: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.envelope import Envelope
from mailyard.message.threads import (
    Thread,
    ThreadAlgorithm,
    ThreadItem,
    ThreadMark,
    message_ids,
    thread,
    thread_tokens,
)

REFS = ThreadAlgorithm.REFERENCES
ORDERED = ThreadAlgorithm.ORDEREDSUBJECT


def msg(
    number: int,
    subject: str,
    mid: str | None,
    *,
    refs: str | None = None,
    irt: str | None = None,
    hour: int | None = None,
) -> ThreadItem:
    date = None if hour is None else b"1 Jan 2026 %02d:00:00 +0000" % hour
    envelope = Envelope(
        date=date,
        subject=subject.encode(),
        from_=(),
        sender=(),
        reply_to=(),
        to=(),
        cc=(),
        bcc=(),
        in_reply_to=None if irt is None else irt.encode(),
        message_id=None if mid is None else mid.encode(),
    )
    return ThreadItem(number, number, envelope, None if refs is None else refs.encode(), 0.0)


def render(threads: tuple[Thread, ...]) -> str:
    """The RFC 5256 §4 text, from thread_tokens: a space only after a number."""
    out: list[str] = []
    after_number = False
    for token in thread_tokens(threads):
        if token is ThreadMark.CLOSE:
            out.append(")")
        else:
            out.append(
                (" " if after_number else "") + ("(" if token is ThreadMark.OPEN else str(token))
            )
        after_number = isinstance(token, int)
    return "".join(out)


def test_tokens_render_the_rfc_example() -> None:
    threads = (
        Thread((2,)),
        Thread((3, 6), (Thread((4, 23)), Thread((44, 7, 96)))),
    )
    assert render(threads) == "(2)(3 6 (4 23)(44 7 96))"
    assert render((Thread((), (Thread((3,)), Thread((5,)))),)) == "((3)(5))"


def test_message_ids_are_normalised() -> None:
    # RFC 5256 §3: the two forms are the same Message ID.
    assert message_ids(b'<"01KF8JCEOCBS0045PS"@xxx.yyy.com>') == message_ids(
        b"<01KF8JCEOCBS0045PS@xxx.yyy.com>"
    )
    assert message_ids(b"<a@b> <c@d>\r\n <e @f>") == ("a@b", "c@d", "e@f")
    assert message_ids(b"<> junk <x@y> (comment)") == ("x@y",)
    assert message_ids(None) == ()


# -- ORDEREDSUBJECT --------------------------------------------------------------------


def test_ordered_subject() -> None:
    items = [
        msg(1, "hello", "<1@x>", hour=10),
        msg(2, "other", "<2@x>", hour=9),
        msg(3, "Re: hello", "<3@x>", hour=12),
        msg(4, "Re: hello", "<4@x>", hour=11),
        msg(5, "Re: hello", "<5@x>", hour=13),
        msg(6, "Re: other", "<6@x>", hour=14),
    ]
    # Threads by the sent date of their first message; inside, by date;
    # all later messages are children of the first (no grandchildren).
    assert render(thread(items, ORDERED)) == "(2 6)(1 (4)(3)(5))"


# -- REFERENCES --------------------------------------------------------------------------


def test_reply_chain_from_references() -> None:
    items = [
        msg(1, "topic", "<a@x>", hour=1),
        msg(2, "Re: topic", "<b@x>", refs="<a@x>", hour=2),
        msg(3, "Re: topic", "<c@x>", refs="<a@x> <b@x>", hour=3),
        msg(4, "Re: topic", "<d@x>", refs="<a@x>", hour=4),
    ]
    assert render(thread(items, REFS)) == "(1 (2 3)(4))"


def test_in_reply_to_when_there_is_no_references() -> None:
    items = [
        msg(1, "topic", "<a@x>", hour=1),
        msg(2, "Re: topic", "<b@x>", irt="<a@x> (Alice's message of Monday)", hour=2),
    ]
    assert render(thread(items, REFS)) == "(1 2)"


def test_siblings_of_a_missing_parent_share_a_dummy() -> None:
    # RFC 5256 §4 example "((3)(5))": the parent is not among the messages.
    items = [
        msg(3, "first", "<3@x>", refs="<gone@x>", hour=1),
        msg(4, "unrelated", "<4@x>", hour=2),
        msg(5, "second", "<5@x>", refs="<gone@x>", hour=3),
    ]
    assert render(thread(items, REFS)) == "((3)(5))(4)"


def test_dummy_with_one_child_is_pruned() -> None:
    items = [msg(1, "x", "<1@x>", refs="<gone@x> <also-gone@x>", hour=1)]
    assert render(thread(items, REFS)) == "(1)"


def test_dummies_below_the_root_are_promoted() -> None:
    items = [
        msg(1, "x", "<1@x>", hour=1),
        msg(2, "Re: x", "<2@x>", refs="<1@x> <gone@x>", hour=2),
        msg(3, "Re: x", "<3@x>", refs="<1@x> <gone@x>", hour=3),
    ]
    assert render(thread(items, REFS)) == "(1 (2)(3))"


def test_subject_merging() -> None:
    items = [
        msg(1, "plans", "<1@x>", hour=1),
        msg(2, "Re: plans", "<2@x>", hour=2),  # a reply without references
        msg(3, "news", "<3@x>", hour=3),
        msg(4, "news", "<4@x>", hour=4),  # same subject, neither a reply
    ]
    # 2 joins 1 as its child; 3 and 4 become siblings under a new dummy.
    assert render(thread(items, REFS)) == "(1 2)((3)(4))"


def test_reply_first_in_time_still_goes_under_the_original() -> None:
    items = [
        msg(1, "Re: plans", "<1@x>", hour=1),
        msg(2, "plans", "<2@x>", hour=2),
    ]
    assert render(thread(items, REFS)) == "(2 1)"


def test_duplicate_message_ids_count_once() -> None:
    items = [
        msg(1, "a", "<same@x>", hour=1),
        msg(2, "b", "<same@x>", hour=2),
        msg(3, "Re: a", "<3@x>", refs="<same@x>", hour=3),
    ]
    assert render(thread(items, REFS)) == "(1 3)(2)"


def test_loops_are_refused() -> None:
    items = [
        msg(1, "a", "<1@x>", refs="<2@x>", hour=1),
        msg(2, "b", "<2@x>", refs="<1@x>", hour=2),
        msg(3, "c", "<3@x>", refs="<3@x>", hour=3),  # itself
    ]
    result = render(thread(items, REFS))
    assert sorted(int(n) for n in result.replace("(", " ").replace(")", " ").split()) == [1, 2, 3]


def test_truncated_references_relink_the_parent() -> None:
    # RFC 5256 §3 (1)(B): a later, fuller References wins over an earlier guess.
    items = [
        msg(1, "t", "<1@x>", hour=1),
        msg(2, "Re: t", "<2@x>", refs="<1@x>", hour=2),
        msg(3, "Re: t", "<3@x>", refs="<2@x>", hour=3),
        msg(4, "Re: t", "<4@x>", refs="<1@x> <2@x> <3@x>", hour=4),
    ]
    assert render(thread(items, REFS)) == "(1 2 3 4)"


def test_deep_thread_is_fast_and_needs_no_recursion() -> None:
    count = 5000
    ids = [f"<m{i}@x>" for i in range(count)]
    items = [
        msg(
            i + 1,
            "Re: deep" if i else "deep",
            ids[i],
            refs=" ".join(ids[max(0, i - 20) : i]) or None,
            hour=None,
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    (only,) = thread(items, REFS)
    elapsed = time.perf_counter() - started
    assert only.members == tuple(range(1, count + 1))
    print(f"\nTHREAD=REFERENCES of a {count}-deep thread: {elapsed * 1000:.1f} ms")


def _all_numbers(threads: tuple[Thread, ...]) -> list[int]:
    return [t for t in thread_tokens(threads) if isinstance(t, int)]


def _shape_ok(threads: tuple[Thread, ...], top: bool = True) -> bool:
    for item in threads:
        if len(item.children) == 1:
            return False
        if not item.members and not (top and item.children):
            return False  # a dummy only at the top, with children
        if not _shape_ok(item.children, top=False):
            return False
    return True


_GRAPH = st.lists(
    st.tuples(
        st.sampled_from(["a", "Re: a", "b", "Fwd: b", "", "[x] a"]),
        st.one_of(st.none(), st.integers(0, 8)),
        st.lists(st.integers(0, 10), max_size=4),
        st.one_of(st.none(), st.integers(0, 23)),
    ),
    max_size=12,
)


@given(_GRAPH, st.sampled_from(list(ThreadAlgorithm)))
def test_every_message_appears_once_in_a_well_shaped_result(
    graph: list[tuple[str, int | None, list[int], int | None]], algorithm: ThreadAlgorithm
) -> None:
    items = [
        msg(i + 1, subject, None if mid is None else f"<{mid}@x>",
            refs=" ".join(f"<{r}@x>" for r in refs) or None, hour=hour)
        for i, (subject, mid, refs, hour) in enumerate(graph)
    ]  # fmt: skip
    threads = thread(items, algorithm)
    assert sorted(_all_numbers(threads)) == list(range(1, len(items) + 1))
    assert _shape_ok(threads)
