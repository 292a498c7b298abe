"""Key names: unchanged on one server; in a cluster, each script's keys share one slot."""

import re

import pytest
from redis.crc import key_slot

from streamrec.infra.core.config import load_config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage.adapters.redis_keys import RedisKeys

ONE, CLUSTER = RedisKeys("sr", cluster=False), RedisKeys("sr", cluster=True)


def _slot(key: str) -> int:
    return key_slot(key.encode())


def test_one_server_keeps_the_names_it_always_had():
    assert ONE.history("u-1") == "sr:user_history:u-1"
    assert ONE.user("user-watermark:events", "u-1") == "sr:user-watermark:events:u-1"
    assert ONE.claims("u-1") + "e-9" == "sr:claims:e-9"
    assert ONE.group("items") == "sr"


@pytest.mark.parametrize("user", ["u-1", "a}b", "{x}", "ü-ñ"])
def test_in_a_cluster_every_key_of_a_user_has_the_users_slot(user):
    keys = [CLUSTER.history(user), CLUSTER.user("claimed", user),
            CLUSTER.user("user-watermark:events", user), CLUSTER.claims(user) + "e-9"]  # fmt: skip
    assert len({_slot(key) for key in keys}) == 1
    assert all(key.startswith("sr:") for key in keys)  # found by the namespace's pattern


def test_in_a_cluster_users_spread_and_each_group_is_one_slot():
    assert len({_slot(CLUSTER.history(f"u-{n}")) for n in range(1000)}) > 900
    for group in ("items", "catalog"):
        prefix = CLUSTER.group(group)
        assert _slot(prefix + ":pop:1d:b:17") == _slot(prefix + ":freq:meta")
    assert _slot(CLUSTER.group("items")) != _slot(CLUSTER.group("catalog"))


def test_a_brace_in_the_prefix_is_refused_in_cluster_mode():
    with pytest.raises(StreamrecError, match=re.escape("key_prefix 'a{b}' has a brace")):
        load_config(
            environ={"STREAMREC_REDIS_MODE": "cluster", "STREAMREC_REDIS_KEY_PREFIX": "a{b}"}
        )
