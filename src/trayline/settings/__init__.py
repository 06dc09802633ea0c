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
    CLOUD_ADMIN_TOKEN,
    DATABASE_URL,
    ENV_VARS,
    LINE_FILE,
    OUTBOX_SECRET,
    OUTBOX_URL,
    RATE_LIMIT,
    TOOL_PATHS,
    VIRTUAL_TIME_SCALE,
    WEB_SECRET,
    EnvVar,
    access_token,
    api_url,
    bundle_dir,
    cloud_admin_token,
    database_url,
    environment,
    line_file,
    outbox_secret,
    outbox_url,
    rate_limit,
    tool_path,
    virtual_time_scale,
    web_secret,
)

__all__ = [
    "ACCESS_TOKEN",
    "API_URL",
    "BUNDLE_DIR",
    "CLOUD_ADMIN_TOKEN",
    "DATABASE_URL",
    "ENV_VARS",
    "LINE_FILE",
    "OUTBOX_SECRET",
    "OUTBOX_URL",
    "RATE_LIMIT",
    "TOOL_PATHS",
    "VIRTUAL_TIME_SCALE",
    "WEB_SECRET",
    "EnvVar",
    "access_token",
    "api_url",
    "bundle_dir",
    "cloud_admin_token",
    "database_url",
    "environment",
    "line_file",
    "outbox_secret",
    "outbox_url",
    "rate_limit",
    "tool_path",
    "virtual_time_scale",
    "web_secret",
]
