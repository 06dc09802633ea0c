"""Particle's USB protocols in Python: control requests (service protocol) and DfuSe.

Public surface:

* :class:`~trayline.usb.device.ParticleDevice` — a device in normal or
  listening mode: ID, serial, mode, module info, setup done, ICCID/IMEI,
  reset, DFU/listening mode, firmware update (bootloader, NCP), app-custom;
* :class:`~trayline.usb.dfuse.DfuSeDevice` — a device in DFU mode: write,
  read back, leave;
* :func:`~trayline.usb.discovery.list_devices`,
  :func:`~trayline.usb.discovery.wait_for_device` — find devices by ID, mode
  and platform;
* :mod:`trayline.usb.results` — the typed errors.

Every function takes a pyusb ``backend``: ``None`` for libusb (real devices),
or :class:`trayline.usb.virtual.backend.VirtualBackend` for virtual ones.
Facts: shared/spec/device-side.md §0, §2.5-§2.8, §3, §6, §8.
"""
