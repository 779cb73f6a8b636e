"""The README's example test is real: it runs, as a user would copy it."""

import pathlib
import re

import pytest

from netkit.doctor import missing_privileges

pytest_plugins = ["pytester"]
README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))
def test_readme_example_test_passes(pytester):
    example = re.search(r"```python\n(# test_my_keepalive.py\n.*?)```", README.read_text(), re.S)
    assert example, "the README lost its example test"
    pytester.makepyfile(test_my_keepalive=example.group(1))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
