"""Browser pages served by the API app: the citizen H5 page at ``/m/`` (more pages join here)."""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from engine.config import asset_dir

WEB_ROOT = asset_dir("web")
PAGES = {"m": "市民服务", "console": "工作台", "designer": "流程设计器", "verify": "电子证照核验"}  # folder under web/ -> title


def pages_blueprint(web_root: Path = WEB_ROOT) -> Blueprint:
    bp = Blueprint("pages")
    shared = web_root / "shared" / "static"
    if shared.is_dir():  # modules both pages import (form rendering, DOM helpers)
        bp.static("/shared/static", shared, name="shared_static")
    for folder in PAGES:
        root = web_root / folder
        if not root.is_dir():
            continue
        bp.static(f"/{folder}/static", root / "static", name=f"{folder}_static")

        async def index(request: Request, _root: Path = root) -> HTTPResponse:
            return await response.file(_root / "index.html", headers={"Cache-Control": "no-cache"})

        bp.add_route(index, f"/{folder}/", name=f"{folder}_index", methods=["GET"])
    return bp
