"""The local cloud's JSON answer: Starlette's, but one that cannot fail to render.

Records hold only valid text (body parsing and the state-file loader see to
it), so the normal rendering always works. If a value ever slipped through, the
answer falls back to ASCII-escaped JSON instead of raising, because a 500 on
every listing is exactly the failure issue 7 reported.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["CloudJSON"]


class CloudJSON(JSONResponse):
    """A JSON answer that always renders."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError):
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()
