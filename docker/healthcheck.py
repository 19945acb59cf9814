"""The containers' HEALTHCHECK: exit 0 when the service's ``GET /health`` answers 200, else 1.

Standard library only (the slim images have no curl). It asks the port the service really
listens on, whatever chose it (``heicconv serve --port``, ``HEICCONV_SERVER_PORT``, the config
file, or ``heicconv worker --health-port``): the TCP sockets that the container's main process
(PID 1, or its first descendant that listens, under an init such as ``docker run --init``)
holds in the LISTEN state, read from ``/proc``. ``HEICCONV_HEALTHCHECK_PID`` names another main
process. ``HEICCONV_SERVER_PORT`` on 127.0.0.1, when set, is asked after those sockets; when no
socket can be read, it is asked alone (default 8000).
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column
_LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def _children(pid: int) -> list[int]:
    found = []
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ')'.
            fields = stat.read_text(encoding="utf-8", errors="replace").rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(stat.parent.name))
    return sorted(found)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:  # gone, or another user's process
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str, family: int) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints the address as 32-bit words in host (little-endian) order.
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = socket.inet_ntop(family, raw)
    return _LOOPBACK[family] if address in {"0.0.0.0", "::"} else address


def listening(pid: int) -> list[tuple[str, int]]:
    """The (address, port) pairs that process ``pid`` listens on over TCP, wildcards given as loopback."""
    inodes = _socket_inodes(pid)
    found: list[tuple[str, int]] = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = (PROC / str(pid) / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in inodes:
                hex_address, _, hex_port = fields[1].partition(":")
                pair = (_address(hex_address, family), int(hex_port, 16))
                if pair not in found:
                    found.append(pair)
    return found


def service_addresses(main_pid: int) -> list[tuple[str, int]]:
    """Where the service listens: the first of ``main_pid`` and its descendants (breadth first) that listens."""
    queue = [main_pid]
    while queue:
        pid = queue.pop(0)
        found = listening(pid)
        if found:
            return found
        queue += _children(pid)
    return []


def healthy(address: str, port: int, timeout: float) -> tuple[bool, str]:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        status = conn.getresponse().status
        return status == 200, f"HTTP {status}"
    except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
        return False, str(exc) or type(exc).__name__
    finally:
        conn.close()


def main() -> int:
    timeout = float(os.environ.get("HEICCONV_HEALTHCHECK_TIMEOUT", "4"))
    main_pid = int(os.environ.get("HEICCONV_HEALTHCHECK_PID", "1"))
    targets = service_addresses(main_pid)
    configured = ("127.0.0.1", int(os.environ.get("HEICCONV_SERVER_PORT", "8000")))
    if not targets or ("HEICCONV_SERVER_PORT" in os.environ and configured not in targets):
        targets.append(configured)  # what the environment names is asked too, after what the process listens on
    reasons = []
    for address, port in targets:
        ok, why = healthy(address, port, timeout)
        if ok:
            return 0
        reasons.append(f"http://{address}:{port}/health: {why}")
    print("unhealthy: " + "; ".join(reasons), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
