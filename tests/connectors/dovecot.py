"""A throwaway real Dovecot IMAP server for tests.

``run_dovecot()`` starts Debian's ``dovecot`` from a private temporary directory (its own
configuration, passwd-file user, Maildir, self-signed TLS material made with ``openssl``)
on two free loopback ports — ``port`` speaks plain IMAP and offers STARTTLS, ``tls_port``
is implicit TLS (imaps) — and stops it on exit. Nothing outside the temporary directory is
touched. Use it from a session-scoped fixture::

    @pytest.fixture(scope="session")
    def dovecot() -> Iterator[Dovecot]:
        with run_dovecot() as server:
            yield server

Without the ``dovecot`` binary the test is skipped — except under ``CI=true``, where a
missing server is a broken environment and fails the run.

Install: ``apt-get install -y dovecot-imapd`` (``openssl`` comes with Debian).
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

MISSING = "dovecot not installed: apt-get install dovecot-imapd"
HOST = "127.0.0.1"
USER = "support"


def require_dovecot() -> str:
    """Return the ``dovecot`` binary; skip the test without it (fail under ``CI=true``)."""
    binary = shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/sbin/dovecot") if os.access(p, os.X_OK)), None
    )
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found: apt-get install openssl")
    subprocess.run(
        [openssl, *args], check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )


def _make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""
    directory.mkdir()
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n"
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
             "-subj", "/CN=Andon test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _openssl("req", "-new", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca_crt, crt, key


def _config(root: Path, port: int, tls_port: int, crt: Path, key: Path) -> str:
    if os.geteuid() == 0:
        # The package's own unprivileged users run the login and mail processes.
        users = ""
        owner = "uid=dovecot gid=dovecot"
        chroot = ""
    else:
        # Dovecot can run entirely as one unprivileged user (no chroot, no setuid).
        name = pwd.getpwuid(os.getuid()).pw_name
        users = f"default_login_user = {name}\ndefault_internal_user = {name}\n"
        owner = f"uid={os.getuid()} gid={os.getgid()}"
        chroot = "  chroot =\n"
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
{users}protocols = imap
listen = {HOST}
ssl = yes
ssl_cert = <{crt}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = {owner} home={root}/mail/%u mail=maildir:{root}/mail/%u/Maildir
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {tls_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@dataclass
class Dovecot:
    """A running throwaway server; ``port`` is plain IMAP + STARTTLS, ``tls_port`` is imaps."""

    root: Path
    port: int
    tls_port: int
    ca_file: str
    username: str
    password: str
    host: str = HOST

    def config(self, mailbox: str = "INBOX", **overrides: object) -> dict[str, object]:
        """An ``imap`` connector configuration for this server (plain IMAP on loopback)."""
        config: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "security": "none",
            "username": self.username,
            "password_env": "ANDON_IMAP_PASSWORD",
            "mailbox": mailbox,
            "timeout": 10,
        }
        config.update(overrides)
        return config

    def env(self) -> dict[str, str]:
        return {"ANDON_IMAP_PASSWORD": self.password}

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """An authenticated admin session for seeding (plain IMAP on loopback)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            conn.login(self.username, self.password)
            yield conn
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                conn.logout()

    def create_mailbox(self, name: str | None = None) -> str:
        """Create a fresh mailbox (a unique name unless given) and return its name."""
        name = name or f"test-{secrets.token_hex(4)}"
        with self.client() as conn:
            typ, data = conn.create(_quote(name))
            assert typ == "OK", data
        return name

    def append(self, mailbox: str, message: bytes, when: datetime | None = None) -> None:
        """APPEND ``message`` (bytes with CRLF or LF line ends) to ``mailbox``."""
        date = imaplib.Time2Internaldate(when) if when is not None else None
        with self.client() as conn:
            typ, data = conn.append(_quote(mailbox), "", date, message)
            assert typ == "OK", data

    def append_many(self, mailbox: str, messages: list[bytes]) -> None:
        """APPEND several messages over one connection, in order (ascending UIDs)."""
        with self.client() as conn:
            for message in messages:
                typ, data = conn.append(_quote(mailbox), "", None, message)
                assert typ == "OK", data

    def uidvalidity(self, mailbox: str) -> int:
        with self.client() as conn:
            typ, data = conn.status(_quote(mailbox), "(UIDVALIDITY)")
            assert typ == "OK", data
            text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
            return int(text.rsplit("UIDVALIDITY", 1)[1].strip(" ()"))

    def expunge_all(self, mailbox: str) -> None:
        """Delete every message of ``mailbox`` (UIDs are not reused: UIDVALIDITY stays)."""
        with self.client() as conn:
            conn.select(_quote(mailbox))
            conn.store("1:*", "+FLAGS", "(\\Deleted)")
            conn.expunge()

    def recreate_mailbox(self, mailbox: str) -> int:
        """Delete and re-create ``mailbox`` (emptied) so it gets a new UIDVALIDITY; return it."""
        before = self.uidvalidity(mailbox)
        with self.client() as conn:
            typ, data = conn.delete(_quote(mailbox))
            assert typ == "OK", data
            typ, data = conn.create(_quote(mailbox))
            assert typ == "OK", data
        after = self.uidvalidity(mailbox)
        assert after != before, "UIDVALIDITY did not change after re-creating the mailbox"
        return after

    def stop(self) -> None:
        _stop(self.root)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_ready(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"dovecot did not answer on {HOST}:{port}")
        time.sleep(0.05)


