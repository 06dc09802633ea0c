"""Virtual Particle devices on USB: the device side of the protocols and a pyusb backend.

:mod:`.channel` is the device's service-protocol state machine, :mod:`.dfu`
the DfuSe device side, :mod:`.gadget` one simulated USB device (descriptors,
control requests, re-enumeration), :mod:`.backend` the pyusb
``usb.backend.IBackend`` that makes them enumerate, so trayline drives them
with exactly the code it uses for real devices through libusb.

This package is a test double that ships as a feature: it imports the
domain (:mod:`trayline.core`), the wire formats it imitates
(:mod:`trayline.usb.messages`, :mod:`trayline.usb.results`,
``encode_service_reply``) and :mod:`trayline.virtual`; never trayline's
host-side client, programmers or services.
"""
