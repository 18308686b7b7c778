"""The imap connector against a real Dovecot (see ``tests/connectors/dovecot.py``).

Every test gets its own mailbox on one server per session; messages are seeded with IMAP
APPEND. The trimming and HTML helpers also have plain unit tests that need no server.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest

from connectors import registry
from connectors.base import Page, SourceItem
from connectors.errors import AuthFailed, BadCursor, ConfigError, UpstreamError
from connectors.imap import ImapConnector, html_to_text, trim_reply
from tests.connectors import dovecot as dovecot_helper
from tests.connectors.dovecot import MISSING, Dovecot, run_dovecot


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with run_dovecot() as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    return dovecot.create_mailbox()


def connector(dovecot: Dovecot, mailbox: str, **overrides: Any) -> ImapConnector:
    return ImapConnector(dovecot.config(mailbox, **overrides), env=dovecot.env())


def plain(
    number: int,
    *,
    subject: str | None = None,
    body: str | None = None,
    msgid: str | None = "default",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A small text/plain message; ``msgid=None`` leaves out the Message-ID header."""
    message = EmailMessage()
    message["From"] = f"Customer {number} <customer{number}@example.com>"
    message["To"] = "support@andon.test"
    message["Subject"] = subject or f"Feedback {number}"
    message["Date"] = f"Mon, 03 Jun 2024 10:{number % 60:02d}:00 +0000"
    if msgid is not None:
        message["Message-ID"] = f"<m{number}@example.com>" if msgid == "default" else msgid
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body or f"Message number {number}: the export button is broken.")
    return message.as_bytes()


def pull_all(conn: ImapConnector, cursor: dict[str, Any] | None) -> tuple[list[Page], Any]:
    """Pull until has_more is False, passing the cursor through JSON as storage does."""
    pages: list[Page] = []
    for _ in range(50):
        page = conn.pull(cursor)
        pages.append(page)
        cursor = json.loads(json.dumps(page.next_cursor))
        if not page.has_more:
            return pages, cursor
    raise AssertionError("never stopped paging")


def only(page: Page) -> SourceItem:
    assert page.rejects == []
    assert len(page.items) == 1
    return page.items[0]


# --------------------------------------------------------------------------- incremental


def test_incremental_pull_by_uid_with_cursor_json_round_trip(
    dovecot: Dovecot, mailbox: str
) -> None:
    dovecot.append_many(mailbox, [plain(n) for n in (1, 2, 3)])
    uidvalidity = dovecot.uidvalidity(mailbox)

    first = connector(dovecot, mailbox).pull(None)

    assert [item.external_id for item in first.items] == [
        "m1@example.com",
        "m2@example.com",
        "m3@example.com",
    ]
    assert first.has_more is False
    assert first.next_cursor == {"uidvalidity": uidvalidity, "last_uid": 3}
    stored = json.dumps(first.next_cursor)

    dovecot.append_many(mailbox, [plain(4), plain(5)])
    second = connector(dovecot, mailbox).pull(json.loads(stored))  # a restarted connector

    assert [item.external_id for item in second.items] == ["m4@example.com", "m5@example.com"]
    assert second.next_cursor == {"uidvalidity": uidvalidity, "last_uid": 5}
    assert [item.raw["uid"] for item in second.items] == [4, 5]
    assert all(item.raw["uidvalidity"] == uidvalidity for item in second.items)


def test_page_size_is_respected(dovecot: Dovecot, mailbox: str) -> None:
    dovecot.append_many(mailbox, [plain(n) for n in range(1, 6)])

    pages, cursor = pull_all(connector(dovecot, mailbox, page_size=2), None)

    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert [page.has_more for page in pages] == [True, True, False]
    ids = [item.external_id for page in pages for item in page.items]
    assert ids == [f"m{n}@example.com" for n in range(1, 6)]
    assert cursor["last_uid"] == 5


