"""IMAP support mailbox: pull messages incrementally by UID.

Configuration::

    {"host": "imap.example.com", "port": 993, "security": "tls",   # tls | starttls | none
     "username": "support@example.com", "password_env": "ANDON_IMAP_PASSWORD",
     "mailbox": "INBOX", "page_size": 50, "ca_file": null, "timeout": 30}

``security`` ``none`` is refused unless the host is a loopback address. The password is
read from the environment variable that ``password_env`` names, at connect time, and never
appears in errors, reprs or logs.

Cursor: ``{"uidvalidity": <int>, "last_uid": <int>}``. Each pull logs in, EXAMINEs the
mailbox (read-only: nothing is marked seen), runs ``UID SEARCH UID <last_uid+1>:*`` and
fetches up to ``page_size`` messages with ``BODY.PEEK[]``. When the server's UIDVALIDITY
differs from the cursor's (the mailbox was re-created, every stored UID is meaningless) —
or UIDNEXT went backwards — the pull starts again from UID 1 under the new UIDVALIDITY.
That is safe because ``external_id`` is the Message-ID (a stable content hash for
messages without one), never the UID: storage dedupes the re-read messages.

The text that gets classified is the body with quoted replies and signatures trimmed
(:func:`trim_reply`); the untrimmed text is kept in ``raw["body_text"]``.
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.policy
import hashlib
import imaplib
import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

import httpx

from connectors.base import Author, Cursor, Page, Rejected, SourceItem, utc
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    ConnectorError,
    ProtocolError,
    UpstreamError,
)
from connectors.registry import register

log = logging.getLogger(__name__)

SECURITY = ("tls", "starttls", "none")
DEFAULT_PORTS = {"tls": 993, "starttls": 143, "none": 143}
MAX_PAGE_SIZE = 500
REJECT_PAYLOAD_BYTES = 4096
KEPT_HEADERS = (
    "Message-ID",
    "In-Reply-To",
    "References",
    "Date",
    "From",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Content-Type",
    "Content-Language",
)


# --------------------------------------------------------------------------- trimming

_REPLY_HEADER_START = re.compile(r"^\s*(On\s|Am\s|Le\s|El\s|Il\s|Op\s)", re.IGNORECASE)
_REPLY_HEADER = re.compile(
    r"^\s*(?:"
    r"On\s.+\swrote\s*:"  # English: On <date>, <someone> wrote:
    r"|Am\s.+\sschrieb\s.*:"  # German: Am <date> schrieb <someone>:
    r"|Le\s.+\sa\s+écrit\s*:"  # French
    r"|El\s.+\sescribió\s*:"  # Spanish
    r"|Il\s.+\sha\s+scritto\s*:"  # Italian
    r"|Op\s.+\sschreef\s.*:"  # Dutch
    r")\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Mensaje original|Messaggio originale|Oorspronkelijk bericht)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:From|Von|De|Van|Da)\s*:\*?\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Inviato|Verzonden|To|An)\s*:",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGNOFF = re.compile(
    r"^\s*(?:Sent from my\s.+|Sent from (?:Mail|Outlook|Yahoo Mail|Gmail)\b.*"
    r"|Sent via\s.+|Get Outlook for\s.+|Von meinem\s.+\sgesendet\.?"
    r"|Gesendet von meinem\s.+|Envoyé de mon\s.+|Enviado desde mi\s.+)\s*$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^\s*(?:(?:best|kind|warm|many thanks and|with kind)?\s*regards|best wishes|best|cheers"
    r"|thanks(?: again| a lot| in advance)?|thank you(?: very much)?|many thanks|sincerely"
    r"|yours(?: truly| sincerely)?|mit freundlichen grüßen|mfg|viele grüße|beste grüße"
    r"|liebe grüße|gruß|grüße|danke|cordialement|saludos)\s*[,.!]?\s*$",
    re.IGNORECASE,
)
_CLOSING_TAIL_LINES = 4
_CLOSING_TAIL_CHARS = 60


def _is_reply_header(lines: list[str], index: int) -> bool:
    """``On <date>, <someone> wrote:`` and friends; mail clients wrap it over up to 3 lines."""
    if not _REPLY_HEADER_START.match(lines[index]):
        return False
    joined = lines[index]
    for extra in range(3):
        if _REPLY_HEADER.match(joined):
            return True
        if index + extra + 1 >= len(lines) or not lines[index + extra + 1].strip():
            return False
        joined = f"{joined} {lines[index + extra + 1].strip()}"
    return False


def _is_outlook_header(lines: list[str], index: int) -> bool:
    """``From: ...`` followed by ``Sent: ...`` / ``Date: ...`` (Outlook's quoted header)."""
    line = lines[index]
    if _UNDERSCORES.match(line):
        following = [entry for entry in lines[index + 1 : index + 3] if entry.strip()]
        return bool(following) and bool(_OUTLOOK_FROM.match(following[0]))
    if not _OUTLOOK_FROM.match(line):
        return False
    return any(_OUTLOOK_NEXT.match(entry) for entry in lines[index + 1 : index + 4])


def trim_reply(text: str) -> str:
    """Return the author's own words: quoted replies and signatures removed.

    Cut at (and drop everything after) the first reply header — ``On <date>, <someone>
    wrote:`` (also wrapped over lines, and the German ``Am ... schrieb ...:`` and a few
    other languages), ``-----Original Message-----``, Outlook's ``From: ... Sent: ...``
    block —, a ``-- `` signature delimiter, or a mobile sign-off such as ``Sent from my
    iPhone``. Lines quoted with ``>`` are dropped wherever they are (inline replies keep
    the unquoted lines). A closing such as ``Best regards,`` followed only by a short name
    block at the very end is dropped too.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if (
            _SIGNATURE_DELIMITER.match(line)
            or _MOBILE_SIGNOFF.match(line)
            or _ORIGINAL_MESSAGE.match(line)
            or _is_reply_header(lines, index)
            or _is_outlook_header(lines, index)
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    kept = _drop_closing(kept)
    cleaned = "\n".join(kept)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned.strip()


def _is_name_line(line: str) -> bool:
    """A line of a sign-off name block (name, title, company), not a sentence."""
    text = line.strip()
    if len(text) > _CLOSING_TAIL_CHARS:
        return False
    return not text.endswith((".", "!", "?")) or len(text.split()) <= 3


def _drop_closing(lines: list[str]) -> list[str]:
    """Drop a trailing ``Best regards,`` + short name block, if that is all that follows."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    start = max(0, len(lines) - _CLOSING_TAIL_LINES - 1)
    for index in range(start, len(lines)):
        if not _CLOSING.match(lines[index]):
            continue
        tail = [entry for entry in lines[index + 1 :] if entry.strip()]
        if len(tail) <= _CLOSING_TAIL_LINES and all(_is_name_line(entry) for entry in tail):
            return lines[:index]
    return lines


# --------------------------------------------------------------------------- HTML → text

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
     "blockquote", "pre", "hr", "section", "article", "header", "footer", "dd", "dt"}
)  # fmt: skip
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextExtractor(HTMLParser):
    """Visible text of an HTML body; text inside ``<blockquote>`` is marked ``> `` so the
    quoted part of an HTML reply is trimmed like a plain-text one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip = 0
        self._quote = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip += 1
        elif tag == "blockquote":
            self._newline()
            self._quote += 1
        elif tag == "pre":
            self._pre += 1
        if tag in _BLOCK_TAGS:
            self._newline()
        if tag == "li":
            self._parts.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._quote = max(0, self._quote - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _BLOCK_TAGS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        text = data if self._pre else re.sub(r"\s+", " ", data)
        if not text.strip() and not self._pre:
            if self._parts and not self._parts[-1].endswith(("\n", " ")):
                self._parts.append(" ")
            return
        if self._quote and (not self._parts or self._parts[-1].endswith("\n")):
            text = "> " * self._quote + text.lstrip()
        self._parts.append(text)

    def _newline(self) -> None:
        if self._parts and not self._parts[-1].endswith("\n"):
            self._parts.append("\n")

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self._parts).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str) -> str:
    """Convert an HTML body to plain text with the standard library's parser."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return parser.text()