def _stop(root: Path) -> None:
    """Stop the server started from ``root`` (by the pid it wrote) and remove ``root``."""
    pid_file = root / "run" / "master.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def start_dovecot() -> Dovecot:
    """Start a throwaway Dovecot; the caller must call :meth:`Dovecot.stop`."""
    binary = require_dovecot()
    root = Path(tempfile.mkdtemp(prefix="andon-dovecot-"))
    # The mail processes run as the dovecot user and must reach the Maildir below root.
    root.chmod(0o755)
    try:
        ca_crt, crt, key = _make_tls(root / "tls")
        password = secrets.token_urlsafe(12)
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{password}\n")
        (root / "mail").mkdir()
        if os.geteuid() == 0:
            os.chown(root / "mail", pwd.getpwnam("dovecot").pw_uid, grp.getgrnam("dovecot").gr_gid)
        port, tls_port = _free_port(), _free_port()
        while tls_port == port:
            tls_port = _free_port()
        conf = root / "dovecot.conf"
        conf.write_text(_config(root, port, tls_port, crt, key))
        with (root / "stdout.log").open("wb") as out:
            # dovecot daemonises; its output goes to a file so nobody waits on a pipe.
            started = subprocess.run(
                [binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=30,
                check=False,
            )
        server = Dovecot(
            root=root,
            port=port,
            tls_port=tls_port,
            ca_file=str(ca_crt),
            username=USER,
            password=password,
        )
        if started.returncode != 0:
            output = (root / "stdout.log").read_text(errors="replace")
            pytest.fail(
                f"dovecot failed to start (exit {started.returncode}):\n{output}\n{server.log()}"
            )
        deadline = time.monotonic() + 15
        _wait_ready(port, deadline)
        _wait_tls(tls_port, str(ca_crt), deadline)
    except BaseException:
        _stop(root)
        raise
    return server


@contextlib.contextmanager
def run_dovecot() -> Iterator[Dovecot]:
    """Start a throwaway Dovecot, yield it, stop it and remove its directory."""
    server = start_dovecot()
    try:
        yield server
    finally:
        server.stop()


_shared: Dovecot | None = None


def shared_dovecot() -> Dovecot:
    """One server for the whole process, started on first use and stopped at exit.

    For callers that have no fixture teardown to hook into (the contract rigs).
    """
    global _shared
    if _shared is None:
        _shared = start_dovecot()
        atexit.register(_shared.stop)
    return _shared


def _wait_tls(port: int, ca_file: str, deadline: float) -> None:
    context = ssl.create_default_context(cafile=ca_file)
    while True:
        try:
            with (
                socket.create_connection((HOST, port), timeout=1) as raw,
                context.wrap_socket(raw, server_hostname=HOST) as sock,
            ):
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"dovecot did not answer TLS on {HOST}:{port}")
        time.sleep(0.05)
