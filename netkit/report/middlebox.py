"""A routed (middlebox) scenario as text: the demo's header and its closing lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..enums import CountSource

if TYPE_CHECKING:
    from ..kernel import KernelInfo
    from ..model.prediction import DeathPrediction
    from ..scenario.result import ScenarioResult
    from ..scenario.spec import Scenario


def router_text(scenario: Scenario) -> str:
    nat = ", masquerading the client" if scenario.masquerade else ""
    return (f"through a router (conntrack established timeout {scenario.middlebox_timeout_s} s, forgotten flows: "
            f"{scenario.middlebox}{nat})")


def middlebox_header(scenario: Scenario, kernel: KernelInfo, p: DeathPrediction) -> list[str]:
    """What the demo prints before the watch: settings, the router, the rule, what it will be judged by."""
    k = scenario.keepalive
    lines = [
        f"netkit demo: {scenario.side} keepalive idle={k.idle}s intvl={k.intvl}s cnt={k.cnt} "
        f"(via {scenario.keepalive_via}) over {scenario.family}, idle connection {router_text(scenario)}; "
        f"kernel {kernel.release} (HZ={kernel.hz})",
        f"rule: {p.rule}",
    ]
    if p.alive_until_s is not None:
        lines.append(f"expect: alive through {p.alive_until_s:g} s, the router's entry refreshed by every probe, then "
                     "data both ways; watching...")
    else:
        lines.append(f"expect death at {p.expected_s:.3f} s, window [{p.window_s[0]:.3f}, {p.window_s[1]:.3f}] s, "
                     f"{p.expected_error}; the router forgets the flow at {scenario.middlebox_timeout_s} s; watching...")
    return lines


def survival_verdict(r: ScenarioResult) -> str:
    """The demo's verdict line for a connection the rule says survives: behind a router, or behind its own refusing qdisc."""
    p = r.prediction
    alive = p.alive_until_s or 0.0
    measured = f"died at {r.death_s:.3f} s with {r.error}" if r.death_s is not None else f"alive after {alive:g} s"
    m = r.middlebox
    data = f", data afterwards: {m.data_after}" if m is not None else ""
    refused = p.count_source == CountSource.KEEPALIVES  # a local drop: every attempt refused, none counted
    expected = f"at least {p.expected_count}" if refused else str(p.expected_count)
    probes = f"; tcpi_probes {r.probes} (expected 0)" if refused else ""
    return (f"verdict: {r.verdict.upper()} - {measured} (the rule: alive through {alive:g} s){data}; "
            f"{p.count_source} {r.count} (expected {expected}){probes}")
