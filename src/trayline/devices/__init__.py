"""Devices as the bench sees them: reach one through a backend, identify it, list what is attached.

A service layer over the adapters (programmers, the serial console, the
virtual tray): the CLI and the station say *which* device (backend, probe,
port, or a virtual tray) and get a connected programmer or an identity back,
without knowing how a backend is opened or where a virtual tray publishes its
ports.
"""
