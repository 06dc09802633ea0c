"""Settings: the environment (:mod:`~trayline.settings.env`) and ``trayline.toml``.

This package is the only place trayline reads ``os.environ``. The environment
accessors are re-exported here (``from trayline.settings import database_url``);
the line file's schema lives in :mod:`trayline.settings.line` and is imported
from there. Domain layer: standard library and :mod:`trayline.core` only.
"""

from trayline.settings.env import (
    ACCESS_TOKEN,
    API_URL,
    BUNDLE_DIR,
    DATABASE_URL,
    ENV_VARS,
    RATE_LIMIT,
    TOOL_PATHS,
    VIRTUAL_TIME_SCALE,
    EnvVar,
    access_token,
    api_url,
    bundle_dir,
    database_url,
    environment,
    rate_limit,
    tool_path,
    virtual_time_scale,
)

__all__ = [
    "ACCESS_TOKEN",
    "API_URL",
    "BUNDLE_DIR",
    "DATABASE_URL",
    "ENV_VARS",
    "RATE_LIMIT",
    "TOOL_PATHS",
    "VIRTUAL_TIME_SCALE",
    "EnvVar",
    "access_token",
    "api_url",
    "bundle_dir",
    "database_url",
    "environment",
    "rate_limit",
    "tool_path",
    "virtual_time_scale",
]