def test_last_message_is_not_returned_again_by_n_star_quirk(dovecot: Dovecot, mailbox: str) -> None:
    dovecot.append_many(mailbox, [plain(1), plain(2)])
    conn = connector(dovecot, mailbox)
    first = conn.pull(None)
    assert first.next_cursor is not None
    assert first.next_cursor["last_uid"] == 2

    # The quirk is real on this server: "3:*" matches the highest UID, 2.
    with dovecot.client() as raw:
        raw.select(f'"{mailbox}"', readonly=True)
        typ, data = raw.uid("SEARCH", "UID 3:*")
    assert (typ, data) == ("OK", [b"2"])

    again = conn.pull(first.next_cursor)

    assert again.items == []
    assert again.rejects == []
    assert again.has_more is False
    assert again.next_cursor == first.next_cursor


def test_pull_does_not_mark_messages_seen(dovecot: Dovecot, mailbox: str) -> None:
    dovecot.append(mailbox, plain(1))

    assert len(connector(dovecot, mailbox).pull(None).items) == 1

    with dovecot.client() as raw:
        raw.select(f'"{mailbox}"', readonly=True)
        typ, data = raw.uid("SEARCH", "UNSEEN")
    assert (typ, data) == ("OK", [b"1"])


def test_empty_mailbox_gives_an_empty_page_with_a_cursor(dovecot: Dovecot, mailbox: str) -> None:
    page = connector(dovecot, mailbox).pull(None)

    assert page.items == []
    assert page.has_more is False
    assert page.next_cursor == {"uidvalidity": dovecot.uidvalidity(mailbox), "last_uid": 0}


def test_uidvalidity_change_resyncs_and_stores_nothing_twice(
    dovecot: Dovecot, mailbox: str
) -> None:
    originals = [plain(1), plain(2), plain(3, msgid=None, body="No Message-ID on this one.")]
    dovecot.append_many(mailbox, originals)
    store: dict[str, SourceItem] = {}  # storage upserts on external_id
    returned: list[str] = []

    def sync(cursor: Any) -> Any:
        pages, cursor = pull_all(connector(dovecot, mailbox, page_size=2), cursor)
        for item in (item for page in pages for item in page.items):
            returned.append(item.external_id)
            store[item.external_id] = item
        return cursor

    cursor = sync(None)
    old_validity = cursor["uidvalidity"]
    assert len(store) == 3

    # The mailbox is re-created (e.g. restored from backup): same mail, new UIDs.
    new_validity = dovecot.recreate_mailbox(mailbox)
    dovecot.append_many(mailbox, [*originals, plain(4)])

    cursor = sync(cursor)

    assert new_validity != old_validity
    assert cursor == {"uidvalidity": new_validity, "last_uid": 4}
    assert len(returned) == 3 + 4  # the resync re-read everything from UID 1 ...
    assert sorted(store) == sorted(set(returned))
    assert len(store) == 4  # ... and storage holds each message once
    assert "m4@example.com" in store
    hashed = [key for key in store if key.startswith("sha256:")]
    assert len(hashed) == 1  # the message without Message-ID kept the same hash id
    assert store[hashed[0]].raw["uidvalidity"] == new_validity


# --------------------------------------------------------------------------- MIME


def multipart_alternative() -> bytes:
    message = EmailMessage()
    message["From"] = "Dana <dana@example.com>"
    message["Subject"] = "Alternative"
    message["Message-ID"] = "<alt@example.com>"
    message["Date"] = "Tue, 04 Jun 2024 12:00:00 +0200"
    message.set_content("PLAIN version: the invoice page is slow.")
    message.add_alternative("<html><body><p>HTML version</p></body></html>", subtype="html")
    return message.as_bytes()


