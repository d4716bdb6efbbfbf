"""Remote delivery end to end on loopback: the queue, the pass runner, real
sockets to a sink SMTP server, real DNS queries to a server on 127.0.0.1.

Each test commits a message with the queue's writer, runs passes with a
fake clock and checks the queue's records, what the sink received and the
bounces (parsed as RFC 3464 reports). Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mailyard.dispatch.process import Verdict
from mailyard.proto.smtp import Features, Reply, SmtpLimits
from mailyard.queue import schedule
from mailyard.queue.store import RecipientState
from tests.dispatch.conftest import (
    BIRTH,
    CONTENT,
    Site,
    delivered,
    delivery_status,
    mail_in,
    parse_mail,
)
from tests.dispatch.dnsserver import DnsServer
from tests.dispatch.remote_helpers import NOW, closed_port, remote_site
from tests.dispatch.sink import Sink, sinks_on_one_port

ALICE = "alice@example.test"
SENDER = "sender@example.org"
CAROL = "carol@remote.test"


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def states(site: Site, qid: str) -> list[RecipientState]:
    return [s.state for s in site.queue.load(qid).statuses]


def zone_for(mx: dict[str, list[str]], hosts: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    zone: dict[str, dict[str, list[str]]] = {f"{d}.": {"MX": r} for d, r in mx.items()}
    for host, address in hosts.items():
        zone.setdefault(f"{host}.", {})["A"] = [address]
    return zone


def test_static_route_delivers_the_message_and_empties_the_queue(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                qid = site.enqueue([CAROL])
                verdict = await remote.run(qid)
                assert verdict == Verdict(finished=True)
        finally:
            await sink.stop()
        (txn,) = sink.transactions
        assert (txn.sender, txn.recipients) == (SENDER, [CAROL])
        assert txn.data == CONTENT  # dot-stuffed on the way, byte-exact on arrival
        # RFC 1870 SIZE and RFC 6152 BODY=8BITMIME (CONTENT has 8-bit octets).
        assert txn.params == {"SIZE": str(len(CONTENT)), "BODY": "8BITMIME"}
        assert site.queue.list_ids() == []

    run(scenario)


def test_mx_records_from_a_dns_server_on_loopback(site: Site) -> None:
    async def scenario() -> None:
        (sink,) = await sinks_on_one_port(["127.0.0.2"])
        dns = await DnsServer(zone_for({"remote.test": ["10 mx1.remote.test."]},
                                       {"mx1.remote.test": "127.0.0.2"})).start()
        try:
            table = {"smtp_port": sink.port, "resolver": [dns.nameserver]}
            async with remote_site(site, table) as remote:
                verdict = await remote.run(site.enqueue([CAROL]))
        finally:
            await sink.stop()
            dns.stop()
        assert verdict.finished
        assert sink.delivered_to() == [CAROL]
        assert ("remote.test.", "MX") in dns.queries
        assert ("mx1.remote.test.", "A") in dns.queries

    run(scenario)


def test_the_next_mx_is_tried_when_the_first_refuses_connections(site: Site) -> None:
    async def scenario() -> None:
        (sink,) = await sinks_on_one_port(["127.0.0.3"])
        # 127.0.0.4 listens on nothing: connection refused, then the backup MX.
        dns = await DnsServer(zone_for(
            {"remote.test": ["10 mx1.remote.test.", "20 mx2.remote.test."]},
            {"mx1.remote.test": "127.0.0.4", "mx2.remote.test": "127.0.0.3"})).start()
        try:
            table = {"smtp_port": sink.port, "resolver": [dns.nameserver]}
            async with remote_site(site, table) as remote:
                verdict = await remote.run(site.enqueue([CAROL]))
                stats = remote.delivery.stats
        finally:
            await sink.stop()
            dns.stop()
        assert verdict.finished and sink.delivered_to() == [CAROL]
        assert (stats.connections, stats.connect_failures) == (2, 1)

    run(scenario)


def test_without_mx_the_domain_address_is_the_mail_host(site: Site) -> None:
    # RFC 5321 §5.1: no MX records, so the domain's A record (implicit MX).
    async def scenario() -> None:
        (sink,) = await sinks_on_one_port(["127.0.0.2"])
        dns = await DnsServer({"remote.test.": {"A": ["127.0.0.2"]}}).start()
        try:
            table = {"smtp_port": sink.port, "resolver": [dns.nameserver]}
            async with remote_site(site, table) as remote:
                verdict = await remote.run(site.enqueue([CAROL]))
        finally:
            await sink.stop()
            dns.stop()
        assert verdict.finished and sink.delivered_to() == [CAROL]

    run(scenario)


def test_a_5xx_bounces_into_the_senders_maildir_with_remote_host_and_reply(site: Site) -> None:
    async def scenario() -> None:
        (sink,) = await sinks_on_one_port(["127.0.0.2"])
        sink.rcpt[CAROL] = [Reply(550, "5.1.1", "no such user here")]
        dns = await DnsServer(zone_for({"remote.test": ["10 mx1.remote.test."]},
                                       {"mx1.remote.test": "127.0.0.2"})).start()
        try:
            table = {"smtp_port": sink.port, "resolver": [dns.nameserver]}
            async with remote_site(site, table) as remote:
                qid = site.enqueue([CAROL], sender=ALICE)
                verdict = await remote.run(qid)
                assert verdict.finished and len(verdict.injected) == 1
                assert await remote.run(verdict.injected[0]) == Verdict(finished=True)
        finally:
            await sink.stop()
            dns.stop()
        assert sink.transactions == [] and site.queue.list_ids() == []
        (bounce,) = mail_in(site.maildir(ALICE))
        report = parse_mail(bounce.split(b"\r\n", 2)[2])  # after Return-Path, Delivered-To
        _, failed = delivery_status(report)
        assert failed["final-recipient"] == f"rfc822; {CAROL}"
        assert failed["action"] == "failed" and failed["status"] == "5.1.1"
        assert failed["remote-mta"] == "dns; mx1.remote.test"
        assert failed["diagnostic-code"] == "smtp; 550 5.1.1 no such user here"
        assert bounce.startswith(b"Return-Path: <>\r\n")

    run(scenario)


def test_null_mx_is_a_permanent_5_1_10(site: Site) -> None:
    async def scenario() -> None:
        dns = await DnsServer({"nomail.test.": {"MX": ["0 ."]}}).start()
        try:
            async with remote_site(site, {"resolver": [dns.nameserver]}) as remote:
                qid = site.enqueue(["bob@nomail.test"], sender=ALICE)
                verdict = await remote.run(qid)
                await remote.drain(verdict.injected[0])
                assert remote.delivery.stats.connections == 0
        finally:
            dns.stop()
        (bounce,) = mail_in(site.maildir(ALICE))
        _, failed = delivery_status(parse_mail(bounce.split(b"\r\n", 2)[2]))
        assert failed["status"] == "5.1.10"
        assert "null MX" in failed["diagnostic-code"]

    run(scenario)


def test_a_domain_that_does_not_exist_bounces_5_1_2(site: Site) -> None:
    async def scenario() -> None:
        dns = await DnsServer({}).start()
        try:
            async with remote_site(site, {"resolver": [dns.nameserver]}) as remote:
                verdict = await remote.run(site.enqueue(["x@nowhere.test"]))
        finally:
            dns.stop()
        assert verdict.finished and len(verdict.injected) == 1
        message = site.queue.load(verdict.injected[0])
        assert message.envelope.sender == "" and message.envelope.recipients == (SENDER,)

    run(scenario)


def test_three_recipients_on_two_hosts_get_exactly_their_states(site: Site) -> None:
    one_ok, one_bad, two_later = "r1@one.test", "r2@one.test", "r3@two.test"

    async def scenario() -> None:
        sink_a, sink_b = await sinks_on_one_port(["127.0.0.2", "127.0.0.3"])
        sink_a.rcpt[one_bad] = [Reply(550, "5.1.1", "unknown user")]
        sink_b.rcpt[two_later] = [Reply(451, "4.3.0", "try later"), Reply(250, "2.1.5", "ok")]
        dns = await DnsServer(zone_for(
            {"one.test": ["10 mx.one.test."], "two.test": ["10 mx.two.test."]},
            {"mx.one.test": "127.0.0.2", "mx.two.test": "127.0.0.3"})).start()
        try:
            table = {"smtp_port": sink_a.port, "resolver": [dns.nameserver]}
            async with remote_site(site, table) as remote:
                qid = site.enqueue([one_ok, one_bad, two_later])
                first = await remote.run(qid)
                assert not first.finished and len(first.injected) == 1
                assert first.next_attempt == schedule.next_attempt(BIRTH, NOW, 20)
                assert states(site, qid) == [RecipientState.DELIVERED, RecipientState.FAILED,
                                             RecipientState.PENDING]
                last = site.queue.load(qid).statuses[2].last_error
                assert last is not None and "451 4.3.0 try later" in last
                bounce = site.queue.load(first.injected[0])
                assert bounce.envelope.recipients == (SENDER,)
                remote.clock.now = first.next_attempt
                assert (await remote.run(qid)).finished
        finally:
            for sink in (sink_a, sink_b):
                await sink.stop()
            dns.stop()
        # One connection per host and pass; r1 got the message once.
        assert [t.recipients for t in sink_a.transactions] == [[one_ok]]
        assert len(sink_a.connections) == 1
        assert [t.recipients for t in sink_b.transactions] == [[two_later]]
        assert len(sink_b.connections) == 2

    run(scenario)


def test_pipelining_puts_mail_rcpt_and_data_in_one_packet(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        try:
            routes = {"": f"127.0.0.1:{sink.port}"}  # the default route: a smarthost
            async with remote_site(site, {"routes": routes}) as remote:
                await remote.run(site.enqueue([CAROL, "dave@else.test"]))
        finally:
            await sink.stop()
        (conn,) = sink.connections
        (packet,) = [read for read in conn.reads if b"MAIL FROM" in read]
        assert packet == (b"MAIL FROM:<sender@example.org> SIZE=%d BODY=8BITMIME\r\n"
                          b"RCPT TO:<carol@remote.test>\r\nRCPT TO:<dave@else.test>\r\n"
                          b"DATA\r\n" % len(CONTENT))
        assert sink.delivered_to() == [CAROL, "dave@else.test"]

    run(scenario)


def test_a_message_over_the_servers_size_bounces_before_sending(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink(limits=SmtpLimits(max_message_size=100)).start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                verdict = await remote.run(site.enqueue([CAROL], sender=ALICE))
                await remote.drain(verdict.injected[0])
        finally:
            await sink.stop()
        assert not any(b"MAIL FROM" in read for c in sink.connections for read in c.reads)
        (bounce,) = mail_in(site.maildir(ALICE))
        _, failed = delivery_status(parse_mail(bounce.split(b"\r\n", 2)[2]))
        assert failed["status"] == "5.3.4"
        assert "exceeds the 100 octets" in failed["diagnostic-code"]

    run(scenario)


def test_an_smtputf8_message_to_a_server_without_it_bounces_with_the_reason(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink(features=Features(smtputf8=False, chunking=False)).start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                verdict = await remote.run(site.enqueue(["jörg@remote.test"], sender=ALICE))
                await remote.drain(verdict.injected[0])
        finally:
            await sink.stop()
        (bounce,) = mail_in(site.maildir(ALICE))
        _, failed = delivery_status(parse_mail(bounce.split(b"\r\n", 2)[2]))
        assert failed["status"] == "5.6.7"
        assert "SMTPUTF8" in failed["diagnostic-code"]

    run(scenario)


def test_an_smtputf8_message_goes_with_the_parameter_where_offered(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                assert (await remote.run(site.enqueue(["jörg@remote.test"]))).finished
        finally:
            await sink.stop()
        (txn,) = sink.transactions
        assert txn.recipients == ["jörg@remote.test"] and "SMTPUTF8" in txn.params

    run(scenario)


def test_an_unreachable_host_is_backed_off_without_a_busy_loop(site: Site) -> None:
    async def scenario() -> None:
        port = closed_port()
        table = {"routes": {"remote.test": f"127.0.0.1:{port}"}, "per_destination": 1}
        async with remote_site(site, table) as remote:
            ids = [site.enqueue([CAROL], CONTENT + b"%d\r\n" % n) for n in range(5)]
            verdicts = [await remote.run(qid) for qid in ids]
            stats = remote.delivery.stats
            # One refused connection; the other four never touched the network.
            assert (stats.connections, stats.connect_failures, stats.skipped) == (1, 1, 4)
            due = schedule.next_attempt(BIRTH, NOW, 20)
            assert [v.next_attempt for v in verdicts] == [due] * 5
            last = site.queue.load(ids[1]).statuses[0].last_error or ""
            assert last.startswith("4.4.1") and "backoff" in last
            # Passes before the remote retry time leave the remote recipient alone.
            remote.clock.now = NOW + 120
            early = await remote.run(ids[0])
            assert early.next_attempt == due and stats.connections == 1
            # At the retry time the backoff is over: one attempt, again refused.
            remote.clock.now = due
            for qid in ids:
                await remote.run(qid)
            assert (stats.connections, stats.skipped) == (2, 8)
        assert all(s == [RecipientState.PENDING] for s in (states(site, q) for q in ids))

    run(scenario)


def test_after_the_queue_lifetime_a_deferred_remote_recipient_bounces(site: Site) -> None:
    async def scenario() -> None:
        port = closed_port()
        async with remote_site(site, {"routes": {"remote.test": f"127.0.0.1:{port}"}}) as r:
            qid = site.enqueue([CAROL])
            r.clock.now = BIRTH + 7 * 86400 + 1
            verdict = await r.run(qid)
        assert verdict.finished and len(verdict.injected) == 1
        _, failed = delivery_status(parse_mail(_body(site, verdict.injected[0])))
        assert failed["status"] == "4.4.7" and "queue lifetime" in failed["diagnostic-code"]

    run(scenario)


def _body(site: Site, qid: str) -> bytes:
    with site.queue.open_body(qid) as body:
        return body.read()


def test_local_and_remote_recipients_of_one_message(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                verdict = await remote.run(site.enqueue([ALICE, CAROL, "bob@example.test"]))
        finally:
            await sink.stop()
        assert verdict == Verdict(finished=True)
        assert mail_in(site.maildir(ALICE)) == [delivered(SENDER, ALICE)]
        assert sink.delivered_to() == [CAROL]
        assert site.queue.list_ids() == []

    run(scenario)


def test_a_large_message_is_streamed_from_the_queue_file(site: Site) -> None:
    # Over INLINE_BODY: read in chunks while sending; the 8-bit octet is far in.
    content = b"Subject: big\r\n\r\n" + b"y" * 70 + b"\r\n"
    content += (b"." + b"z" * 69 + b"\r\n") * 20000 + b"caf\xc3\xa9\r\n"

    async def scenario() -> None:
        sink = await Sink().start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                assert (await remote.run(site.enqueue([CAROL], content))).finished
        finally:
            await sink.stop()
        (txn,) = sink.transactions
        assert txn.data == content and txn.params["BODY"] == "8BITMIME"

    run(scenario)


def test_bdat_when_chunking_is_configured(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink(features=Features(chunking=True)).start()
        try:
            table = {"routes": {"remote.test": f"127.0.0.1:{sink.port}"}, "chunking": True}
            async with remote_site(site, table) as remote:
                assert (await remote.run(site.enqueue([CAROL]))).finished
        finally:
            await sink.stop()
        (txn,) = sink.transactions
        assert txn.data == CONTENT
        assert any(b"BDAT 0 LAST" in read for read in sink.connections[0].reads)

    run(scenario)


def test_a_host_that_greets_with_our_own_name_is_a_loop(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink(hostname="mx.example.test").start()  # our HOSTNAME
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                verdict = await remote.run(site.enqueue([CAROL]))
        finally:
            await sink.stop()
        assert verdict.finished and sink.transactions == []
        _, failed = delivery_status(parse_mail(_body(site, verdict.injected[0])))
        assert failed["status"] == "5.4.6" and "loop" in failed["diagnostic-code"]

    run(scenario)
