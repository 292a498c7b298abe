from streamrec.features.event_source import capped_offsets


def test_cap_is_shared_across_partitions_and_never_exceeded():
    end = capped_offsets({"0": 0, "1": 0, "2": 0}, {"0": 100, "1": 5, "2": 100}, 60)
    assert end["1"] == 5
    assert sum(end.values()) == 60
    assert abs(end["0"] - end["2"]) <= 1


def test_cap_larger_than_backlog_reads_everything():
    assert capped_offsets({"0": 10}, {"0": 30, "1": 4}, 1000) == {"0": 30, "1": 4}


def test_nothing_new_means_start_offsets():
    assert capped_offsets({"0": 7, "1": 3}, {"0": 7, "1": 3}, 100) == {"0": 7, "1": 3}