def test_multipart_alternative_prefers_plain_text(dovecot: Dovecot, mailbox: str) -> None:
    dovecot.append(mailbox, multipart_alternative())

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.text == "PLAIN version: the invoice page is slow."
    assert item.created_at == datetime(2024, 6, 4, 10, 0, tzinfo=UTC)
    assert item.channel == "email"
    assert item.kind == "message"
    assert item.title == "Alternative"


def test_html_only_is_converted_to_text(dovecot: Dovecot, mailbox: str) -> None:
    message = EmailMessage()
    message["From"] = "html@example.com"
    message["Subject"] = "HTML"
    message["Message-ID"] = "<html@example.com>"
    message.set_content(
        "<html><head><style>p {color: red}</style><title>x</title></head><body>"
        "<p>The <b>new</b> dashboard &amp; reports are great&nbsp;!</p>"
        "<script>alert('no')</script><ul><li>fast</li><li>clear</li></ul></body></html>",
        subtype="html",
    )
    dovecot.append(mailbox, message.as_bytes())

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.text == "The new dashboard & reports are great !\n- fast\n- clear"
    assert "<" not in item.text
    assert "alert" not in item.text
    assert "color" not in item.text


def test_attachments_are_ignored(dovecot: Dovecot, mailbox: str) -> None:
    message = EmailMessage()
    message["From"] = "att@example.com"
    message["Subject"] = "With attachments"
    message["Message-ID"] = "<att@example.com>"
    message.set_content("See the attached log.")
    message.add_attachment(b"%PDF-1.4 binary", maintype="application", subtype="pdf",
                           filename="report.pdf")  # fmt: skip
    message.add_attachment("ATTACHED TEXT FILE CONTENT", filename="log.txt")
    dovecot.append(mailbox, message.as_bytes())

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.text == "See the attached log."
    raw_json = json.dumps(dict(item.raw))
    assert "ATTACHED TEXT FILE CONTENT" not in raw_json
    assert "PDF-1.4" not in raw_json
    assert base64.b64encode(b"%PDF-1.4 binary").decode() not in raw_json


def test_attachment_only_message_gives_empty_text(dovecot: Dovecot, mailbox: str) -> None:
    message = EmailMessage()
    message["From"] = "att@example.com"
    message["Subject"] = "Only a file"
    message["Message-ID"] = "<only-att@example.com>"
    message.add_attachment("FILE BODY", filename="notes.txt")
    dovecot.append(mailbox, message.as_bytes())

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.text == ""
    assert item.title == "Only a file"


def test_encoded_words_in_subject_and_sender_name_are_decoded(
    dovecot: Dovecot, mailbox: str
) -> None:
    raw = (
        b"From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <Joerg@Example.COM>\r\n"
        b"To: support@andon.test\r\n"
        b"Subject: =?UTF-8?B?w5xiZXJ3ZWlzdW5nIGZlaGxnZXNjaGxhZ2VuIOKAkyBkcmluZ2VuZA==?=\r\n"
        b"Message-ID: <enc@example.com>\r\n"
        b"Date: Wed, 05 Jun 2024 08:00:00 -0500\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"Bitte pr\xc3\xbcfen.\r\n"
    )
    dovecot.append(mailbox, raw)

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.title == "Überweisung fehlgeschlagen – dringend"
    assert item.author.display_name == "Jörg Müller"
    assert item.author.email == "joerg@example.com"
    assert item.author.handle == "joerg@example.com"
    assert item.text == "Bitte prüfen."
    assert item.created_at == datetime(2024, 6, 5, 13, 0, tzinfo=UTC)
    assert item.raw["headers"]["Subject"] == "Überweisung fehlgeschlagen – dringend"


