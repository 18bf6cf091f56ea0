"""streams/eos.py without a broker: which input offsets a partition's transaction commits."""
from __future__ import annotations

from streams.eos import next_offsets, transactional_id


def test_the_next_offset_follows_the_highest_settled_record_per_topic_partition():
    settled = [("o", 1, 10), ("o", 1, 12), ("o", 1, 11), ("i", 1, 4), ("r", 2, 0)]
    assert next_offsets(settled, held=[]) == {("o", 1): 13, ("i", 1): 5, ("r", 2): 1}


def test_a_record_still_waiting_holds_its_topic_partition_back():
    # a waiting partition queues every later record: the lowest held offset is the first not settled
    settled = [("o", 1, 10), ("i", 1, 4)]
    held = [("o", 1, 11), ("o", 1, 9), ("i", 3, 7)]
    assert next_offsets(settled, held) == {("o", 1): 9, ("i", 1): 5}  # i[3]: nothing settled, not committed


def test_each_input_partition_has_its_own_transactional_id():
    assert transactional_id("clvstream", 3) == "clvstream-clv-3" != transactional_id("clvstream", 4)
