"""Networking helpers for the model servers: loopback and wildcard hosts, URLs, whether a
port may be bound (and why not), a free port, and a small HTTP GET for /health and /v1/models."""

from __future__ import annotations

import errno
import ipaddress
import socket
import urllib.error
import urllib.request
from typing import Optional


def is_loopback(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    if h in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip().strip("[]") in ("0.0.0.0", "::", "")


def url_host(host: str) -> str:
    h = host.strip().strip("[]")
    return f"[{h}]" if ":" in h else h


def local_url(host: str, port: int) -> str:
    """Where a client on this machine reaches the server."""
    if is_wildcard(host):
        host = "::1" if ":" in host else "127.0.0.1"
    return f"http://{url_host(host)}:{port}"


def port_problem(host: str, port: int) -> Optional[tuple[str, str]]:
    """None when we may bind host:port; else (what is wrong, what to do).

    In use (EADDRINUSE), not permitted (EACCES: a port below 1024 without root or
    CAP_NET_BIND_SERVICE) and an address that is not this machine's (EADDRNOTAVAIL) are
    different problems with different fixes."""
    fam = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    h = host.strip("[]")
    if h == "localhost":
        h = "127.0.0.1"
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
    except OSError as e:
        return f"cannot open a socket for {host}: {e.strerror}", "use --host 127.0.0.1"
    with s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind((h, port))
        except PermissionError:
            return (
                f"port {port} on {host} may not be bound by this user (permission denied; ports below 1024 "
                "need root or CAP_NET_BIND_SERVICE)",
                "choose a port of 1024 or above (e.g. --port 8000, or --port 0 for any free one)",
            )
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use",
                    "choose another --port (or --port 0 for any free one); `sage-ft-tui serve --status` lists our "
                    "servers",
                )
            if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return (
                    f"{host} is not an address of this machine (cannot bind to it)",
                    "use --host 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
                )
            if isinstance(e, socket.gaierror):
                return f"--host {host} is not a known host name or address", "use --host 127.0.0.1"
            return f"cannot bind {host}:{port}: {e.strerror or e}", "choose another --host or --port"
    return None


def port_free(host: str, port: int) -> bool:
    return port_problem(host, port) is None


def free_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host.strip("[]") if host != "localhost" else "127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, api_key: Optional[str], timeout: float = 3.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, b""
