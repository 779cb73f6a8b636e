"""The core proof: a dead peer is dropped when the kernel's keepalive rule says.

Every parametrized scenario of the session starts at once in the plugin's
pool; each test then asserts one scenario's result, so the module takes
about as long as its longest scenario (1/1/10: ~12 s).
"""

import pytest

from netkit.gate.matrix import CORE as MATRIX  # the gate runs the same cells


@pytest.mark.parametrize("scenario", MATRIX, ids=lambda s: s.id)
def test_idle_connection_dies_when_the_kernel_rule_says(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    k = scenario.keepalive
    assert result.death_s is not None, result.explain()  # the time judged: the kernel's RST on the wire where seen
    low, high = result.prediction.window_s
    assert low <= result.death_s <= high, result.explain()
    assert result.error == "ETIMEDOUT", result.explain()
    assert result.probes == k.cnt, result.explain()
    assert result.keepalive_counter == k.cnt, result.explain()  # the namespace's TCPKeepAlive agrees
    assert result.verdict == "pass", result.explain()
