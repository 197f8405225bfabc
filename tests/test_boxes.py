"""Box arithmetic in normalised continuous coordinates (scenetalk.vision.boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from scenetalk.vision.boxes import box_iou, inclusive_pixels_to_normalized, to_pixels, union_box


def test_inclusive_pixels_to_normalized_exact():
    # 500x375 photo: the whole photo is (1, 1, 500, 375) in 1-based inclusive pixels.
    out = inclusive_pixels_to_normalized([[1, 1, 500, 375], [251, 1, 500, 188], [3, 3, 3, 3]], 500, 375)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], np.float32([0, 0, 1, 1]))
    np.testing.assert_array_equal(out[1], np.float32([0.5, 0, 1, 188 / 375]))
    # a single pixel is 1/W wide, not empty
    np.testing.assert_array_equal(out[2], np.float32([2 / 500, 2 / 375, 3 / 500, 3 / 375]))


def test_to_pixels_224():
    np.testing.assert_array_equal(to_pixels([0, 0, 1, 1]), np.float32([[0, 0, 224, 224]]))
    np.testing.assert_array_equal(to_pixels([[0.5, 0.25, 1, 0.5]], 100, 40), np.float32([[50, 10, 100, 20]]))


def test_union_box():
    boxes = np.float32([[0.1, 0.2, 0.3, 0.4], [0.0, 0.3, 0.25, 0.9]])
    np.testing.assert_array_equal(union_box(boxes), np.float32([0.0, 0.2, 0.3, 0.9]))
    np.testing.assert_array_equal(union_box([0.1, 0.2, 0.3, 0.4]), np.float32([0.1, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="at least one box"):
        union_box(np.zeros((0, 4)))


def test_box_iou_hand_computed():
    a = [[0, 0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]]
    b = [[0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75], [0.5, 0, 1, 0.5], [0.6, 0.6, 0.7, 0.7]]
    iou = box_iou(a, b)
    assert iou.shape == (2, 4) and iou.dtype == np.float32
    # row 0: 0.25 of the whole image; overlap 0.0625 / union (0.25 + 0.25 - 0.0625) = 1/7;
    # touching edges share no area; disjoint.
    np.testing.assert_allclose(iou[0], [0.25, 1 / 7, 0, 0], rtol=1e-6)
    # row 1: itself 1; with (0.5,0,1,0.5): 0.0625 / 0.4375; contains (0.6..0.7)^2: 0.01 / 0.25
    np.testing.assert_allclose(iou[1], [0.25, 1, 1 / 7, 0.04], rtol=1e-6)
    assert box_iou([0.2, 0.2, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2])[0, 0] == 0  # empty: 0, not NaN
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        box_iou([[0, 0, 1]], [[0, 0, 1, 1]])
