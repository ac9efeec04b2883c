"""ZeroMQ exposure: loopback-only binds by default, a warning for anything else, and CurveZMQ
for the one hop that may cross hosts (IQ from ``lgvsc send`` to ``lgvsc receive``).

GNU Radio 3.10's ZMQ blocks have no security options, so the flowgraphs keep every socket on
127.0.0.1 and a relay thread carries the IQ across the network: on the sender it pulls from the
tx flowgraph and pushes to the receiver as a CURVE server (clients authenticated against a
directory of public keys); on the receiver it pulls as a CURVE client and pushes to the rx
flowgraph locally. Messages pass unchanged, so the flowgraphs cannot tell the difference.

Keys are CurveZMQ certificates as pyzmq writes them (``lgvsc keys DIR NAME`` makes NAME.key and
NAME.key_secret); only the public half ever leaves a host.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
MAX_IQ_MESSAGE_BYTES = 16 << 20  # the relay refuses larger messages (GNU Radio sends kB chunks)


class SecurityError(ValueError):
    pass


def is_loopback(address: str) -> bool:
    """True for tcp://127.x / localhost / ::1 and for ipc:// and inproc:// (no network)."""
    parsed = urlparse(address)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = (parsed.hostname or "").strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or an interface: reachable from elsewhere as far as we know


def bind_warning(address: str, what: str, encrypted: bool = False) -> str | None:
    """The warning a user gets for binding ``address``, or None for a loopback bind."""
    if is_loopback(address):
        return None
    if encrypted:
        return f"warning: {what} listens on {address}, reachable from other hosts (CurveZMQ encrypted)"
    return (f"warning: {what} listens on {address}, reachable from other hosts, unencrypted and "
            "unauthenticated: anyone who can connect receives it (use --curve-key for CurveZMQ)")


def make_keys(directory: str | Path, name: str) -> tuple[Path, Path]:
    """A CurveZMQ key pair: (public NAME.key, secret NAME.key_secret)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(directory), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def load_keys(path: str | Path, need_secret: bool = True) -> tuple[bytes, bytes | None]:
    path = Path(path)
    if not path.is_file():
        raise SecurityError(f"no CurveZMQ key file {path}")
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise SecurityError(f"{path} is not a CurveZMQ certificate: {exc}") from None
    if need_secret and secret is None:
        raise SecurityError(f"{path} holds no secret key (pass the .key_secret file)")
    return public, secret


@dataclass(frozen=True)
class CurveServer:
    secret_file: Path  # this host's NAME.key_secret
    clients_dir: Path | None = None  # public keys allowed to connect; None: any client with the server key


@dataclass(frozen=True)
class CurveClient:
    secret_file: Path  # this host's NAME.key_secret
    server_public_file: Path  # the sender's NAME.key


class IqRelay:
    """Forwards every IQ message between a flowgraph's local socket (``inner``) and the network
    (``outer``) on a thread. Outbound (sender): pulls from the tx flowgraph's bind and serves
    ``outer`` as a CURVE server. Inbound (receiver): pulls from ``outer`` as a CURVE client and
    serves the rx flowgraph on ``inner``."""

    def __init__(self, inner: str, outer: str, *, outbound: bool, server: CurveServer | None = None,
                 client: CurveClient | None = None) -> None:
        if (server is None) == (client is None) or outbound != (server is not None):
            raise SecurityError("an outbound relay needs server keys, an inbound one client keys")
        self.ctx = zmq.Context()
        self.auth: ThreadAuthenticator | None = None
        if outbound:
            self.pull = self._plain(zmq.PULL, inner, bind=False)
            self.push = self._curve(zmq.PUSH, outer, server=server)
        else:
            self.pull = self._curve(zmq.PULL, outer, client=client)
            self.push = self._plain(zmq.PUSH, inner, bind=True)
        self.pull.setsockopt(zmq.MAXMSGSIZE, MAX_IQ_MESSAGE_BYTES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lgvsc-iq-relay", daemon=True)

    def _plain(self, kind: int, address: str, bind: bool) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        (sock.bind if bind else sock.connect)(address)
        return sock

    def _curve(self, kind: int, address: str, server: CurveServer | None = None,
               client: CurveClient | None = None) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 1000)  # let the last bursts out on close
        if server is not None:  # listens; authenticates clients when given their keys
            public, secret = load_keys(server.secret_file)
            if server.clients_dir is not None:
                self._authenticate(server.clients_dir)
            sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, True
            sock.bind(address)
        else:
            public, secret = load_keys(client.secret_file)
            sock.curve_secretkey, sock.curve_publickey = secret, public
            sock.curve_serverkey = load_keys(client.server_public_file, need_secret=False)[0]
            sock.connect(address)
        return sock

    def _authenticate(self, clients_dir: Path) -> None:
        if not Path(clients_dir).is_dir():
            raise SecurityError(f"no directory of client public keys {clients_dir}")
        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        self.auth.configure_curve(domain="*", location=str(clients_dir))

    def start(self) -> IqRelay:
        self._thread.start()
        return self

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                parts = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
                self.push.send_multipart(parts, copy=False)
            except zmq.Again:
                continue
            except zmq.ZMQError:
                break

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self.pull.close()
        self.push.close()
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()

    def __enter__(self) -> IqRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
