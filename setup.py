"""Packaging beyond pyproject.toml: the pages and the process catalogue ship inside the wheel.

``pip install .`` installs the Python packages (engine, forms, mobile_api) and, as data packages,
``web/`` as ``govflow_web`` and ``processes/`` as ``govflow_processes``, so an installed server
finds its pages and models next to its code (engine/config.py ``asset_dir``). The designer's
script (web/designer/static/) is built by npm and ignored by git: build it first (`make designer`)
or the wheel has a designer page without its script — ``pip install .`` refuses that unless
GOVFLOW_ALLOW_NO_DESIGNER=1 (docs/production.md).
"""

import os
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
DESIGNER_BUNDLE = ROOT / "web" / "designer" / "static" / "designer.js"

if (ROOT / "web").is_dir() and not DESIGNER_BUNDLE.is_file() and os.environ.get("GOVFLOW_ALLOW_NO_DESIGNER") != "1":
    raise SystemExit("web/designer/static/designer.js is missing: run `make designer` "
                     "(npm ci && node build.mjs in web/designer) before `pip install .`, "
                     "or set GOVFLOW_ALLOW_NO_DESIGNER=1 to install without the designer page")


def _data_packages(prefix: str, folder: str, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``{package name: folder}`` for ``folder`` and every sub-folder (minus ``skip``)."""
    found = {}
    base = ROOT / folder
    for path in [base, *sorted(p for p in base.rglob("*") if p.is_dir())]:
        rel = path.relative_to(base)
        if any(part in skip for part in rel.parts) or "__pycache__" in rel.parts:
            continue
        found[".".join([prefix, *rel.parts])] = str(Path(folder, rel))
    return found


WEB_SKIP = ("node_modules", "src")  # the designer's sources are bundled into static/
data = {**_data_packages("govflow_web", "web", WEB_SKIP), **_data_packages("govflow_processes", "processes")}
web_files = ["*.html", "*.js", "*.mjs", "*.css", "*.map", "*.txt", "*.svg", "*.png", "*.ico",
             "*.woff", "*.woff2", "*.ttf", "*.eot", "*.json"]
setup(
    packages=find_packages(include=["engine*", "forms*", "mobile_api*"]) + sorted(data),
    package_dir=data,
    package_data={
        **{name: web_files for name in data if name.startswith("govflow_web")},
        **{name: ["*"] for name in data if name.startswith("govflow_processes")},
        "engine": ["store/migrations/**/*"],
        "forms": ["components/*.json"],
    },
    exclude_package_data={"govflow_web.designer": ["package.json", "package-lock.json"]},
)
