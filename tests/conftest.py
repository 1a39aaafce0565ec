import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

from harness import Hearth  # noqa: E402


@pytest.fixture(scope="module")
def hearth():
    h = Hearth().start()
    yield h
    h.close()