@pytest.mark.parametrize(
    ("cte", "encoded"),
    [
        ("quoted-printable", b"Caf=C3=A9 au lait: the app cr=\r\nashes on login =E2=80=94 help"),
        ("base64", base64.encodebytes("Café au lait: the app crashes on login — help".encode())),
    ],
)
def test_transfer_encoded_bodies_are_decoded(
    dovecot: Dovecot, mailbox: str, cte: str, encoded: bytes
) -> None:
    raw = (
        b"From: cte@example.com\r\nSubject: CTE\r\nMessage-ID: <cte@example.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n" + encoded + b"\r\n"
    )
    dovecot.append(mailbox, raw)

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.text == "Café au lait: the app crashes on login — help"


@pytest.mark.parametrize(
    ("charset", "expected"),
    [
        ("iso-8859-1", "Größe und Preis: zu teuer"),
        ("windows-1252", "“Zu teuer” – sagt der Kunde"),
        ("koi8-r", "Очень медленно"),
    ],
)
def test_non_utf8_charsets_are_decoded(
    dovecot: Dovecot, mailbox: str, charset: str, expected: str
) -> None:
    raw = (
        b"From: cs@example.com\r\nSubject: charset\r\nMessage-ID: <cs@example.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + expected.encode(charset) + b"\r\n"
    )
    dovecot.append(mailbox, raw)

    assert only(connector(dovecot, mailbox).pull(None)).text == expected


def test_unknown_charset_and_bad_bytes_are_replaced_not_fatal(
    dovecot: Dovecot, mailbox: str
) -> None:
    raw = (
        b"From: cs@example.com\r\nSubject: bad charset\r\nMessage-ID: <bad-cs@example.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nbroken \xff\xfe bytes\r\n"
    )
    dovecot.append(mailbox, raw)

    assert only(connector(dovecot, mailbox).pull(None)).text == "broken \ufffd\ufffd bytes"


def test_undeclared_charset_8bit_text_is_read_as_utf8(dovecot: Dovecot, mailbox: str) -> None:
    raw = (
        b"From: cs@example.com\r\nSubject: no charset\r\nMessage-ID: <no-cs@example.com>\r\n"
        b"\r\nViele Gr\xc3\xbc\xc3\x9fe, die App ist langsam\r\n"
    )
    dovecot.append(mailbox, raw)

    assert only(connector(dovecot, mailbox).pull(None)).text == "Viele Grüße, die App ist langsam"


def test_missing_date_falls_back_to_internaldate(dovecot: Dovecot, mailbox: str) -> None:
    raw = b"From: nodate@example.com\r\nSubject: no date\r\nMessage-ID: <nodate@x>\r\n\r\nhi\r\n"
    arrived = datetime(2024, 2, 29, 23, 30, tzinfo=timezone(timedelta(hours=-3)))
    dovecot.append(mailbox, raw, when=arrived)

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.created_at == datetime(2024, 3, 1, 2, 30, tzinfo=UTC)
    assert item.created_at.tzinfo is UTC


# --------------------------------------------------------------------------- threads


def test_threads_are_linked_by_in_reply_to_and_references(dovecot: Dovecot, mailbox: str) -> None:
    root = plain(1, msgid="<root@example.com>")
    reply = plain(2, msgid="<reply@example.com>", headers={"In-Reply-To": "<root@example.com>"})
    second = plain(
        3,
        msgid="<second@example.com>",
        headers={
            "In-Reply-To": "<reply@example.com>",
            "References": "<root@example.com> <reply@example.com>",
        },
    )
    orphan = plain(4, msgid="<orphan@example.com>", headers={"In-Reply-To": "<gone@example.com>"})
    dovecot.append_many(mailbox, [root, reply, second, orphan])

    page = connector(dovecot, mailbox).pull(None)

    threads = {item.external_id: item.thread_id for item in page.items}
    assert threads == {
        "root@example.com": "root@example.com",
        "reply@example.com": "root@example.com",
        "second@example.com": "root@example.com",
        "orphan@example.com": "gone@example.com",
    }


# --------------------------------------------------------------------------- trimming


