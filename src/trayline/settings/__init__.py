"""Settings: the environment (:mod:`~trayline.settings.env`) and ``trayline.toml``.

This package is the only place trayline reads ``os.environ``. The environment
accessors are re-exported here (``from trayline.settings import database_url``);
the line file's schema lives in :mod:`trayline.settings.line` and is imported
from there. Domain layer: standard library and :mod:`trayline.core` only.
"""

# The accessors and their table, re-exported as one list: env.py's ``__all__`` names them.
from trayline.settings.env import *  # noqa: F403
from trayline.settings.env import __all__ as __all__
