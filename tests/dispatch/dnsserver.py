"""A tiny authoritative DNS server on 127.0.0.1 for MX tests (UDP, dnspython).

``zone`` maps a lower-case absolute name (``"remote.test."``) to its records
by type (``{"MX": ["10 mx1.remote.test."], "A": ["127.0.0.2"]}``). A name
not in the zone is NXDOMAIN; a name without the asked type is an empty
NOERROR answer (NODATA). Every query is counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class DnsServer(asyncio.DatagramProtocol):
    zone: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    queries: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0
    _transport: asyncio.DatagramTransport | None = None

    async def start(self) -> DnsServer:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self,
                                                           local_addr=("127.0.0.1", 0))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # not a query: a real server drops it too
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        records = self.zone.get(name)
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif records.get(rdtype):
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", rdtype, records[rdtype]))
        assert self._transport is not None
        self._transport.sendto(response.to_wire(), addr)

