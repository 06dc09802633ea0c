"""``trayline serve``: the operator's station page, the line dashboard, unit pages and the API.

Server-rendered HTML (Jinja2) with SVG charts drawn on the server and a little
JavaScript of our own for live updates (EventSource); every file is served
from this package, so the pages work offline and need no build step.
"""
