import gc

from streams.runtime import YOUNG_GENERATION_THRESHOLD, tune_garbage_collector


def test_the_young_generation_is_collected_less_often_and_the_older_ones_as_before():
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        tune_garbage_collector()
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*saved)
