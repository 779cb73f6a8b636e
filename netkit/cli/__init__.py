"""The ``netkit`` command: demo, doctor, cleanup (:mod:`.main`) and check-server (:mod:`.check_server`)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
