"""Demo data for development (``govflow seed-demo``): departments, staff, deployed processes.

Never reachable when ``GOVFLOW_ENV=production``; passwords come from ``GOVFLOW_DEMO_PASSWORD``
or are generated and printed once.
"""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

from argon2 import PasswordHasher

from engine import build_engine, load_departments
from engine.accountability.privacy import PiiKeys, blind_index, is_valid_id_number
from engine.config import Settings
from engine.errors import ModelError
from engine.store.db import close_db, init_db
from engine.store.models import Department, StaffUser

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def read_staff(path: Path) -> list[dict[str, object]]:
    """Rows of ``staff.csv``: username, name, departments and roles separated by ``|``, and an
    optional ``id_number``: the officer's own, linked (as its keyed hash) so they are recused from
    their own cases."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = []
        for row in csv.DictReader(handle):
            rows.append({
                "username": row["username"].strip(), "name": row["name"].strip(),
                "departments": [d for d in row["departments"].split("|") if d],
                "roles": [r for r in row["roles"].split("|") if r],
                "id_number": (row.get("id_number") or "").strip() or None,
            })
        return rows


def process_folders(processes_dir: Path) -> list[Path]:
    return sorted(p for p in processes_dir.iterdir()
                  if p.is_dir() and p.name != "demo" and any(p.glob("*.bpmn")))


async def seed_demo(settings: Settings, *, password: str | None = None) -> str:
    if settings.is_production:
        raise PermissionError("seed-demo is disabled in production")
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    lines: list[str] = []
    await init_db(settings.DATABASE_URL)
    try:
        departments = load_departments(settings.PROCESSES_DIR / "departments.yaml")
        for code, name in departments.items():
            await Department.update_or_create(code=code, defaults={"name": name})
        lines.append(f"departments: {len(departments)}")
        staff_file = settings.PROCESSES_DIR / "demo" / "staff.csv"
        staff = read_staff(staff_file) if staff_file.exists() else []
        password_hash = hash_password(password)
        index_key = PiiKeys.from_settings(settings).blind_index_key
        for row in staff:
            number = row["id_number"]
            if number is not None and not is_valid_id_number(number):
                raise ValueError(f"staff.csv: {row['username']}: invalid id_number")
            await StaffUser.update_or_create(username=row["username"], defaults={
                "name": row["name"], "departments": row["departments"], "roles": row["roles"],
                "password_hash": password_hash,
                "id_hash": blind_index(str(number), index_key) if number is not None else None})
        lines.append(f"staff accounts: {len(staff)} ({', '.join(str(r['username']) for r in staff)})")
        if generated and staff:
            lines.append(f"demo password (generated, shown once): {password}")
        engine = build_engine(settings)
        from engine.bpmn.parser import read_folder

        for folder in process_folders(settings.PROCESSES_DIR):
            try:
                definition = await engine.deploy(read_folder(folder), deployed_by="seed-demo")
                lines.append(f"process {folder.name}: {definition.process_id} v{definition.version}")
            except ModelError as exc:
                lines.append(f"process {folder.name}: NOT deployed ({exc.message})")
    finally:
        await close_db()
    return "\n".join(lines)
