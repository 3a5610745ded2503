"""A Ray cluster that outlives the jobs a test runs against it.

``python ray_head.py NUM_CPUS`` starts a ``ray.cluster_utils.Cluster`` head with
that many CPUs, prints its address on stdout, and keeps it up until its standard
input closes; then it shuts down only that cluster (never ``ray stop``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HELPER = Path(__file__).resolve()


@contextlib.contextmanager
def external_head(num_cpus: int = 2, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a head in its own process; yield its ``HOST:PORT`` address."""
    proc = subprocess.Popen([sys.executable, str(HELPER), str(num_cpus)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, start_new_session=True)
    try:
        line = proc.stdout.readline().strip()  # blocks until the head is up (or died)
        assert line.startswith("address="), f"ray head did not start (exit {proc.poll()})"
        yield line.removeprefix("address=")
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(num_cpus: int) -> int:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": num_cpus, "include_dashboard": False})
    try:
        print(f"address={cluster.address}", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
