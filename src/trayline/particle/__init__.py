"""The Particle Cloud: trayline's client for it, and (in ``emulator``) a local stand-in."""
