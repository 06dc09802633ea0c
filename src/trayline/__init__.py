"""trayline: run a Particle cellular manufacturing line, from the tray to the fleet."""

__version__ = "0.1.0"
