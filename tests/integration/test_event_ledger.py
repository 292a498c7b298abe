"""The Redis event ledger: claims and watermarks decide a replayed batch as the first attempt."""

import redis

from streamrec.infra.storage import open_event_ledger
from streamrec.infra.storage.ports.event_ledger import Claim

HOUR = 3_600_000


def test_the_first_claimant_holds_an_event_and_keeps_it_when_replayed(config):
    ledger = open_event_ledger(config)
    first = [Claim("e1", "0:0:5", "u", 1), Claim("e2", "0:1:7", "v", 2)]
    assert ledger.claim(first) == [True, True]
    assert ledger.claim([Claim("e1", "1:0:9", "u", 1), Claim("e3", "1:0:10", "u", 3)]) == [
        False,
        True,
    ]
    assert ledger.claim(first) == [True, True]
    assert ledger.claim([]) == []


def test_claims_never_expire_on_the_clock(config):
    open_event_ledger(config).claim([Claim("e9", "0:0:1", "u", 1)])
    client = redis.Redis.from_url(config.redis_url)
    assert client.ttl(f"{config.redis.key_prefix}:claims:e9") == -1  # no expiry


def test_claims_are_forgotten_once_their_users_timeline_is_a_horizon_past_them(config):
    ledger, day = open_event_ledger(config), 24 * HOUR
    old, new = Claim("old", "0:0:1", "u", 100 * HOUR), Claim("new", "1:0:2", "u", 200 * HOUR)
    other = Claim("other", "1:1:1", "v", 100 * HOUR)
    assert ledger.claim([old]) == [True]
    ledger.record_users("t", 0, {"u": 100 * HOUR}, [old], day)
    assert ledger.claim([new, other]) == [True, True]
    ledger.record_users("t", 1, {"u": 200 * HOUR, "v": 100 * HOUR}, [new, other], day)
    ledger.record_users("t", 2, {"u": 300 * HOUR}, [], day)
    # Batch 2 read u's watermark as 200h: "old" (100h) is late from then on, "new" is not.
    assert ledger.claim([Claim("old", "3:0:1", "u", 100 * HOUR)]) == [True]
    assert ledger.claim([Claim("new", "3:0:2", "u", 200 * HOUR)]) == [False]
    assert ledger.claim([Claim("other", "3:1:1", "v", 100 * HOUR)]) == [False]  # v moved not
    client = redis.Redis.from_url(config.redis_url)
    assert client.zrange(f"{config.redis.key_prefix}:claimed:u", 0, -1) == [b'["new"]']


def test_a_batchs_claims_are_kept_until_its_newest_is_a_horizon_behind(config):
    ledger = open_event_ledger(config)
    early, late = Claim("early", "0:0:1", "u", 10 * HOUR), Claim("late", "0:0:2", "u", 40 * HOUR)
    ledger.claim([early, late])
    ledger.record_users("t", 0, {"u": 40 * HOUR}, [early, late], HOUR)
    ledger.record_users("t", 0, {"u": 40 * HOUR}, [early, late], HOUR)  # the replay files again
    ledger.record_users("t", 1, {"u": 40 * HOUR + HOUR // 2}, [], HOUR)
    ledger.record_users("t", 2, {"u": 42 * HOUR}, [], HOUR)
    # Before batch 2 the watermark was 40.5h: "early" (10h) is late, but it was filed with
    # "late" (40h), which is not yet a horizon behind, so both claims stay: longer, not sooner.
    assert ledger.claim([Claim("early", "3:0:1", "u", 10 * HOUR)]) == [False]
    ledger.record_users("t", 3, {"u": 42 * HOUR}, [], HOUR)  # before: 42h, a horizon past 40h
    assert ledger.claim([early, late]) == [True, True]  # forgotten: claimed anew
    client = redis.Redis.from_url(config.redis_url)
    assert client.zcard(f"{config.redis.key_prefix}:claimed:u") == 0


def test_a_replayed_batch_forgets_no_claim_its_first_attempt_could_still_meet(config):
    ledger = open_event_ledger(config)
    a = Claim("a", "0:0:1", "u", 100 * HOUR)
    ledger.claim([a])
    ledger.record_users("t", 0, {"u": 100 * HOUR}, [a], HOUR)
    ledger.record_users("t", 1, {"u": 500 * HOUR}, [], HOUR)
    ledger.record_users("t", 1, {"u": 500 * HOUR}, [], HOUR)  # the replay records again
    # Batch 1, replayed, still judges against 100h: "a" is not late there, so it stays claimed.
    assert ledger.user_watermarks("t", 1, ["u"]) == {"u": 100 * HOUR}
    assert ledger.claim([Claim("a", "1:0:4", "u", 100 * HOUR)]) == [False]


def test_a_replayed_batch_reads_the_user_watermarks_it_read_the_first_time(config):
    ledger = open_event_ledger(config)
    assert ledger.user_watermarks("t", 0, ["u", "v"]) == {}
    ledger.record_users("t", 0, {"u": 100, "v": 50}, [], HOUR)
    assert ledger.user_watermarks("t", 1, ["u", "v", "w"]) == {"u": 100, "v": 50}
    ledger.record_users("t", 1, {"u": 200}, [], HOUR)
    assert ledger.user_watermarks("t", 1, ["u", "v"]) == {"u": 100, "v": 50}  # replayed
    assert ledger.user_watermarks("t", 2, ["u", "v"]) == {"u": 200, "v": 50}
    ledger.record_users("t", 1, {"u": 200}, [], HOUR)  # the replay records again
    assert ledger.user_watermarks("t", 1, ["u"]) == {"u": 100}
    assert ledger.user_watermarks("other-topic", 2, ["u"]) == {}
    many = [f"user-{n}" for n in range(12000)]  # more than one read's worth
    ledger.record_users("t", 2, {u: n for n, u in enumerate(many)}, [], HOUR)
    assert ledger.user_watermarks("t", 3, many) == {u: n for n, u in enumerate(many)}


def test_claims_are_answered_in_order_across_chunks(config):
    ledger = open_event_ledger(config)
    ledger.claim([Claim(f"c{n}", "a", "u", n) for n in range(0, 12000, 2)])
    held = ledger.claim([Claim(f"c{n}", "b", "u", n) for n in range(12000)])
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
