import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

# The daemon under test has a self-signed certificate. requests lets these variables
# override `verify=False`, so they must not leak in from the environment.
for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(var, None)

from harness import Hearth  # noqa: E402


@pytest.fixture(scope="module")
def hearth():
    h = Hearth().start()
    yield h
    h.close()
