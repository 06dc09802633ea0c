"""Rendering pages: the package's Jinja2 templates with what every page needs.

Autoescaping is on for every template, so a part serial or a failure reason
typed by someone can never become markup. Every page gets the caller, the
session's CSRF token for its forms, and the stations this server drives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from trayline import __version__
from trayline.web.access import CSRF_FIELD, csrf_token, rank

__all__ = ["STATIC", "TEMPLATES", "page"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.globals.update(version=__version__, csrf_field=CSRF_FIELD, rank=rank)
TEMPLATES.env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f} %"


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` for ``request`` with the common context."""
    hub = getattr(request.app.state, "hub", None)
    context.setdefault("who", getattr(request.state, "principal", None))
    context.update(csrf=csrf_token(request), stations=hub.names() if hub else [])
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
