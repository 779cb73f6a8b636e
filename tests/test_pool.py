"""The scenario pool: worker processes never outlive the run that owns them."""

import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import process_group, wait_for

from netkit.doctor import missing_privileges

pytestmark = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

OWNER = textwrap.dedent("""
    import signal, sys, time
    from netkit import KeepaliveSettings, Scenario, ScenarioPool
    if __name__ == "__main__":
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with ScenarioPool() as pool:
            pool.submit(*[Scenario(KeepaliveSettings(1, 1, 10), family) for family in ("ipv4", "ipv6")])
            print("submitted", flush=True)
            time.sleep(60)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_workers_end_with_their_owner(tmp_path, sig):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert owner.stdout.readline().strip() == "submitted"
        wait_for(lambda: len(process_group(owner.pid)) > 2, timeout=10,  # owner, forkserver, workers
                 what="the pool's workers to start")
        owner.send_signal(sig)
        owner.wait(timeout=20)
        wait_for(lambda: process_group(owner.pid) == [], timeout=5, interval=0.1,
                 what="worker processes to end with their owner")
    finally:
        owner.kill()
