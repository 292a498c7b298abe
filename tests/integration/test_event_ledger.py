"""The Redis event ledger: claims and watermarks decide a replayed batch as the first attempt."""

from streamrec.infra.stores import open_event_ledger


def test_the_first_claimant_holds_an_event_and_keeps_it_when_replayed(config):
    ledger = open_event_ledger(config)
    assert ledger.claim([("e1", "0:0:5"), ("e2", "0:1:7")], ttl_seconds=60) == [True, True]
    assert ledger.claim([("e1", "1:0:9"), ("e3", "1:0:10")], ttl_seconds=60) == [False, True]
    assert ledger.claim([("e1", "0:0:5"), ("e2", "0:1:7")], ttl_seconds=60) == [True, True]
    assert ledger.claim([], ttl_seconds=60) == []


def test_claims_expire_after_their_ttl(config):
    import redis

    open_event_ledger(config).claim([("e9", "0:0:1")], ttl_seconds=100)
    ttl = redis.Redis.from_url(config.redis_url).ttl(f"{config.redis.key_prefix}:claims:e9")
    assert 90 < ttl <= 100


def test_claims_are_answered_in_order_across_chunks(config):
    ledger = open_event_ledger(config)
    ledger.claim([(f"c{n}", "a") for n in range(0, 12000, 2)], ttl_seconds=60)
    held = ledger.claim([(f"c{n}", "b") for n in range(12000)], ttl_seconds=60)
    assert held == [n % 2 == 1 for n in range(12000)]


def test_a_replayed_batch_reads_the_watermark_it_read_the_first_time(config):
    ledger = open_event_ledger(config)
    assert ledger.watermarks("t", 0) == {}
    ledger.record_watermarks("t", 0, {0: 100, 1: 50})
    assert ledger.watermarks("t", 1) == {0: 100, 1: 50}
    ledger.record_watermarks("t", 1, {0: 200})
    assert ledger.watermarks("t", 1) == {0: 100, 1: 50}  # batch 1 replayed: what it saw before
    assert ledger.watermarks("t", 2) == {0: 200, 1: 50}
    ledger.record_watermarks("t", 1, {0: 200})  # the replay records again: nothing changes
    assert ledger.watermarks("t", 1) == {0: 100, 1: 50}
    assert ledger.watermarks("other-topic", 2) == {}
