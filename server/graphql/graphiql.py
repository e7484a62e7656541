"""GraphiQL for a browser's GET of ``/graphql``: no token kept in the browser, a strict CSP."""

from __future__ import annotations

import secrets

from starlette.responses import HTMLResponse


def graphiql_page(template: str) -> HTMLResponse:
    """GraphiQL, which keeps no token in the browser's storage, under a strict CSP."""
    nonce = secrets.token_urlsafe(16)
    html = _graphiql_html(template).replace("<script", f'<script nonce="{nonce}"')
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": _GRAPHIQL_CSP.format(nonce=nonce),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


# GraphiQL loads its code from unpkg (pinned, with subresource integrity); everything else
# is refused: no framing (clickjacking), no other origin to talk to or load from.
_GRAPHIQL_CSP = (
    "default-src 'none'; "
    "script-src 'nonce-{nonce}' https://unpkg.com; "
    "style-src 'unsafe-inline' https://unpkg.com; "
    "font-src https://unpkg.com data:; "
    "img-src 'self' data:; "
    "connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _graphiql_html(template: str) -> str:
    # Strawberry's page persists the headers editor (the Authorization token) in the
    # browser's localStorage; an admin token there outlives the tab. Never persist it.
    persisting = "shouldPersistHeaders: true"
    if persisting not in template:  # pragma: no cover - a Strawberry upgrade changed the page
        raise RuntimeError("GraphiQL's page changed: check that it does not persist headers")
    return template.replace(persisting, "shouldPersistHeaders: false")
