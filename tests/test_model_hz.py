"""The keepalive model at HZ 100, 250, 300 and 1000, against windows worked out by hand from kernel/time/timer.c.

Nothing here calls the model's wheel code to build the expectation: each
window below is written out from the kernel's rules, so a model change that
moves one fails here.

The rules (kernel/time/timer.c): a timer armed ``delta`` jiffies ahead goes
on level ``n`` when ``LVL_START(n) <= delta < LVL_START(n + 1)``, with
``LVL_START(n) = 63 << 3 (n - 1)`` (63, 504, 4032, 32256, 258048, 2064384,
16515072, ...), and ``calc_index`` rounds its expiry up to the level's
granularity ``LVL_GRAN(n) = 8 ** n`` jiffies: it runs at most that late.
There are 9 levels (``LVL_DEPTH``), 8 at HZ <= 100.  TCP arms the keepalive
timer in whole jiffies (``keepalive_time_when``: seconds x HZ).

The keepalive schedule after an answered probe (netkit's fault follows one):
the first unanswered probe leaves at ``max(idle, intvl)``; its timer was
armed ``idle - intvl`` ahead (or ``intvl`` when ``intvl >= idle``), each
later run ``intvl`` ahead; death on run ``cnt + 1``.  So::

    expected = max(idle, intvl) + intvl x cnt
    window   = [expected - 1 jiffy, expected + sum(LVL_GRAN of each run) + 2 jiffies]

capped late by packetdrill's max(4 ms, 12.5 %) -- which binds for none of
these: a timer runs at most 8/63 = 12.7 % late only when armed exactly at a
level's start, and no whole-second delay here comes close.
"""

import os

import pytest

import netkit.kernel
from netkit import KeepaliveSettings, keepalive_death
from netkit.kernel import KernelInfo, read_config_option
from netkit.model import latest_death_s, packetdrill_bound_s

# (hz, (idle, intvl, cnt)) -> (expected, low, high); each derivation in jiffies
WINDOWS = {
    # HZ=100, 1 jiffy = 10 ms: 1 s = 100 j -> level 1 (63..503): 8 j = 80 ms late each
    (100, (1, 1, 3)): (4, 3.99, 4.34),  # 4 runs x 8 j + 2 j = 34 j
    (100, (2, 1, 2)): (4, 3.99, 4.26),  # first armed idle - intvl = 1 s: 3 runs x 8 j + 2 j = 26 j
    (100, (1, 2, 2)): (6, 5.99, 6.26),  # first at max(1, 2) = 2 s, armed 2 s = 200 j -> level 1: 3 x 8 + 2 = 26 j
    # 75 s = 7500 j -> level 3 (4032..32255): 512 j; 10 runs x 512 + 2 = 5122 j
    (100, (75, 75, 9)): (750, 749.99, 801.22),
    # first armed 7125 s = 712500 j -> level 5 (258048..2064383): 32768 j; + 9 x 512 + 2 = 37378 j
    (100, (7200, 75, 9)): (7875, 7874.99, 8248.78),
    # HZ=250, 4 ms: 1 s = 250 j -> level 1: 8 j = 32 ms
    (250, (1, 1, 3)): (4, 3.996, 4.136),  # 4 x 8 + 2 = 34 j = 136 ms
    (250, (2, 1, 2)): (4, 3.996, 4.104),  # 3 x 8 + 2 = 26 j
    (250, (1, 2, 2)): (6, 5.996, 6.104),  # 2 s = 500 j: still level 1 (< 504): 3 x 8 + 2 = 26 j
    (250, (75, 75, 9)): (750, 749.996, 770.488),  # 18750 j -> level 3: 10 x 512 + 2 = 5122 j
    (250, (7200, 75, 9)): (7875, 7874.996, 8024.512),  # 1781250 j -> level 5: 32768 + 9 x 512 + 2 = 37378 j
    # HZ=300, 3.33 ms: 1 s = 300 j -> level 1: 8 j
    (300, (1, 1, 3)): (4, 3.996667, 4.113333),  # 34 j
    (300, (2, 1, 2)): (4, 3.996667, 4.086667),  # 26 j
    (300, (1, 2, 2)): (6, 5.996667, 6.646667),  # 2 s = 600 j -> level 2 (504..4031): 3 x 64 + 2 = 194 j
    (300, (75, 75, 9)): (750, 749.996667, 767.073333),  # 22500 j -> level 3: 5122 j
    # 7125 s = 2137500 j -> level 6 (2064384..16515071): 262144 j (874 s!); + 9 x 512 + 2 = 266754 j
    (300, (7200, 75, 9)): (7875, 7874.996667, 8764.18),
    # HZ=1000, 1 ms: 1 s = 1000 j -> level 2: 64 j
    (1000, (1, 1, 3)): (4, 3.999, 4.258),  # 4 x 64 + 2 = 258 j
    (1000, (2, 1, 2)): (4, 3.999, 4.194),  # 3 x 64 + 2 = 194 j
    (1000, (1, 2, 2)): (6, 5.999, 6.194),  # 2000 j -> level 2: 194 j
    (1000, (75, 75, 9)): (750, 749.999, 790.962),  # 75000 j -> level 4 (32256..258047): 10 x 4096 + 2 = 40962 j
    # 7125000 j -> level 6: 262144 j; + 9 x 4096 + 2 = 299010 j
    (1000, (7200, 75, 9)): (7875, 7874.999, 8174.01),
}


@pytest.mark.parametrize(("hz", "settings"), sorted(WINDOWS), ids=lambda v: str(v) if isinstance(v, int) else
                         "/".join(map(str, v)))
def test_the_keepalive_window_is_the_one_worked_out_from_timer_c(hz, settings):
    expected, low, high = WINDOWS[hz, settings]
    p = keepalive_death(KeepaliveSettings(*settings), KernelInfo("hand", hz, "test"))
    assert p.expected_s == expected
    assert p.window_s == pytest.approx((low, high), abs=1e-6)
    assert high - expected < packetdrill_bound_s(expected)  # the wheel, not packetdrill's bound, sets the window


def test_the_packetdrill_bound_caps_a_window_the_wheel_would_make_wider():
    """When the wheel's worst case exceeds 12.5 %, the window is cut at packetdrill's bound, never wider."""
    kernel = KernelInfo("hand", 1000, "test")
    assert latest_death_s(1.0, 0.2, kernel) == pytest.approx(1.125)  # 200 ms + 2 ms of lateness against a 125 ms bound
    assert latest_death_s(0.01, 0.01, kernel) == pytest.approx(0.014)  # and at least 4 ms


@pytest.mark.skipif(os.geteuid() != 0, reason="/proc/timer_list is root's only")
def test_without_a_kernel_config_hz_is_measured_not_assumed(monkeypatch):
    configured = read_config_option("HZ")
    monkeypatch.setattr(netkit.kernel, "_config_text", lambda: None)
    found = netkit.kernel.kernel_info.__wrapped__()
    assert found.hz_source.startswith("measured: /proc/timer_list's jiffies"), found
    if configured:
        assert found.hz == int(configured)  # the measurement agrees with the config it stood in for


def test_only_where_hz_cannot_be_measured_is_it_assumed_and_the_source_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(netkit.kernel, "_config_text", lambda: None)
    monkeypatch.setattr(netkit.kernel, "TIMER_LIST", str(tmp_path / "no-timer-list"))
    found = netkit.kernel.kernel_info.__wrapped__()
    assert found.hz == 100 and found.hz_source.startswith("assumed: no kernel config, and ")
    assert "no-timer-list" in found.hz_source
