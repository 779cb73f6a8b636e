"""The plugin's options, resolved once: command line, then environment, then ini (pytest-timeout's precedence).

Help texts are constants shared by the command-line option and the ini key, so
the two never drift; a bad value fails at start-up naming the value and where
it came from.  The resolved :class:`Settings` live in the config's stash
(:func:`settings`); :func:`skip_unless_privileged` is what every lab fixture
does first, a skip or (``--netkit-require-privileges``) an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from ..outputs import folder_problem
from ..privileges import missing_privileges

KEEP_FAILED_HELP = (
    "keep the network namespaces of failing tests under /run/netns for `ip netns exec` "
    "(their names are printed in the failure report; remove them with `netkit cleanup`)"
)
KEEP_FAILED_ENV = "NETKIT_KEEP_FAILED"
PCAP_DIR_HELP = (
    "write the packet capture (pcap) of every failed netkit scenario, and of every scenario a failing test used, "
    "into this directory (default: temporary files); the failure report names them"
)
PCAP_DIR_ENV = "NETKIT_PCAP_DIR"
REQUIRE_PRIVILEGES_HELP = (
    "make netkit tests that cannot run for lack of privileges (root / CAP_NET_ADMIN + CAP_SYS_ADMIN) errors "
    "instead of skips, so that a run without them fails instead of passing with nothing proven"
)
REQUIRE_PRIVILEGES_ENV = "NETKIT_REQUIRE_PRIVILEGES"


@dataclass(frozen=True)
class Settings:
    """The plugin's options, resolved once at start-up (command line, then environment, then ini)."""

    keep_failed: bool
    pcap_dir: str | None  # None: temporary files
    require_privileges: bool  # a test that cannot run for lack of privileges is an error, not a skip


def add_options(parser: pytest.Parser) -> None:
    """Register every option with pytest: ``--netkit-...`` on the command line, ``netkit_...`` in the ini file."""
    group = parser.getgroup("netkit")
    group.addoption("--netkit-keep-failed", action="store_true", default=None, help=KEEP_FAILED_HELP)
    parser.addini("netkit_keep_failed", KEEP_FAILED_HELP, type="bool", default=False)
    group.addoption("--netkit-pcap-dir", metavar="DIR", default=None, help=PCAP_DIR_HELP)
    parser.addini("netkit_pcap_dir", PCAP_DIR_HELP, default="")
    group.addoption("--netkit-require-privileges", action="store_true", default=None, help=REQUIRE_PRIVILEGES_HELP)
    parser.addini("netkit_require_privileges", REQUIRE_PRIVILEGES_HELP, type="bool", default=False)


def _flag(config: pytest.Config, name: str, env_name: str) -> bool:
    """A yes/no option's value: command line (``--netkit-...``), then environment, then ini (``netkit_...``)."""
    if config.getoption(name) is not None:
        return True
    env = os.environ.get(env_name)
    if env is not None:
        if env.lower() in ("1", "true", "yes", "on"):
            return True
        if env.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"Invalid value {env!r} from {env_name}: use 1 or 0")
    try:
        return bool(config.getini(name))
    except (ValueError, pytest.UsageError) as exc:  # pytest's own message does not name the option
        raise ValueError(f"Invalid value for the ini option {name} ({exc}): use true or false") from None


def keep_failed(config: pytest.Config) -> bool:
    return _flag(config, "netkit_keep_failed", KEEP_FAILED_ENV)


def require_privileges(config: pytest.Config) -> bool:
    return _flag(config, "netkit_require_privileges", REQUIRE_PRIVILEGES_ENV)


def pcap_dir(config: pytest.Config) -> str | None:
    """Where failed scenarios write their pcap: command line, then environment, then ini; None: temp files."""
    for value, source in ((config.getoption("netkit_pcap_dir"), "--netkit-pcap-dir"),
                          (os.environ.get(PCAP_DIR_ENV), PCAP_DIR_ENV),
                          (config.getini("netkit_pcap_dir"), "the ini option netkit_pcap_dir")):
        if not value:
            continue
        if not value.strip():
            raise ValueError(f"Invalid pcap directory {value!r} from {source}: give a directory, or unset it")
        problem = folder_problem(value)
        if problem:
            raise ValueError(f"Invalid pcap directory {value!r} from {source}: {problem}")
        return os.path.abspath(value)
    return None


def resolve(config: pytest.Config) -> Settings:
    return Settings(keep_failed(config), pcap_dir(config), require_privileges(config))


SETTINGS_KEY = pytest.StashKey[Settings]()


def settings(config: pytest.Config) -> Settings:
    """The options in effect, resolved at ``pytest_configure``."""
    return config.stash[SETTINGS_KEY]


def skip_unless_privileged(config: pytest.Config) -> None:
    """Skip the test (or, with --netkit-require-privileges, make it an error) when labs cannot be built."""
    reason = missing_privileges()
    if reason is None:
        return
    if settings(config).require_privileges:
        pytest.fail(f"{reason} (--netkit-require-privileges makes this an error instead of a skip)", pytrace=False)
    pytest.skip(reason)
