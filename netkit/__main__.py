"""``python -m netkit``: the ``netkit`` command (:func:`netkit.cli.main`), for when the script is not on PATH."""

import sys

from .cli import main

sys.exit(main())
