"""What the workbench tests share: demo staff with a known password, and logging in and out of
``/console/`` the way a person does."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from engine.platform.seed import hash_password
from engine.store.models import StaffUser

PASSWORD = "e2e-console-password"
CHINESE = re.compile(r"[\u4e00-\u9fff]")
_HASH: list[str] = []


async def add_staff(username: str, name: str, departments: list[str], roles: list[str]) -> StaffUser:
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))  # argon2 is slow on purpose: hash once per run
    return await StaffUser.create(username=username, name=name, password_hash=_HASH[0], departments=departments,
                                  roles=roles)


async def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Fill the login form of /console/ and press 登录 (the caller checks what follows)."""
    await page.goto("/console/")
    await expect(page.get_by_role("heading", name="工作人员登录")).to_be_visible()
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录", exact=True).click()


async def log_in_as(page: Page, username: str, name: str) -> None:
    """Log in and wait for the top bar to greet ``name``."""
    await log_in(page, username)
    await expect(page.locator("#who")).to_contain_text(f"{name}（{username}）")


async def log_out(page: Page) -> None:
    await page.get_by_role("button", name="退出登录").click()
    await expect(page.get_by_role("heading", name="工作人员登录")).to_be_visible()
