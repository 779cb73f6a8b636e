"""The tests that need no root and no kernel, on each Python version netkit claims (``requires-python``).

``nox -s pure-3.11`` / ``nox -s pure-3.13``: a fresh venv with that Python, netkit
installed into it as a user gets it (built from this checkout into a wheel, not
editable, with the ``test`` extra), then pytest on the files in ``PURE_TESTS``,
which import netkit from that venv.  3.11 is the lowest version claimed and 3.13
the highest; ``scripts/check-python-versions`` runs both, 3.13 in a Debian trixie
container.  Root and the kernel are for
``scripts/test`` on the machine's own Python.
"""

import nox

nox.options.sessions = ["pure"]
nox.options.error_on_missing_interpreters = True  # a version that cannot be tested fails, instead of passing unseen

PYTHONS = ["3.11", "3.13"]  # the lowest and the highest in pyproject.toml's classifiers

# The test files that need no root, start no lab and read no live kernel state (each one's docstring says so; the
# pure layers' tests: the model, the evidence, results, the gate's documents and reports, the import contracts).
# Not here: files with root tests in them (test_keepalive_settings, test_scale, ...), even when most of them is pure.
PURE_TESTS = [
    # the timing model and its rules
    "tests/test_model.py", "tests/test_model_hz.py", "tests/test_handshake_model.py", "tests/test_retransmission.py",
    "tests/test_retracted_window.py", "tests/test_rto_bounds.py", "tests/test_ledger.py",
    # a scenario's result, and netkit inspect's reasoning
    "tests/test_result.py", "tests/test_inspect_pieces.py",
    # the gate's documents: records, the codec, upgrades of old documents, diffs
    "tests/test_gate_data.py", "tests/test_gate_records.py", "tests/test_side_by_side.py",
    # reports
    "tests/test_report_html.py", "tests/test_report_html_ledger.py", "tests/test_report_junit.py",
    "tests/test_report_markdown.py", "tests/test_report_tap.py", "tests/test_report_kernel_ci.py",
    # the layers (import-linter's contracts; the pure parts import no pyroute2), Debian's version order
    "tests/test_layers.py", "tests/test_debian_version.py",
]


@nox.session(python=PYTHONS)
def pure(session: nox.Session) -> None:
    """The pure tests with netkit installed from a wheel of this checkout (extra pytest arguments after --)."""
    session.install(".[test]")
    # -I: not from the checkout (the working directory); pytest below imports it from the venv too (pytest -VV says so)
    session.run("python", "-I", "-c", "import sys, netkit; "
                "print('netkit', netkit.__version__, 'from', netkit.__file__, 'on Python', sys.version.split()[0])")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *PURE_TESTS, *session.posargs)
