"""One delivery pass over one queued message (qmail-send's per-message work).

A pass has up to two stages, one per channel, run one after the other so
that only one writer touches a message's state at a time:

* ``process(qid, now)``, the local stage (in a lspawn child): load the
  message, route each pending recipient (dispatch/recipients.py: mailbox,
  forward, SRS bounce, refused, unknown, remote), deliver the local ones,
  queue the forwarded copies, and hand back the remote ones
  (``Verdict.remote``) — or, while remote delivery is held, mark them held;
* ``finish_remote(message, results, now)``, after the worker's remote
  delivery (channel.py): record what the remote hosts said.

Both end the same way (``_conclude``): checkpoint, queue the bounce for
permanent failures (and a delay warning when one is due), mark those
recipients failed, then complete the message or say when to try again —
10 for local, 20 for remote, qmail's chanskip.

Order matters for "nothing lost": a bounce is committed to the queue
*before* the recipient is marked failed, and a recipient is marked done only
after its delivery is durable (or the remote host said 250). A crash in
between repeats work (at-least-once), it never drops it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from mailyard import fsio
from mailyard.config import Config
from mailyard.directory.store import Directory
from mailyard.dispatch.forward import Forwarder, SrsSettings
from mailyard.dispatch.local import LocalDelivery
from mailyard.dispatch.notify import (
    HEADER_PEEK,
    KIND_BOUNCE,
    KIND_DOUBLE,
    KIND_KEY,
    Notifier,
)
from mailyard.dispatch.recipients import RecipientRouter
from mailyard.dispatch.result import Delivered, DeliveryResult, PermFail, TempFail
from mailyard.dispatch.settings import RemoteMode, RemoteSettings, settings_from_config
from mailyard.dispatch.srskey import ensure_secret
from mailyard.dispatch.vacation import Vacationer
from mailyard.log import event
from mailyard.message.dsn import FailedRecipient
from mailyard.message.headers import read_header_block
from mailyard.queue import schedule
from mailyard.queue.store import (
    Outcome,
    Queue,
    QueueCorrupt,
    QueuedMessage,
    QueueNotFound,
    RecipientState,
)

__all__ = [
    "DELAY_WARNED",
    "HELD_REMOTE",
    "KIND_BOUNCE",
    "KIND_DOUBLE",
    "KIND_KEY",
    "MessageProcessor",
    "Verdict",
]

HELD_REMOTE: Final = "remote delivery is held (delivery.remote = \"hold\")"
# Appended to a deferred recipient's record once its sender was warned, and
# carried on by every later record: the warning goes out once per recipient.
DELAY_WARNED: Final = " [delay warning sent]"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the manager does next with a message."""

    finished: bool
    next_attempt: float | None = None
    injected: tuple[str, ...] = ()  # bounces, warnings, forwards, replies queued in this pass
    remote: tuple[int, ...] = ()  # recipient indices for the remote channel


@dataclass
class _Pass:
    outcomes: list[tuple[int, Outcome]] = field(default_factory=list)
    failed: list[FailedRecipient] = field(default_factory=list)
    failed_indices: list[tuple[int, str]] = field(default_factory=list)
    deferred: dict[int, FailedRecipient] = field(default_factory=dict)
    temporary: bool = False
    held: bool = False  # recipients stay pending without a retry time
    remote: list[int] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)  # forwards and vacation replies


