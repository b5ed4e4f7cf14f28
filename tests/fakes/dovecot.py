"""Not a fake: the distribution's Dovecot, started for a test with a throwaway configuration.

Everything lives in one temporary folder: the configuration, a passwd-file
user, a CA and a server certificate made with ``openssl`` (a dependency of
dovecot-core), the Maildir, the logs. The server listens on loopback ports
picked from the kernel's ephemeral range: implicit TLS (``imaps_port``) and
plain IMAP with STARTTLS (``imap_port``), or with ``tls=False`` plain IMAP
only. As root the mail files belong to ``nobody`` (Dovecot refuses uid 0 for
mail); as another user Dovecot runs rootless under that user.

Messages are delivered by writing Maildir files, the way a local delivery
agent does; the file name carries the flags (``:2,S`` is \\Seen) and the
mtime is the INTERNALDATE, so tests can read both straight from the disk.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

USER = "reader"
PASSWORD = "correct horse battery staple"
_START_ATTEMPTS = 3


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def make_certificates(folder: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed for ``names``: (ca.pem, server.pem, server.key)."""
    openssl = shutil.which("openssl") or "openssl"
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = dict(check=True, capture_output=True)
    subprocess.run([openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
                    "-subj", "/CN=knowledge-pipeline test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], **run)
    subprocess.run([openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], **run)
    alt = ",".join(f"IP:{n}" if n[0].isdigit() or ":" in n else f"DNS:{n}" for n in names)
    extensions = folder / "server.ext"
    extensions.write_text(f"subjectAltName={alt}\nbasicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                          "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    subprocess.run([openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", extensions], **run)
    return ca, cert, key


class Dovecot:
    """One running Dovecot; ``stop()`` (or the context manager) ends it and removes its folder."""

    def __init__(self, binary: str, *, tls: bool = True, listen: str = "127.0.0.1") -> None:
        self.binary = binary
        self.tls = tls
        self.host = listen
        self.root = Path(tempfile.mkdtemp(prefix="kp-dovecot-"))
        self.root.chmod(0o755)
        self.as_root = os.geteuid() == 0
        account = pwd.getpwnam("nobody") if self.as_root else pwd.getpwuid(os.geteuid())
        self.uid, self.gid = account.pw_uid, account.pw_gid
        self.home = self.root / "home" / USER
        self.ca_file, self.cert, self.key = make_certificates(self.root, ("localhost", "127.0.0.1", listen))
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        self.create_folder("INBOX")
        self.imap_port = self.imaps_port = 0
        self.process: subprocess.Popen | None = None
        self._count = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Dovecot:
        problem = ""
        for _ in range(_START_ATTEMPTS):
            self.imap_port, self.imaps_port = _free_port(self.host), _free_port(self.host)
            (self.root / "dovecot.conf").write_text(self._config())
            log = self.root / "dovecot.log"
            log.write_text("")
            self.process = subprocess.Popen([self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            start_new_session=True)
            if self._wait_ready():
                return self
            problem = (self.process.stderr.read().decode(errors="replace") if self.process.poll() is not None
                       else "") + log.read_text()
            self._terminate()
            if "in use" not in problem:
                break
        raise RuntimeError(f"dovecot did not start: {problem.strip()[-2000:]}")

    def _wait_ready(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        ports = [self.imap_port] + ([self.imaps_port] if self.tls else [])
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                for port in ports:
                    socket.create_connection((self.host, port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:  # the master and its children: a session of their own (start_new_session), nothing to keep
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _config(self) -> str:
        root = self.root
        listeners = f"  inet_listener imap {{\n    address = {self.host}\n    port = {self.imap_port}\n  }}\n"
        if self.tls:
            listeners += (f"  inet_listener imaps {{\n    address = {self.host}\n    port = {self.imaps_port}\n"
                          "    ssl = yes\n  }\n")
        else:
            listeners += "  inet_listener imaps {\n    port = 0\n  }\n"
        rootless = "" if self.as_root else (
            f"default_internal_user = {pwd.getpwuid(self.uid).pw_name}\n"
            f"default_login_user = {pwd.getpwuid(self.uid).pw_name}\n"
            "service anvil {\n  chroot =\n}\n")
        chroot = "" if self.as_root else "  chroot =\n"
        tls = (f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.key}\ndisable_plaintext_auth = yes\n"
               if self.tls else "ssl = no\ndisable_plaintext_auth = no\n")
        return (
            f"base_dir = {root}/run\nstate_dir = {root}/state\nlog_path = {root}/dovecot.log\n"
            f"protocols = imap\nlisten = {self.host}\n{tls}auth_mechanisms = plain\n"
            "auth_failure_delay = 0\nmail_fsync = never\n"
            f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {root}/passwd\n}}\n"
            f"userdb {{\n  driver = static\n  args = uid={self.uid} gid={self.gid} home={root}/home/%u\n}}\n"
            "mail_location = maildir:~/Maildir\n"
            f"{rootless}service imap-login {{\n{chroot}{listeners}}}\n"
        )

    # -- the mailbox ----------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        maildir = self.home / "Maildir"
        return maildir if name == "INBOX" else maildir / f".{name}"

    def create_folder(self, name: str) -> None:
        folder = self._folder(name)
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self._own(self.root / "home")

    def _own(self, top: Path) -> None:
        if not self.as_root:
            return
        for path in [top, *top.rglob("*")]:
            os.chown(path, self.uid, self.gid)

    def deliver(self, raw: bytes, *, folder: str = "INBOX", seen: bool = False,
                received: datetime | None = None) -> Path:
        """Put one message in ``folder`` (unread unless ``seen``), arrived at ``received`` (default: now)."""
        self.create_folder(folder)
        self._count += 1
        stamp = received.timestamp() if received else time.time()
        name = f"{int(stamp)}.M{self._count}P{os.getpid()}.kp,S={len(raw)}:2,{'S' if seen else ''}"
        path = self._folder(folder) / "cur" / name
        path.write_bytes(raw)
        os.utime(path, (stamp, stamp))
        if self.as_root:
            os.chown(path, self.uid, self.gid)
        return path

    def flags(self, folder: str = "INBOX") -> dict[str, str]:
        """Each message file's base name (without flags) -> its Maildir flags, as Dovecot keeps them."""
        found = {}
        for sub in ("cur", "new"):
            for path in (self._folder(folder) / sub).iterdir():
                base, _, flags = path.name.partition(":2,")
                found[base.split(",S=")[0]] = flags if sub == "cur" else "(new)"
        return found

    def log(self) -> str:
        return (self.root / "dovecot.log").read_text(errors="replace")


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (for the clear-text refusal), if any."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address
