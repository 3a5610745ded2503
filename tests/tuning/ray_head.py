"""A Ray cluster that outlives the jobs a test runs against it.

``python ray_head.py NUM_CPUS [CLIENT_PORT]`` starts a ``ray.cluster_utils.Cluster``
head with that many CPUs (and a Ray Client server on CLIENT_PORT, if given), prints
its address and node id on stdout, and keeps it up until its standard input
closes; then it shuts down only that cluster (never ``ray stop``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HELPER = Path(__file__).resolve()


@contextlib.contextmanager
def external_head(num_cpus: int = 2, env: dict[str, str] | None = None,
                  client_port: int | None = None, with_node_id: bool = False) -> Iterator[Any]:
    """Start a head in its own process; yield its ``HOST:PORT`` (and node id)."""
    args = [sys.executable, str(HELPER), str(num_cpus), *([str(client_port)] if client_port else [])]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
    try:
        line = proc.stdout.readline().strip()  # blocks until the head is up (or died)
        assert line.startswith("address="), f"ray head did not start (exit {proc.poll()})"
        address, _, node_id = line.removeprefix("address=").partition(" node=")
        yield (address, node_id) if with_node_id else address
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(num_cpus: int, client_port: int | None = None) -> int:
    from ray.cluster_utils import Cluster

    extra = {"ray_client_server_port": client_port} if client_port else {}
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": num_cpus, "include_dashboard": False, **extra})
    try:
        print(f"address={cluster.address} node={cluster.head_node.node_id}", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(*map(int, sys.argv[1:3])))