@dataclass
class MessageProcessor:
    queue: Queue
    directory: Directory
    mail_root: str
    hostname: str
    postmaster: str
    lifetime: float
    retry_skip_local: int
    remote_mode: str  # "hold" or "deliver" (RemoteMode's values)
    syncer: fsio.DirSyncer | None = None
    retry_skip_remote: int = 20
    delay_warning: float = 0.0  # seconds; 0 = never warn
    srs: SrsSettings | None = None  # None: no SRS rewriting or reversal
    quota_grace: float = 86400.0  # [quota] grace
    quota_warn_percent: int = 90  # [quota] warn_percent
    _router: RecipientRouter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        local = LocalDelivery(self.mail_root, self.hostname, self.syncer,
                              grace=self.quota_grace, warn_percent=self.quota_warn_percent)
        self._router = RecipientRouter(
            self.queue, local, Forwarder(self.queue, self.hostname, self.srs),
            Vacationer(self.queue, self.directory, self.hostname),
        )

    @classmethod
    def from_config(
        cls, config: Config, directory: Directory, queue: Queue,
        syncer: fsio.DirSyncer | None = None, remote: RemoteSettings | None = None,
    ) -> MessageProcessor:
        remote = remote or settings_from_config(config)
        forwarding = config.forwarding
        state_dir = config.state_dir
        srs = SrsSettings(
            enabled=forwarding.srs, domain=forwarding.srs_domain or config.hostname,
            max_age_days=forwarding.srs_max_age_days,
            load_secret=lambda: ensure_secret(state_dir),
        )
        return cls(
            queue=queue,
            directory=directory,
            mail_root=config.path("mail"),
            hostname=config.hostname,
            postmaster=config.postmaster_address,
            lifetime=float(config.queue.lifetime),
            retry_skip_local=config.queue.retry_skip_local,
            remote_mode=remote.mode.value,
            syncer=syncer,
            retry_skip_remote=remote.retry_skip,
            delay_warning=remote.delay_warning,
            srs=srs,
            quota_grace=config.quota.grace_seconds,
            quota_warn_percent=config.quota.warn_percent,
        )

    @property
    def notifier(self) -> Notifier:
        return Notifier(self.queue, self.hostname, self.postmaster, self.lifetime)

    def load(self, qid: str) -> QueuedMessage | None:
        """The message, or None when there is nothing to deliver (gone, corrupt, no id)."""
        try:
            return self.queue.load(qid)
        except QueueNotFound:
            return None
        except QueueCorrupt as exc:
            # Leave it for the operator (`mailyard queue show/delete`); never retry in a loop.
            event("queue.corrupt", level=logging.ERROR, id=qid, error=str(exc))
            return None
        except ValueError:
            # Not a queue id at all (a confused trigger): nothing to retry.
            event("queue.bad_id", level=logging.WARNING, id=qid[:40])
            return None

    def process(self, qid: str, now: float) -> Verdict:
        """The local stage of a pass (see the module doc)."""
        message = self.load(qid)
        if message is None:
            return Verdict(finished=True)
        work = self._deliver_pending(message, now)
        return self._conclude(message, work, now, self.retry_skip_local)

    def finish_remote(self, message: QueuedMessage, results: Mapping[int, DeliveryResult],
                      now: float) -> Verdict:
        """Record the remote stage's results; recipients without one were not
        attempted and stay as they were."""
        work = _Pass()
        expired = schedule.expired(message.envelope.birth, now, self.lifetime)
        for index in sorted(results):
            address = message.envelope.recipients[index]
            result = self._expire(results[index], expired)
            self._log_attempt(message.id, address, result, message.envelope.birth)
            self._note(work, index, address, result)
        work.held = any(s.state is RecipientState.PENDING and s.index not in results
                        for s in message.statuses)
        return self._conclude(message, work, now, self.retry_skip_remote)

    # -- the end of a stage ------------------------------------------------

    def _conclude(self, message: QueuedMessage, work: _Pass, now: float, skip: int) -> Verdict:
        qid = message.id
        injected = tuple(work.injected) + self._warn_if_due(message, work, now)
        outcomes = work.outcomes
        if work.failed and outcomes:
            # Checkpoint this pass's deliveries before queueing the bounce: if
            # the bounce cannot be queued (disk full), the retry must not
            # deliver them a second time.
            self.queue.record(qid, outcomes)
            outcomes = []
        injected += self.notifier.bounce(message, work.failed, now)
        outcomes = outcomes + [(i, Outcome("B", text)) for i, text in work.failed_indices]
        if not work.temporary and not work.held and not work.remote:
            self.queue.complete(qid)
            event("queue.done", id=qid)
            return Verdict(finished=True, injected=injected)
        if outcomes:
            self.queue.record(qid, outcomes)
        # Held (or handed to the remote channel) only: a flush, rescan or the
        # remote channel's own verdict decides the next attempt.
        due = None
        if work.temporary:
            due = schedule.next_attempt(message.envelope.birth, now, skip)
        return Verdict(finished=False, next_attempt=due, injected=injected,
                       remote=tuple(work.remote))

    def _warn_if_due(self, message: QueuedMessage, work: _Pass, now: float) -> tuple[str, ...]:
        """The delay warning for recipients deferred in this pass, once each."""
        statuses = message.statuses
        due = self.delay_warning > 0 and now - message.envelope.birth >= self.delay_warning
        warn: list[FailedRecipient] = []
        for position, (index, outcome) in enumerate(work.outcomes):
            if outcome.code != "T" or index not in work.deferred:
                continue
            if (statuses[index].last_error or "").endswith(DELAY_WARNED):
                pass  # warned before: keep saying so
            elif due:
                warn.append(work.deferred[index])
            else:
                continue
            work.outcomes[position] = (index, Outcome("T", outcome.text + DELAY_WARNED))
        return self.notifier.delay_warning(message, warn, now) if warn else ()

    # -- delivery ----------------------------------------------------------

    def _deliver_pending(self, message: QueuedMessage, now: float) -> _Pass:
        work = _Pass()
        # Wait for the directory if need be: a stale snapshot here would bounce
        # mail for a mailbox created a moment ago.
        snapshot = self.directory.snapshot(wait=True)
        expired = schedule.expired(message.envelope.birth, now, self.lifetime)
        router = self._router
        with self.queue.open_body(message.id) as body:
            header_block = read_header_block(body.read(HEADER_PEEK))
            state = router.begin(message, snapshot, header_block, body, now)
            try:
                for status in message.statuses:
                    if status.state is not RecipientState.PENDING:
                        continue
                    result = router.deliver(state, status)
                    if result is None:
                        self._hand_over(work, status.index, status.last_error)
                        continue
                    result = self._expire(result, expired)
                    self._log_attempt(message.id, status.address, result,
                                      message.envelope.birth)
                    self._note(work, status.index, status.address, result)
            finally:
                # Queued copies must reach the manager even if a later recipient raised.
                work.injected += state.injected
        return work

    def _hand_over(self, work: _Pass, index: int, last_error: str | None) -> None:
        """A remote recipient: the remote channel's, or held."""
        if self.remote_mode == RemoteMode.DELIVER.value:
            work.remote.append(index)
            return
        work.held = True
        if last_error != HELD_REMOTE:
            work.outcomes.append((index, Outcome("T", HELD_REMOTE)))

    @staticmethod
    def _expire(result: DeliveryResult, expired: bool) -> DeliveryResult:
        if isinstance(result, TempFail) and expired:
            return PermFail(f"{result.reason}; gave up after the queue lifetime", "4.4.7",
                            result.remote_mta, result.diagnostic)
        return result

    @staticmethod
    def _note(work: _Pass, index: int, address: str, result: DeliveryResult) -> None:
        if isinstance(result, Delivered):
            work.outcomes.append((index, Outcome("D", result.detail)))
            return
        diagnostic = result.diagnostic or f"x-mailyard; {result.reason}"
        report = FailedRecipient(address, result.status, diagnostic, result.remote_mta)
        if isinstance(result, TempFail):
            work.temporary = True
            work.deferred[index] = report
            work.outcomes.append((index, Outcome("T", f"{result.status} {result.reason}")))
        else:
            work.failed.append(report)
            work.failed_indices.append((index, f"{result.status} {result.reason}"))

    @staticmethod
    def _log_attempt(qid: str, recipient: str, result: DeliveryResult, birth: float) -> None:
        if isinstance(result, Delivered):
            # latency: queued to delivered, for the metrics' histogram.
            event("delivery", id=qid, rcpt=recipient, result="ok", detail=result.detail,
                  latency=round(time.time() - birth, 3))
            return
        kind = "deferred" if isinstance(result, TempFail) else "failed"
        event("delivery", id=qid, rcpt=recipient, result=kind, status=result.status,
              detail=result.reason, host=result.remote_mta)
