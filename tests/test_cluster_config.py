"""Offline checks of the Ray cluster-launcher configs at the repository root.

`ray up` first runs `prepare_config` (merge with the provider's bundled
defaults.yaml, fill per-node-type worker bounds; for the local provider, build
its single node type from head_ip/worker_ips) and then `validate_config`
(jsonschema against ray/autoscaler/ray-schema.json plus cross-field checks).
Both are pure functions of the dict and read only files inside the ray package.
Every AWS call (instance-type lookup, IAM profile, key pair, subnets, security
groups, AMI) comes later, in the provider's bootstrap step, which these tests
never reach; the autouse fixture below blocks sockets to keep it that way.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import pytest
import yaml
from jsonschema import ValidationError
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[1]
AWS_CONFIG = REPO / "cluster.yaml"
LOCAL_CONFIG = REPO / "cluster-local.yaml"
CONFIGS = [AWS_CONFIG, LOCAL_CONFIG]
CLUSTER_DOC = REPO / "docs" / "cluster.md"

# RFC 5737 documentation ranges: placeholders that can never be a real host.
DOCUMENTATION_NETWORKS = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]

# Key names that would only be there to hold a secret.
SECRET_KEY_NAME = re.compile(
    r"access_key|secret|token|password|passwd|credential|session_key|api_key", re.I
)
# Secret material, matched in the raw text so commented-out lines count too.
SECRET_TEXT = [
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"aws_(?:access_key_id|secret_access_key|session_token)", re.I),
    re.compile(r"(?:password|passwd|secret|token)\s*[:=]\s*\S", re.I),
]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a connection or resolve a name."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return yaml.safe_load(f)


def prepare_and_validate(config: dict[str, Any]) -> dict[str, Any]:
    """Run the offline half of `ray up`'s config bootstrap."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def mapping_keys(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (yaml.path, key) for every mapping key, however deep."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key)
            yield from mapping_keys(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from mapping_keys(value, f"{path}[{i}]")


def credential_findings(text: str) -> list[str]:
    """Everything in a YAML text that looks like a secret or a place for one."""
    findings = [f"text matches {p.pattern!r}" for p in SECRET_TEXT if p.search(text)]
    findings += [
        f"key {path}"
        for path, key in mapping_keys(yaml.safe_load(text))
        if SECRET_KEY_NAME.search(key)
    ]
    return findings


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_against_ray_schema(path: Path) -> None:
    prepared = prepare_and_validate(load(path))
    assert prepared["cluster_name"].startswith("fraud-tuning")


Mutation = Callable[[dict[str, Any]], None]


def _drop_worker_node_config(c: dict[str, Any]) -> None:
    del c["available_node_types"]["gpu_worker"]["node_config"]


def _fractional_gpu_node(c: dict[str, Any]) -> None:
    c["available_node_types"]["gpu_worker"]["resources"]["GPU"] = 0.25


def _too_many_min_workers(c: dict[str, Any]) -> None:
    c["available_node_types"]["gpu_worker"]["min_workers"] = c["max_workers"] + 1


def _local_node_types(c: dict[str, Any]) -> None:
    c["available_node_types"] = {"gpu": {"node_config": {}, "resources": {"GPU": 1}}}


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        pytest.param(
            lambda c: c.update(max_worker=4), ValidationError, "Additional properties",
            id="unknown-top-level-key",
        ),
        pytest.param(
            lambda c: c.update(max_workers="many"), ValidationError,
            "'many' is not of type 'integer'", id="max-workers-not-int",
        ),
        pytest.param(
            _drop_worker_node_config, ValidationError, "'node_config' is a required property",
            id="node-type-without-node-config",
        ),
        # Node resources are whole units; fractions belong to per-trial requests.
        pytest.param(
            _fractional_gpu_node, ValidationError, "0.25 is not of type 'integer'",
            id="fractional-node-gpu",
        ),
        pytest.param(
            lambda c: c.update(head_node_type="nope"), ValueError, "head_node_type",
            id="unknown-head-node-type",
        ),
        pytest.param(_too_many_min_workers, ValueError, "max_workers", id="min-workers-over-max"),
        pytest.param(
            lambda c: c["provider"].update(type="nope"), NotImplementedError, "nope",
            id="unknown-provider-type",
        ),
    ],
)
def test_broken_aws_config_is_rejected(
    mutate: Mutation, error: type[Exception], match: str
) -> None:
    config = load(AWS_CONFIG)
    prepare_and_validate(config)  # the unbroken file passes
    mutate(config)
    with pytest.raises(error, match=re.escape(match)):
        prepare_and_validate(config)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        pytest.param(
            lambda c: c.update(max_worker=2), ValidationError, "Additional properties",
            id="unknown-top-level-key",
        ),
        # The local provider builds its own node type and refuses user-defined ones.
        pytest.param(
            _local_node_types, click.ClickException, "available_node_types",
            id="node-types-not-allowed",
        ),
        pytest.param(
            lambda c: c["provider"].pop("worker_ips"), click.ClickException, "worker_ips",
            id="no-worker-ips",
        ),
    ],
)
def test_broken_local_config_is_rejected(
    mutate: Mutation, error: type[Exception], match: str
) -> None:
    config = load(LOCAL_CONFIG)
    prepare_and_validate(config)
    mutate(config)
    with pytest.raises(error, match=re.escape(match)):
        prepare_and_validate(config)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_no_credentials_in_cluster_config(path: Path) -> None:
    assert credential_findings(path.read_text()) == []