def test_quoted_reply_and_signature_are_trimmed_but_kept_raw(
    dovecot: Dovecot, mailbox: str
) -> None:
    body = (
        "The refund still has not arrived. This is unacceptable.\n"
        "\n"
        "-- \n"
        "Sam Customer | ACME Corp\n"
        "\n"
        "On Mon, 3 Jun 2024 at 10:00, Andon Support <support@andon.test> wrote:\n"
        "> Thanks for your patience, we are very happy to help!\n"
    )
    dovecot.append(mailbox, plain(1, body=body))

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.text == "The refund still has not arrived. This is unacceptable."
    assert item.raw["body_text"] == body.strip()


def test_html_reply_blockquote_is_trimmed(dovecot: Dovecot, mailbox: str) -> None:
    message = EmailMessage()
    message["From"] = "html@example.com"
    message["Subject"] = "Re: your ticket"
    message["Message-ID"] = "<html-reply@example.com>"
    message.set_content(
        "<div>Still broken after the update.</div><div><br></div>"
        "<blockquote><div>We love hearing from you! Great news: it is fixed.</div></blockquote>",
        subtype="html",
    )
    dovecot.append(mailbox, message.as_bytes())

    item = only(connector(dovecot, mailbox).pull(None))

    assert item.text == "Still broken after the update."


TRIM_CASES = [
    ("nothing-to-trim", "Just a plain complaint.\nSecond line.", None),
    (
        "quoted-lines-dropped-inline-kept",
        "My answer.\n> quoted line\n>> deeper\nMore of mine.",
        "My answer.\nMore of mine.",
    ),
    (
        "on-wrote-wrapped",
        "Broken again.\n\nOn Tue, Jun 4, 2024 at 9:14 AM Support Team <help@x.com>\n"
        "wrote:\nAnything here is the old mail.",
        "Broken again.",
    ),
    ("on-wrote-one-line", "Broken again.\nOn 04.06.2024, Support wrote:\nold", "Broken again."),
    (
        "german-am-schrieb",
        "Geht immer noch nicht.\n\nAm 04.06.2024 um 09:14 schrieb Support <s@x.de>:\n> alt",
        "Geht immer noch nicht.",
    ),
    (
        "outlook-original-message",
        "Please cancel.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nold text",
        "Please cancel.",
    ),
    (
        "outlook-from-sent",
        "Please cancel.\n\nFrom: Support Team <s@x.com>\nSent: Monday, June 3, 2024\n"
        "To: me\nSubject: RE: x\n\nold text",
        "Please cancel.",
    ),
    (
        "outlook-underscore-rule",
        "Please cancel.\n________________________________\nFrom: Support\nDate: today\nold",
        "Please cancel.",
    ),
    (
        "outlook-german",
        "Bitte kündigen.\n\nVon: Support <s@x.de>\nGesendet: Montag\nAn: mich\nalt",
        "Bitte kündigen.",
    ),
    ("sig-delimiter", "Love the product!\n-- \nJane Doe\nCTO, Example", "Love the product!"),
    ("sig-delimiter-stripped", "Love the product!\n--\nJane", "Love the product!"),
    (
        "sent-from-iphone",
        "App keeps crashing\n\nSent from my iPhone\n\n> On ... wrote",
        "App keeps crashing",
    ),
    ("von-meinem-iphone", "Stürzt ab\n\nVon meinem iPhone gesendet", "Stürzt ab"),
    (
        "closing-block",
        "Export is broken.\n\nBest regards,\nJane Doe\nACME Inc.",
        "Export is broken.",
    ),
    ("thanks-closing", "Export is broken.\nThanks,\nJane", "Export is broken."),
    (
        "closing-not-at-the-end-kept",
        "Mit freundlichen Grüßen\nis what your bot wrote, then it broke everything.\n"
        "It deleted my data. I lost three weeks of work and my team is blocked.\n"
        "We need a call today. Nobody answered our ticket. Please escalate now.\n"
        "The invoice is also wrong. And the export is still broken. Fix it.",
        None,
    ),
    (
        "from-without-sent-kept",
        "From: the moment I installed it, it crashed.\nNo other symptoms.",
        None,
    ),
    ("on-without-wrote-kept", "On Monday the app was down.\nIt still is.", None),
    (
        "crlf-and-blank-runs",
        "Line one\r\nLine two\r\n\r\n\r\n\r\nLine three",
        "Line one\nLine two\n\nLine three",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in TRIM_CASES],
)
def test_trim_reply(text: str, expected: str | None) -> None:
    assert trim_reply(text) == (text if expected is None else expected)


