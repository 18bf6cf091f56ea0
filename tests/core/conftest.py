import pytest

from tests.core.builders import T0


@pytest.fixture
def t0():
    return T0
