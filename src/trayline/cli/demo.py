"""``trayline demo``: placeholder until the local cloud lands."""

from __future__ import annotations


def demo_command() -> None:
    """Run the demo line."""
