"""The machine's ceiling for the journey benchmark: a bare Sanic app answering constant JSON.

Served exactly like ``govflow serve`` (same Sanic, same worker count, access log off), so the
ratio of an API figure to this one shows what govflow's own work costs.
Usage: ``python bench/ceiling_app.py PORT WORKERS``
"""

from __future__ import annotations

import sys

from sanic import Sanic
from sanic.response import json

BODY = {"status": "ok", "service": "ceiling", "items": [{"slug": "senior-card", "name": "老年人优待证办理"}]}


def create_app() -> Sanic:
    app = Sanic("ceiling")

    @app.get("/health")
    async def health(request):  # noqa: ANN001, ANN202 - the smallest handler there is
        return json(BODY)

    return app


if __name__ == "__main__":
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=create_app)
    app = loader.load()
    app.prepare(host="127.0.0.1", port=port, workers=workers, single_process=workers <= 1, access_log=False,
                motd=False)
    if workers <= 1:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)
