"""What the virtual-device tests share beyond fixtures: the tray factory's type and a pty server.

Kept out of conftest.py so that tests import it by a name no other test folder uses
(``from conftest import …`` picks up whichever folder's conftest pytest loaded last).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from trayline.virtual.serial_port import PortServer
from trayline.virtual.tray import Tray

MakeTray = Callable[..., Tray]


class Served:
    """A running PortServer for a tray: ``paths`` maps device ID to its /dev/pts/N."""

    def __init__(self, tray: Tray) -> None:
        self.tray = tray
        self.server = PortServer(tray, time_scale=0)
        self.paths = self.server.open()
        tray.publish_ports(self.paths)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.stop.set()
        self.thread.join(5)
        self.server.close()
