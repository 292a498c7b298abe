import numpy as np
import pytest
import tensorflow as tf

from streamrec.training.dropout import StatelessDropout

ONES = tf.ones([200, 50])


def test_training_drops_a_share_of_rate_and_scales_the_rest_up():
    dropped = StatelessDropout(0.2)(ONES, training=True).numpy()
    assert np.mean(dropped == 0) == pytest.approx(0.2, abs=0.02)
    assert np.allclose(dropped[dropped != 0], 1 / 0.8)


def test_inference_passes_inputs_through():
    layer = StatelessDropout(0.2)
    assert layer(ONES, training=False) is ONES and layer(ONES) is ONES
    assert np.all(layer(ONES, training=tf.constant(False)).numpy() == 1.0)


def test_each_step_of_a_compiled_function_draws_a_new_mask():
    layer = StatelessDropout(0.5)
    step = tf.function(lambda: layer(ONES, training=tf.constant(True)))
    first, second = step().numpy(), step().numpy()
    assert np.mean(first == 0) == pytest.approx(0.5, abs=0.03)
    assert np.mean((first == 0) == (second == 0)) < 0.6  # masks are independent, not frozen


def test_masks_repeat_under_the_same_global_seed():
    def masks():
        tf.keras.utils.set_random_seed(4)
        layer = StatelessDropout(0.3)
        return [layer(ONES, training=True).numpy() for _ in range(2)]

    assert all(np.array_equal(a, b) for a, b in zip(masks(), masks(), strict=True))


def test_a_rate_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="not in"):
        StatelessDropout(1.0)
