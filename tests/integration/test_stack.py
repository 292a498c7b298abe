import os
import socket
import subprocess
import sys

import pytest
import redis

from streamrec.infra.core.config import load_config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.devstack.daemon import port_open
from streamrec.infra.devstack.stack import LocalStack
from tests.conftest import free_port

pytestmark = pytest.mark.slow  # starts and stops private stacks


def _private_config(tmp_path, **env):
    return load_config(
        environ={
            "STREAMREC_STACK_STATE_DIR": str(tmp_path / "state"),
            "STREAMREC_STACK_KAFKA_PORT": str(free_port()),
            "STREAMREC_STACK_REDIS_PORT": str(free_port()),
            **env,
        }
    )


def test_up_again_starts_nothing_and_status_answers(stack):
    local = LocalStack(stack)
    assert local.up() == []
    statuses = {s.name: s for s in local.status()}
    assert statuses["kafka"].answering and statuses["kafka"].pid
    assert statuses["redis"].answering and statuses["redis"].pid


def test_down_leaves_no_process_and_frees_the_ports(tmp_path):
    config = _private_config(tmp_path)
    local = LocalStack(config)
    assert local.up() == ["kafka", "redis"]
    pids = [s.pid for s in local.status()]
    assert local.down() == ["kafka", "redis"]
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")
    assert not port_open("127.0.0.1", config.stack.kafka_port)
    assert not port_open("127.0.0.1", config.stack.redis_port)
    assert local.down() == []


def test_a_taken_port_is_a_clear_error(tmp_path):
    config = _private_config(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.stack.redis_port))
        squatter.listen()
        local = LocalStack(config)
        with pytest.raises(
            StreamrecError, match=f"port {config.stack.redis_port} for redis is already taken"
        ):
            local.up()
    assert all(s.pid is None for s in local.status())  # kafka, started first, was stopped again


def test_configured_services_are_external_and_never_started(stack, tmp_path):
    config = _private_config(
        tmp_path,
        STREAMREC_KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        STREAMREC_REDIS_URL=stack.redis_url,
    )
    local = LocalStack(config)
    assert local.up() == []
    assert all(s.external and s.answering and s.pid is None for s in local.status())
    assert local.down() == []


def test_stack_cli_reports_an_unreachable_external_service(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env |= {
        "STREAMREC_STACK_STATE_DIR": str(tmp_path),
        "STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "STREAMREC_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "streamrec.infra.cli", "stack", "status"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 3
    assert result.stdout.count("external") == 2 and result.stdout.count("NOT answering") == 2


def test_embedded_redis_keeps_nothing_on_disk(stack):
    client = redis.Redis.from_url(stack.redis_url)
    assert client.config_get("save")["save"] == ""
    assert client.config_get("appendonly")["appendonly"] == "no"
