"""A hearth the tool replays can point at: inside a network namespace the test made, with a
`vmbr0` bridge (what the tools' configs name) and the tiny ISO uploaded as local:iso/tiny.iso."""
import contextlib
import os

import pytest

from harness import Hearth, tiny_iso, upload
from netns import NetNs


@contextlib.contextmanager
def bridged_hearth(tag):
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces")
    iso = tiny_iso()
    with NetNs(f"hearth-{tag}-{os.getpid()}") as ns:
        ns.ip("link", "add", "vmbr0", "type", "bridge")
        ns.ip("link", "set", "vmbr0", "up")
        h = Hearth().start()
        try:
            h.wait_task(upload(h, iso, "tiny.iso").json()["data"])
            yield h
        finally:
            h.close()
