"""The exceptions netkit raises, one family so callers can catch them all.

Every message says what went wrong *and what to do about it*: these errors end
up in CI logs and in the CLI's stderr, read by someone who did not write the
test.
"""

from __future__ import annotations


class NetkitError(Exception):
    """Base class of every error netkit raises on purpose."""


class SettingError(NetkitError, ValueError):
    """A keepalive (or other) setting is outside the range the kernel accepts.

    Subclasses ValueError so code that validates input generically still works.
    """

    def __init__(self, field: str, value: object, allowed: str, source: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        where = f" from {source}" if source else ""
        super().__init__(f"invalid {field} {value!r}{where}: {allowed}")


class UnknownChoice(NetkitError, ValueError):
    """A name that is not one of netkit's choices (a fault, an address family, a link state); the message lists them."""


class EnvironmentUnusable(NetkitError):
    """This machine or user cannot run netkit labs (not root, no netns, no veth...): CLI exit 4 (cannot run here)."""


class FeatureMissing(EnvironmentUnusable):
    """A kernel feature a particular fault or check needs is absent.

    Tests turn this into a *skip* with the message as the reason; the CLI exits 4 (cannot run here).
    """


class InputError(NetkitError):
    """A file or argument netkit cannot use as given (a matrix, a baseline, a pattern); exit status 2."""


class NameCollision(NetkitError):
    """A name netkit wanted to use (e.g. under /run/netns) already exists."""


class KernelRefused(NetkitError):
    """The kernel did not keep a value we set (read-back differs)."""


class NotModelled(NetkitError):
    """netkit has no defensible rule for this combination (the reason says why).

    Like FeatureMissing, a *skip* in tests; unlike it, exit 2 in the CLI (bad input: no machine would run it).
    """


class ScenarioCancelled(NetkitError):
    """The run was cancelled (Ctrl-C, or another scenario's caller gave up)."""


class ProgramProblem(NetkitError):
    """The program under test could not be started or would not listen (check-server: exit 2)."""


ServerProblem = ProgramProblem  # the name check-server used first


class WrongNamespace(NetkitError):
    """A socket meant for a lab namespace is somewhere else: refused, never used."""


class WaitTimeout(NetkitError):
    """A condition did not come true in time (the message says which, and what was seen last)."""


# Outcomes, mapped once: these mean "this cannot be proved here", never "it failed" -- a pytest skip, a TAP
# ``# SKIP`` / JUnit ``<skipped>``; in the CLI (with the reason on stderr) exit 4 for FeatureMissing (cannot run
# here), 2 for NotModelled (no machine would run it).
CANNOT_RUN_HERE: tuple[type[NetkitError], ...] = (FeatureMissing, NotModelled)


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception that unwinds like Ctrl-C: every lab is torn down and the workers end."""


def raise_terminated(signum: int, frame: object) -> None:
    """The SIGTERM handler of netkit's commands (``signal.signal(SIGTERM, raise_terminated)``)."""
    raise Terminated()
