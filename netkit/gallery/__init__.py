"""``netkit gallery``: real clients and servers, measured the way ``check-client`` and ``check-server`` measure one.

- :mod:`.exhibits` -- what is measured: each program, its settings, what netkit expects and the advice (pure)
- :mod:`.judging` -- a run's verdict against the exhibit's expectation, the document (pure)
- :mod:`.table` -- the document as the docs' Markdown table (pure)
- :mod:`.programs` -- where the programs are, whether they are installed, their versions (touches the system)
- :mod:`.run` -- every exhibit's check at once, each in its own lab
"""
