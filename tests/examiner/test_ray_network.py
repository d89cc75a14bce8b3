"""Issue 17: the local Ray instance the search and the generators start listens on
loopback only (Ray's services have no authentication beyond its own token)."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from examiner.search.backends import make_evaluator
from examiner.search.errors import BackendError

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (optional extra [ray])"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads listening sockets from /proc (Linux only)"),
]


def _decode(hex_addr: str) -> str:
    """An address from /proc/net/tcp{,6}: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_addr)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))


def _listening() -> dict[str, str]:
    """socket inode -> 'address:port' for every listening TCP socket in this network namespace."""
    out = {}
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A":  # TCP_LISTEN
                continue
            addr, port = f[1].split(":")
            out[f[9]] = f"{_decode(addr)}:{int(port, 16)}"
    return out


def _process_tree(root: int) -> dict[int, str]:
    """pid -> command name for `root` and all its descendants."""
    parent, comm = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            comm[int(d.name)] = stat[stat.index("(") + 1:stat.rindex(")")]
    tree, grew = {root}, True
    while grew:
        new = {p for p, pp in parent.items() if pp in tree} - tree
        tree |= new
        grew = bool(new)
    return {p: comm.get(p, "?") for p in tree}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in (Path("/proc") / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _listeners_of_tree(root: int, ignore: set[str]) -> list[tuple[str, str]]:
    """(process name, 'address:port') for each socket `root` or a descendant listens on."""
    listening = _listening()
    found = []
    for pid, name in _process_tree(root).items():
        for inode in _socket_inodes(pid) - ignore:
            if inode in listening:
                found.append((name, listening[inode]))
    return sorted(set(found))


def _loopback(addr_port: str) -> bool:
    ip = ipaddress.ip_address(addr_port.rsplit(":", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _constant_factory():
    """A picklable evaluator factory (a local class, so Ray's cloudpickle sends it by value):
    every row scores 0."""
    from examiner.search.outcome import Outcome

    class Constant:
        def __call__(self):
            return self

        def evaluate(self, U):
            return [Outcome(error=0.0) for _ in U]

    return Constant()


def test_decode_proc_net_addresses():
    assert _decode("0100007F") == "127.0.0.1"
    assert _decode("00000000") == "0.0.0.0"
    mapped = ipaddress.ip_address(_decode("0000000000000000FFFF00000100007F"))
    assert mapped == ipaddress.ip_address("::ffff:127.0.0.1")
    assert not _loopback("::ffff:192.0.2.2:80") and _loopback("::ffff:127.0.0.1:80") and not _loopback(":::80")


@pytest.mark.slow
def test_local_ray_listens_on_loopback_only(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            pytest.skip("a Ray instance is already running in this process")
    before = set(_listening())
    ev = make_evaluator(_constant_factory(), "ray", 2)
    try:
        assert [o.error for o in ev.evaluate(np.zeros((4, 3)))] == [0.0] * 4  # the workers' servers are up
        found = _listeners_of_tree(os.getpid(), ignore=before)
    finally:
        ev.close()
    names = {name for name, _ in found}
    # GCS, raylet (node manager, object manager), the driver's and each worker's core-worker server
    assert {"gcs_server", "raylet"} <= names and len(found) >= 5, found
    exposed = [(name, addr) for name, addr in found if not _loopback(addr)]
    assert exposed == [], f"Ray listeners beyond loopback: {exposed}"


def test_refuses_a_local_instance_beyond_loopback(monkeypatch):
    """ray imported before import_ray could set LOOPBACK_RAY_ENV (or the user set it to 1):
    Ray would pick the host's address, so nothing is started and the error names the fix."""
    from examiner.search.backends import import_ray, start_local_ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray = import_ray()
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "192.0.2.2")
    with pytest.raises(BackendError, match=r"would listen on 192\.0\.2\.2.*RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0"):
        start_local_ray(ray, 1)
    assert not ray.is_initialized()


def test_import_ray_keeps_the_node_ip_on_loopback_and_restores_the_env():
    """A fresh interpreter (ray must not be imported yet): after import_ray the variable is
    gone again from os.environ, and the node IP Ray would use stays loopback."""
    import subprocess

    code = (
        "import os\n"
        "from examiner.search.backends import import_ray\n"
        "ray = import_ray()\n"
        "print('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER' in os.environ, ray.util.get_node_ip_address())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    still_set, node_ip = out.stdout.split()
    assert still_set == "False" and _loopback(f"{node_ip}:0"), out.stdout
