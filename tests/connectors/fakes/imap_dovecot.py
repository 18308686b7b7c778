"""Contract case for the imap connector, against a real throwaway Dovecot.

IMAP has no fake: the server is Debian's Dovecot (``tests/connectors/dovecot.py``), started
on first use — only when a contract test calls ``start()``, never at collection — shared
by every rig of the process and stopped at exit. Each rig gets its own fresh mailbox, so
rigs never see each other's mail. Without Dovecot, ``start()`` skips the test (fails
under ``CI=true``). IMAP servers have no rate-limit reply to provoke: the rig declares
none (``trigger_rate_limit=None``).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from email.message import EmailMessage

from connectors.base import Connector
from connectors.imap import ImapConnector
from tests.connectors.contract import ContractCase, ContractRig
from tests.connectors.dovecot import shared_dovecot

PAGE_SIZE = 3  # small, so the contract's counts force paging


def _message(message_id: str, number: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {number} <customer{number}@example.com>"
    message["To"] = "support@andon.test"
    message["Subject"] = f"Feedback {number}"
    message["Date"] = f"Mon, 03 Jun 2024 09:{number % 60:02d}:00 +0200"
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(f"Message {number}: the export still fails.\n\n-- \nCustomer {number}")
    return message.as_bytes()


def contract_case() -> ContractCase:
    def start() -> ContractRig:
        server = shared_dovecot()
        mailbox = server.create_mailbox()
        token = secrets.token_hex(4)
        numbers = itertools.count(1)

        def connector() -> Connector:
            config = server.config(mailbox, page_size=PAGE_SIZE)
            return ImapConnector(config, env=server.env())

        def seed(count: int) -> Sequence[str]:
            batch = [next(numbers) for _ in range(count)]
            ids = [f"{token}.{number}@contract.example" for number in batch]
            messages = [_message(mid, number) for mid, number in zip(ids, batch, strict=True)]
            server.append_many(mailbox, messages)
            return ids

        return ContractRig(connector=connector, seed=seed, trigger_rate_limit=None)

    return ContractCase(name="imap", start=start, initial_count=7, later_count=5)
