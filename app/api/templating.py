"""The one Jinja environment every page renders through: its filters and globals, and the CSRF
token (``base.html``'s meta tag, forms) in every page's context."""

from __future__ import annotations

from fastapi.templating import Jinja2Templates

from app.api import page_helpers as helpers
from app.core import security
from app.core.paths import TEMPLATES_DIR
from app.domain import trackers

templates = Jinja2Templates(directory=TEMPLATES_DIR,
                            context_processors=[security.template_context])
templates.env.filters.update(
    duration=helpers.human_duration, filesize=helpers.human_bytes, number=helpers.number,
    format_label=helpers.format_label, short_metric=helpers.short_metric,
    inline_code=helpers.inline_code,
)
templates.env.globals.update(token_summary=helpers.token_summary)
# The launch form's tracker fields start from the server's defaults (app/domain/trackers.py).
templates.env.globals.update(tracker_defaults=trackers.server_defaults)