def test_html_to_text_marks_blockquotes_and_breaks_lines() -> None:
    markup = (
        "<p>Hello&nbsp;team,<br>line two</p><blockquote><p>old</p>"
        "<blockquote>older</blockquote></blockquote><p>after</p>"
    )

    assert html_to_text(markup) == "Hello team,\nline two\n> old\n> > older\nafter"


# --------------------------------------------------------------------------- rejects


def test_unparseable_message_is_rejected_with_bounded_payload(
    dovecot: Dovecot, mailbox: str
) -> None:
    garbage = b"this is not an email at all " * 400  # no header fields, > 4 KB
    dovecot.append_many(mailbox, [plain(1), garbage, plain(3)])

    page = connector(dovecot, mailbox).pull(None)

    assert [item.external_id for item in page.items] == ["m1@example.com", "m3@example.com"]
    assert len(page.rejects) == 1
    reject = page.rejects[0]
    assert "no header fields" in reject.reason
    assert reject.payload.startswith("this is not an email at all")
    assert len(reject.payload) <= 4096
    assert reject.location is not None
    assert reject.location.endswith(";UID=2")
    assert page.next_cursor is not None
    assert page.next_cursor["last_uid"] == 3  # quarantined, not retried forever


# --------------------------------------------------------------------------- transport security


def test_implicit_tls_with_the_test_ca(dovecot: Dovecot, mailbox: str) -> None:
    dovecot.append(mailbox, plain(1))
    conn = connector(
        dovecot, mailbox, security="tls", port=dovecot.tls_port, ca_file=dovecot.ca_file
    )

    assert only(conn.pull(None)).external_id == "m1@example.com"
    conn.check()


def test_starttls_with_the_test_ca(dovecot: Dovecot, mailbox: str) -> None:
    dovecot.append(mailbox, plain(1))
    conn = connector(dovecot, mailbox, security="starttls", ca_file=dovecot.ca_file)

    assert only(conn.pull(None)).external_id == "m1@example.com"


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_untrusted_certificate_is_refused(dovecot: Dovecot, mailbox: str, security: str) -> None:
    port = dovecot.tls_port if security == "tls" else dovecot.port
    conn = connector(dovecot, mailbox, security=security, port=port)  # system CAs only

    with pytest.raises(UpstreamError, match="CERTIFICATE_VERIFY_FAILED"):
        conn.pull(None)


def test_plain_imap_is_refused_for_a_remote_host() -> None:
    config = {"host": "imap.example.com", "security": "none", "username": "u", "password_env": "P"}

    with pytest.raises(ConfigError, match="loopback"):
        ImapConnector(config, env={})


# --------------------------------------------------------------------------- auth and errors


def test_bad_password_is_auth_failed_without_the_password(dovecot: Dovecot, mailbox: str) -> None:
    secret = "Wr0ng-Secret-Value"
    conn = ImapConnector(dovecot.config(mailbox), env={"ANDON_IMAP_PASSWORD": secret})

    with pytest.raises(AuthFailed) as caught:
        conn.pull(None)

    exc = caught.value
    assert "support" in str(exc)
    for text in (str(exc), repr(exc), repr(conn), repr(exc.__cause__), repr(exc.__context__)):
        assert secret not in text
    assert exc.__cause__ is None
    assert exc.__suppress_context__ is True
    assert secret not in dovecot.config(mailbox).values()
    with pytest.raises(AuthFailed):
        conn.check()


