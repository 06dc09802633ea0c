"""The ``trayline`` command line: one module per command group, assembled in :mod:`.app`."""