# --------------------------------------------------------------------------- MIME parsing


def _decode_part(part: Message) -> str:
    """A text part's content, transfer-decoded and charset-decoded (never raising)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    if charset in ("us-ascii", "ascii"):
        # Undeclared 8-bit text is far more often UTF-8 than anything else.
        charset = "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def body_text(message: EmailMessage) -> str:
    """The message's text: the plain-text part preferred, else HTML converted; attachments
    are never read."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _decode_part(part)
    if part.get_content_subtype() == "html":
        return html_to_text(text)
    return text.replace("\r\n", "\n").strip()


_MSGID = re.compile(r"<([^<>\s]+)>")


def _message_ids(value: str | None) -> list[str]:
    """Message-IDs in a header value, normalised (no angle brackets, no whitespace)."""
    if not value:
        return []
    found = _MSGID.findall(value)
    if found:
        return [str(entry) for entry in found]
    bare = value.strip().strip("<>").strip()
    return [bare] if bare and " " not in bare else []


def _header(message: Message, name: str) -> str | None:
    """A header, RFC 2047-decoded and unfolded; ``None`` if absent."""
    value = message.get(name)
    if value is None:
        return None
    return " ".join(str(value).split())


_MONTHS = {
    month: number
    for number, month in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_INTERNALDATE = re.compile(
    r'INTERNALDATE "\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) '
    r'(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"'
)


def _internaldate(meta: str) -> datetime | None:
    """INTERNALDATE from a FETCH response, parsed without depending on the locale."""
    match = _INTERNALDATE.search(meta)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    tz = timezone(offset if sign == "+" else -offset)
    local = datetime(
        int(year), _MONTHS[month.title()], int(day), int(hour), int(minute), int(second), tzinfo=tz
    )
    return local.astimezone(UTC)


def _date(message: Message, internaldate: datetime | None) -> datetime:
    raw = message.get("Date")
    if raw is not None:
        try:
            parsed = parsedate_to_datetime(str(raw))
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            return utc(parsed)  # "-0000" (unknown zone) parses naive: taken as UTC
    if internaldate is not None:
        return internaldate
    raise ValueError("no usable Date header and no INTERNALDATE")


class Unparseable(ValueError):
    """The bytes are not an RFC 5322 message we can normalise."""


def build_item(
    raw: bytes, *, uid: int, uidvalidity: int, mailbox: str, internaldate: datetime | None
) -> SourceItem:
    """Normalise one fetched message; raises :class:`Unparseable` (or ValueError)."""
    if not raw.strip():
        raise Unparseable("empty message")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise Unparseable("not an RFC 5322 message: no header fields")

    headers = {name: value for name in KEPT_HEADERS if (value := _header(message, name))}
    full_text = body_text(message)
    text = trim_reply(full_text) or full_text
    title = headers.get("Subject")
    created_at = _date(message, internaldate)

    author = Author()
    from_value = message.get("From")
    if from_value is not None:
        addresses = getaddresses([str(from_value)])
        if addresses and "@" in addresses[0][1]:
            name, address = addresses[0]
            address = address.strip().lower()
            author = Author(
                id=None, handle=address, email=address, display_name=name.strip() or None
            )

    own_ids = _message_ids(headers.get("Message-ID"))
    if own_ids:
        external_id = own_ids[0]
    else:
        digest = hashlib.sha256(
            "\x1f".join(
                (headers.get("Date", ""), headers.get("From", ""), title or "", full_text)
            ).encode("utf-8", errors="replace")
        ).hexdigest()
        external_id = f"sha256:{digest[:40]}"
    references = _message_ids(headers.get("References"))
    parents = _message_ids(headers.get("In-Reply-To"))
    thread_id = (references or parents or [external_id])[0]

    return SourceItem(
        channel="email",
        kind="message",
        external_id=external_id,
        text=text,
        title=title,
        author=author,
        created_at=created_at,
        lang=headers.get("Content-Language"),
        thread_id=thread_id,
        raw={
            "headers": headers,
            "uid": uid,
            "uidvalidity": uidvalidity,
            "mailbox": mailbox,
            "internaldate": internaldate.isoformat() if internaldate else None,
            "body_text": full_text,
        },
    )


# --------------------------------------------------------------------------- connector


def _quote_mailbox(name: str) -> str:
    if not name.isascii():
        # Non-ASCII names need modified UTF-7 (RFC 3501 5.1.3), which imaplib lacks.
        raise ConfigError(f"mailbox {name!r}: only ASCII mailbox names are supported")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _int_option(config: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"imap: {key!r} must be an integer between {low} and {high}")
    return value


def _text(data: list[Any]) -> str:
    return " ".join(
        entry.decode("utf-8", "replace") if isinstance(entry, bytes) else str(entry)
        for entry in data
        if entry is not None
    )


@register("imap")
class ImapConnector:
    """A support mailbox over IMAP (TLS, STARTTLS, or plain on loopback only)."""

    kind = "imap"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,  # HTTP-only; IMAP has its own socket
    ) -> None:
        self._env: Mapping[str, str] = os.environ if env is None else env
        host = config.get("host")
        if not isinstance(host, str) or not host.strip():
            raise ConfigError("imap: 'host' is required")
        self.host = host.strip()
        security = config.get("security", "tls")
        if security not in SECURITY:
            raise ConfigError(f"imap: 'security' must be one of {', '.join(SECURITY)}")
        if security == "none" and not _is_loopback(self.host):
            raise ConfigError("imap: 'security': 'none' is only allowed for a loopback host")
        self.security: str = security
        self.port = _int_option(config, "port", DEFAULT_PORTS[security], 1, 65535)
        username = config.get("username")
        if not isinstance(username, str) or not username:
            raise ConfigError("imap: 'username' is required")
        self.username = username
        password_env = config.get("password_env")
        if not isinstance(password_env, str) or not password_env:
            raise ConfigError(
                "imap: 'password_env' (the variable holding the password) is required"
            )
        self._password_env = password_env
        mailbox = config.get("mailbox", "INBOX")
        if not isinstance(mailbox, str) or not mailbox:
            raise ConfigError("imap: 'mailbox' must be a non-empty string")
        self._mailbox_arg = _quote_mailbox(mailbox)
        self.mailbox = mailbox
        self.page_size = _int_option(config, "page_size", 50, 1, MAX_PAGE_SIZE)
        timeout = config.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("imap: 'timeout' must be a positive number of seconds")
        self.timeout = float(timeout)
        ca_file = config.get("ca_file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise ConfigError("imap: 'ca_file' must be a path")
        self._ssl: ssl.SSLContext | None = None
        if security != "none":
            try:
                self._ssl = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"imap: cannot load 'ca_file' {ca_file!r}: {exc}") from None

    def __repr__(self) -> str:
        return (
            f"ImapConnector(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, mailbox={self.mailbox!r})"
        )

    # -- session ------------------------------------------------------------------

    def _password(self) -> str:
        password = self._env.get(self._password_env)
        if not password:
            raise AuthFailed(f"imap: environment variable {self._password_env} is not set")
        return password

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> imaplib.IMAP4:
        if self.security == "tls":
            assert self._ssl is not None
            return imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=self._ssl, timeout=self.timeout
            )
        conn = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            assert self._ssl is not None
            try:
                conn.starttls(self._ssl)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                # Never fall back to plain text: the password would cross the wire.
                conn.shutdown()
                raise UpstreamError(f"imap: STARTTLS failed at {self._where()}: {exc}") from None
        return conn

    @contextlib.contextmanager
    def _session(self) -> Iterator[imaplib.IMAP4]:
        """Connected, logged in and the mailbox EXAMINEd; IMAP/socket errors translated."""
        password = self._password()
        conn: imaplib.IMAP4 | None = None
        try:
            conn = self._connect()
            try:
                conn.login(self.username, password)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                reason = str(exc).replace(password, "***")
                raise AuthFailed(
                    f"imap: login refused for {self.username!r} at {self._where()}: {reason}"
                ) from None
            except UnicodeEncodeError:
                raise AuthFailed(
                    f"imap: the credentials for {self.username!r} are not ASCII; "
                    "IMAP LOGIN cannot send them"
                ) from None
            typ, data = conn.select(self._mailbox_arg, readonly=True)
            if typ != "OK":
                raise ConfigError(
                    f"imap: cannot open mailbox {self.mailbox!r} at {self._where()}: {_text(data)}"
                )
            yield conn
        except ConnectorError:
            raise
        except TimeoutError as exc:
            raise UpstreamError(f"imap: timed out talking to {self._where()}: {exc}") from None
        except imaplib.IMAP4.abort as exc:
            raise UpstreamError(f"imap: connection to {self._where()} broke: {exc}") from None
        except imaplib.IMAP4.error as exc:
            raise ProtocolError(
                f"imap: unexpected server reply from {self._where()}: {exc}"
            ) from None
        except ssl.SSLError as exc:
            raise UpstreamError(f"imap: TLS with {self._where()} failed: {exc}") from None
        except OSError as exc:
            raise UpstreamError(f"imap: cannot reach {self._where()}: {exc}") from None
        finally:
            if conn is not None:
                self._logout(conn)

    def _logout(self, conn: imaplib.IMAP4) -> None:
        # The page is already in hand; a failed goodbye must not lose it.
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError) as exc:
            log.debug("imap: logout from %s failed: %s", self._where(), exc)

    # -- contract -----------------------------------------------------------------

    def check(self) -> None:
        with self._session():
            pass

    def _parse_cursor(self, cursor: Cursor | None) -> tuple[int | None, int]:
        if cursor is None:
            return None, 0
        if not isinstance(cursor, Mapping):
            raise BadCursor("imap: cursor must be an object")
        numbers: list[int] = []
        for name in ("uidvalidity", "last_uid"):
            value = cursor.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BadCursor(f"imap: cursor {name!r} must be a non-negative integer")
            numbers.append(value)
        return numbers[0], numbers[1]

    def pull(self, cursor: Cursor | None) -> Page:
        known_validity, last_uid = self._parse_cursor(cursor)
        with self._session() as conn:
            uidvalidity = self._status_number(conn, "UIDVALIDITY")
            if uidvalidity is None:
                raise ProtocolError("imap: the server reported no UIDVALIDITY")
            uidnext = self._status_number(conn, "UIDNEXT")
            if known_validity is not None and known_validity != uidvalidity:
                log.warning(
                    "imap: UIDVALIDITY of %r changed (%s -> %s): resyncing from UID 1",
                    self.mailbox, known_validity, uidvalidity,
                )  # fmt: skip
                last_uid = 0
            elif uidnext is not None and uidnext <= last_uid:
                log.warning(
                    "imap: UIDNEXT of %r went back (%s <= %s): resyncing from UID 1",
                    self.mailbox, uidnext, last_uid,
                )  # fmt: skip
                last_uid = 0
            uids = self._search(conn, last_uid)
            batch = uids[: self.page_size]
            items: list[SourceItem] = []
            rejects: list[Rejected] = []
            if batch:
                for uid, internaldate, raw in self._fetch(conn, batch):
                    self._normalise(uid, uidvalidity, internaldate, raw, items, rejects)
        # UIDs are never reused within a UIDVALIDITY epoch: a UID that SEARCH listed but
        # FETCH no longer returned was expunged in between, so moving past it loses nothing.
        next_uid = max(batch) if batch else last_uid
        return Page(
            items=items,
            next_cursor={"uidvalidity": uidvalidity, "last_uid": next_uid},
            has_more=len(uids) > len(batch),
            rejects=rejects,
        )

    def _normalise(
        self,
        uid: int,
        uidvalidity: int,
        internaldate: datetime | None,
        raw: bytes,
        items: list[SourceItem],
        rejects: list[Rejected],
    ) -> None:
        try:
            items.append(
                build_item(
                    raw,
                    uid=uid,
                    uidvalidity=uidvalidity,
                    mailbox=self.mailbox,
                    internaldate=internaldate,
                )
            )
        except (ValueError, LookupError, TypeError, IndexError, AttributeError,
                email.errors.MessageError) as exc:  # fmt: skip
            rejects.append(
                Rejected(
                    reason=f"unparseable message: {exc}",
                    payload=raw[:REJECT_PAYLOAD_BYTES].decode("utf-8", errors="replace"),
                    external_id=None,
                    location=f"imap://{self.host}/{self.mailbox};UIDVALIDITY={uidvalidity}/;UID={uid}",
                )
            )

    @staticmethod
    def _status_number(conn: imaplib.IMAP4, name: str) -> int | None:
        _, data = conn.response(name)
        for entry in data or []:
            if entry is None:
                continue
            text = entry.decode() if isinstance(entry, bytes) else str(entry)
            if text.strip().isdigit():
                return int(text.strip())
        return None

    def _search(self, conn: imaplib.IMAP4, last_uid: int) -> list[int]:
        typ, data = conn.uid("SEARCH", f"UID {last_uid + 1}:*")
        if typ != "OK":
            raise ProtocolError(f"imap: UID SEARCH failed: {_text(data)}")
        uids: set[int] = set()
        for entry in data:
            if not entry:
                continue
            for token in (entry.decode() if isinstance(entry, bytes) else str(entry)).split():
                if not token.isdigit():
                    raise ProtocolError(f"imap: UID SEARCH returned {token!r}")
                uids.add(int(token))
        # "n:*" always matches the highest UID, even when it is below n: filter it out.
        return sorted(uid for uid in uids if uid > last_uid)

    def _fetch(
        self, conn: imaplib.IMAP4, batch: list[int]
    ) -> list[tuple[int, datetime | None, bytes]]:
        typ, data = conn.uid(
            "FETCH", ",".join(str(uid) for uid in batch), "(UID INTERNALDATE BODY.PEEK[])"
        )
        if typ != "OK":
            raise ProtocolError(f"imap: UID FETCH failed: {_text(data)}")
        wanted = set(batch)
        fetched: dict[int, tuple[datetime | None, bytes]] = {}
        for index, entry in enumerate(data):
            if not isinstance(entry, tuple):
                continue  # ")" closers and unsolicited flag updates
            meta = entry[0].decode("ascii", errors="replace")
            following = data[index + 1] if index + 1 < len(data) else None
            if isinstance(following, bytes) and not re.match(rb"\s*\d+ \(", following):
                # Items the server sent after the literal, e.g. b" UID 7)".
                meta += following.decode("ascii", errors="replace")
            match = re.search(r"\bUID (\d+)", meta)
            if match is None:
                raise ProtocolError(f"imap: FETCH response without UID: {meta[:200]!r}")
            uid = int(match.group(1))
            if uid in wanted:
                fetched[uid] = (_internaldate(meta), bytes(entry[1]))
        return [(uid, *fetched[uid]) for uid in sorted(fetched)]