def test_missing_password_variable_is_auth_failed(dovecot: Dovecot, mailbox: str) -> None:
    conn = ImapConnector(dovecot.config(mailbox), env={})

    with pytest.raises(AuthFailed, match="ANDON_IMAP_PASSWORD is not set"):
        conn.pull(None)


def test_password_is_not_in_repr(dovecot: Dovecot, mailbox: str) -> None:
    conn = connector(dovecot, mailbox)

    assert dovecot.password not in repr(conn)
    assert dovecot.password not in str(conn)


def test_check_logs_in_and_selects_the_mailbox(dovecot: Dovecot, mailbox: str) -> None:
    connector(dovecot, mailbox).check()

    with pytest.raises(ConfigError, match="no-such-box"):
        connector(dovecot, "no-such-box").check()


def test_connection_refused_is_upstream_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    conn = ImapConnector(
        {"host": "127.0.0.1", "port": port, "security": "none", "username": "u",
         "password_env": "P", "timeout": 2},
        env={"P": "x"},
    )  # fmt: skip

    with pytest.raises(UpstreamError, match="cannot reach"):
        conn.pull(None)


def test_silent_server_times_out_as_upstream_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
        thread.start()
        conn = ImapConnector(
            {"host": "127.0.0.1", "port": listener.getsockname()[1], "security": "none",
             "username": "u", "password_env": "P", "timeout": 0.3},
            env={"P": "x"},
        )  # fmt: skip
        try:
            with pytest.raises(UpstreamError, match="timed out"):
                conn.pull(None)
        finally:
            thread.join(5)
            for sock in accepted:
                sock.close()


@pytest.mark.parametrize(
    "cursor",
    [{"uidvalidity": "1", "last_uid": 0}, {"last_uid": 3}, {"uidvalidity": 1, "last_uid": -1},
     {"uidvalidity": True, "last_uid": 0}],
)  # fmt: skip
def test_corrupt_cursor_is_bad_cursor(dovecot: Dovecot, mailbox: str, cursor: Any) -> None:
    with pytest.raises(BadCursor):
        connector(dovecot, mailbox).pull(cursor)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"security": "ssl"}, "security"),
        ({"password_env": None}, "password_env"),
        ({"username": ""}, "username"),
        ({"page_size": 0}, "page_size"),
        ({"port": "993"}, "port"),
        ({"timeout": 0}, "timeout"),
        ({"mailbox": "Eingänge"}, "ASCII"),
        ({"security": "tls", "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
    ],
)
def test_invalid_configuration_is_config_error(override: dict[str, Any], match: str) -> None:
    config = {"host": "127.0.0.1", "security": "none", "username": "u", "password_env": "P"}
    config.update(override)

    with pytest.raises(ConfigError, match=match):
        ImapConnector(config, env={})


def test_registered_as_imap(dovecot: Dovecot, mailbox: str) -> None:
    dovecot.append(mailbox, plain(1))

    created = registry.create("imap", dovecot.config(mailbox), env=dovecot.env())

    assert isinstance(created, ImapConnector)
    assert "imap" in registry.kinds()
    assert only(created.pull(None)).external_id == "m1@example.com"


# --------------------------------------------------------------------------- the helper


def _hide_dovecot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.connectors.dovecot.shutil.which", lambda name: None)
    monkeypatch.setattr("tests.connectors.dovecot.os.access", lambda path, mode: False)


def test_missing_dovecot_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_dovecot(monkeypatch)
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception, match="apt-get install dovecot-imapd"):
        dovecot_helper.require_dovecot()


def test_missing_dovecot_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_dovecot(monkeypatch)
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception) as caught:
        dovecot_helper.require_dovecot()

    assert str(caught.value) == MISSING
