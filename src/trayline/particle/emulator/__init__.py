"""The local Particle Cloud: trayline's rehearsal cloud and the test bed of its client.

It speaks the wire protocol of shared/spec/particle-cloud-api.md (paths, bodies,
status codes, error shapes, limits) and imports nothing of trayline's own client
or provisioning engine: an emulator built on the client would prove nothing.

Typical use::

    from trayline.particle.emulator import EmulatorConfig, create_app, serve_in_background

    app = create_app(EmulatorConfig(seed=1))
    app.cloud.add_product(1234, "my-product", platform_id=13)
    token = app.cloud.add_token("me@example.com")
    devices = app.cloud.make_devices("BRN404", 50)
    # in-process: httpx2.AsyncClient(transport=httpx2.ASGITransport(app), base_url="http://cloud")
    with serve_in_background(app) as url:  # over a real socket
        ...
"""

from trayline.particle.emulator.app import EmulatorApp, create_app
from trayline.particle.emulator.config import EmulatorConfig, parse_rate_limit
from trayline.particle.emulator.errors import CloudError
from trayline.particle.emulator.records import Device, Product
from trayline.particle.emulator.server import serve_in_background
from trayline.particle.emulator.state import EmulatorState

__all__ = [
    "CloudError",
    "Device",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorState",
    "Product",
    "create_app",
    "parse_rate_limit",
    "serve_in_background",
]
