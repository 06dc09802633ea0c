"""Firmware for the line: validated, content-addressed bundles and the images made from them.

``bundle`` checks a set of modules against a SKU and stores it; ``hexfile``
turns a bundle into the one Intel HEX a contract manufacturer flashes (or a
per-file plan for programmers that take binaries); ``diff`` tells a station
which modules a device still needs. Module parsing itself is pure and lives in
:mod:`trayline.core.modules`.
"""