def test_no_credentials_in_cluster_doc() -> None:
    text = CLUSTER_DOC.read_text()
    assert [p.pattern for p in SECRET_TEXT[:3] if p.search(text)] == []


@pytest.mark.parametrize(
    "planted",
    [
        "provider:\n  type: aws\n  aws_credentials:\n    region: x\n",
        "auth:\n  ssh_password: hunter2\n",
        "# key id: AKIAABCDEFGHIJKLMNOP\ncluster_name: x\n",
        "auth:\n  ssh_user: a\n# -----BEGIN OPENSSH PRIVATE KEY-----\n",
    ],
)
def test_credential_guard_catches_planted_secrets(planted: str) -> None:
    assert credential_findings(planted)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_dashboard_binds_to_localhost(path: Path) -> None:
    prepared = prepare_and_validate(load(path))
    head_starts = [c for c in prepared["head_start_ray_commands"] if "ray start --head" in c]
    assert len(head_starts) == 1
    assert "--dashboard-host=127.0.0.1" in head_starts[0]
    every_command = [
        c
        for key in ("head_start_ray_commands", "worker_start_ray_commands", "setup_commands")
        for c in prepared[key]
    ]
    assert not [c for c in every_command if "0.0.0.0" in c]


def test_gpu_worker_type_declares_gpus() -> None:
    prepared = prepare_and_validate(load(AWS_CONFIG))
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    assert head["resources"]["CPU"] >= 1

    gpu_types = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    assert list(gpu_types) == ["gpu_worker"]
    worker = gpu_types["gpu_worker"]
    assert worker["node_config"]["InstanceType"] == "g5.xlarge"
    assert worker["resources"] == {"CPU": 4, "GPU": 1}
    assert worker["min_workers"] == 0  # scale from zero
    assert 1 <= worker["max_workers"] <= prepared["max_workers"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_file_mounts_exist_and_project_is_installed(path: Path) -> None:
    config = load(path)
    # `ray up` asserts every local path exists, relative to where it runs.
    missing = [local for local in config["file_mounts"].values() if not (REPO / local).exists()]
    assert missing == []
    assert any(remote.startswith("~/fraud-tuning/") for remote in config["file_mounts"])
    assert any("pip install -e ~/fraud-tuning" in c for c in config["setup_commands"])


def test_local_config_uses_documentation_addresses() -> None:
    provider = load(LOCAL_CONFIG)["provider"]
    addresses = [provider["head_ip"], *provider["worker_ips"]]
    outside = [
        a for a in addresses
        if not any(ipaddress.ip_address(a) in net for net in DOCUMENTATION_NETWORKS)
    ]
    assert outside == []
