"""Programmers: one protocol (:mod:`trayline.programmers.base`), one module per backend."""
