import pytest
import torch

from prefstyle.imaging.params import NEUTRAL, VECTOR_DIM, RetouchParams


def test_neutral_is_identity_and_roundtrips():
    assert NEUTRAL.is_identity()
    v = NEUTRAL.to_vector()
    assert v.shape == (VECTOR_DIM,)
    assert RetouchParams.from_vector(v) == NEUTRAL
    assert RetouchParams.from_dict(NEUTRAL.to_dict()) == NEUTRAL


def test_out_of_range_and_non_monotone_rejected():
    with pytest.raises(ValueError, match="exposure"):
        RetouchParams(exposure=5.0)
    with pytest.raises(ValueError, match="monotone"):
        RetouchParams(curve=(0.0, 0.5, 0.4, 0.75, 1.0))
    with pytest.raises(ValueError, match="unknown"):
        RetouchParams.from_dict({"bogus": 1})


def test_from_vector_clamps_into_range():
    v = torch.full((VECTOR_DIM,), 9.0)
    p = RetouchParams.from_vector(v)
    assert p.exposure == 3.0 and p.curve == (1.0,) * 5
    assert not p.is_identity()
