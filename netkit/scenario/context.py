"""What every scenario procedure carries through its run: one value, handed from ``run_scenario`` to the procedure.

The three procedures (:mod:`.run`'s established states, :mod:`.handshake`,
:mod:`.middlebox`) are called the same way, with a :class:`RunContext`: the
scenario, the kernel it runs on, its built lab and the tested veth's capture,
the caller's cancel event and callbacks.  The procedure makes the one
prediction through :meth:`RunContext.predict`, so the caller's
``on_prediction`` always sees exactly the prediction the run is judged by.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..enums import Side
from ..kernel import KernelInfo
from ..lab.capture import Capture
from ..lab.lab import Endpoint, Lab
from ..model.handshake import HandshakeFacts
from ..model.predict import predict
from ..model.prediction import DeathPrediction
from .result import Progress
from .spec import Scenario


@dataclass(frozen=True)
class RunContext:
    """One scenario's run: what to prove, on which kernel, in which lab, watched by which capture, for whom."""

    scenario: Scenario
    kernel: KernelInfo
    lab: Lab
    capture: Capture | None  # the tested veth's packet socket (None: none could be opened)
    capture_error: str | None  # why there is no capture
    cancel: threading.Event
    on_progress: Callable[[Progress], None] | None = None
    on_prediction: Callable[[DeathPrediction], None] | None = None

    @property
    def sides(self) -> tuple[Endpoint, Endpoint]:
        """(tested, peer): the server is tested unless the scenario says ``side="client"``."""
        lab = self.lab
        return (lab.server, lab.client) if self.scenario.side == Side.SERVER else (lab.client, lab.server)

    def tested_first(self, server: socket.socket, client: socket.socket) -> tuple[socket.socket, socket.socket]:
        """A connection's (server, client) sockets as (tested, peer)."""
        return (server, client) if self.scenario.side == Side.SERVER else (client, server)

    def predict(self, rto_s: float | None = None, handshake: HandshakeFacts | None = None) -> DeathPrediction:
        """The run's one prediction (:func:`netkit.model.predict`), handed to ``on_prediction`` before the fault."""
        prediction = predict(self.scenario, self.kernel, rto_s, handshake)
        if self.on_prediction:
            self.on_prediction(prediction)
        return prediction

    def stop_capture(self) -> None:
        """The capture ends with the death: the RST left in the timer run that killed the socket, queued already."""
        if self.capture is not None:
            self.capture.stop()


__all__ = ["RunContext"]
