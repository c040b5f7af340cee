"""The approvals inbox in a real browser: Debian's chromium, headless, driven by Selenium
through the system chromedriver (nothing downloaded). A manager logs in, sees the refund with
its amount and requester, approves it; the requester cannot approve their own."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from temporalio.client import Client

from simulators.gateway import Gateway
from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, serving
from tests.identities import ISSUER, user
from tests.workflows.helpers import eventually
from tests.workflows.test_refund import awaiting_decision, refund_settings
from workers.identity import save_users
from workers.inbox import PENDING
from workers.settings import Settings
from workflows.refund import RefundStatus

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PASSWORD = "correct horse battery"

pytestmark = [
    pytest.mark.e2e,
    # Skipped on a developer's machine without them; never in CI (CI=true), where
    # `make install` has put them there and a missing browser must fail the run.
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not os.environ.get("CI"),
        reason="needs Debian's chromium and chromium-driver (make install adds them)",
    ),
]


@contextmanager
def chromium() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="rf-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def inbox_settings(settings: Settings, tmp: Path) -> Settings:
    users = tmp / "users.toml"
    save_users(
        users,
        {
            u.subject: u
            for u in (
                user("ann", "Ann <Cashier>", "cashier", "store_manager", password=PASSWORD),
                user("lee", "Lee Park", "store_manager", password=PASSWORD),
                user("sam", "Sam Viewer", "cashier", password=PASSWORD),
            )
        },
    )
    return settings.model_copy(
        update={
            "identity_key_file": str(ISSUER.key_file(tmp / "inbox.key")),
            "users_file": str(users),
        }
    )


def log_in(driver: WebDriver, url: str, subject: str) -> None:
    driver.get(f"{url}/inbox/")
    driver.find_element(By.ID, "username").send_keys(subject)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    driver.find_element(By.ID, "user")  # the inbox, logged in


def decide(driver: WebDriver, refund_id: str, comment: str) -> str:
    row = driver.find_element(By.ID, f"refund-{refund_id}")
    row.find_element(By.NAME, "comment").send_keys(comment)
    row.find_element(By.CSS_SELECTOR, "button.approve").click()
    return str(driver.find_element(By.ID, "outcome").text)


def browse(url: str, refund_id: str) -> dict[str, str]:
    """What a person sees and does in the browser (blocking: run in a thread)."""
    seen: dict[str, str] = {}
    with chromium() as driver:
        # The requester (also a store manager) cannot approve their own refund.
        log_in(driver, url, "ann")
        row = driver.find_element(By.ID, f"refund-{refund_id}")
        seen["amount"] = row.find_element(By.CLASS_NAME, "amount").text
        seen["requester"] = row.find_element(By.CLASS_NAME, "requester").text
        seen["sale"] = row.find_element(By.CLASS_NAME, "sale").text
        seen["own"] = decide(driver, refund_id, "mine")
        driver.find_element(By.ID, "logout").click()
        # A second manager approves it.
        log_in(driver, url, "lee")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / "inbox-pending.png"))
        seen["approved"] = decide(driver, refund_id, "receipt seen")
        seen["after"] = driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(str(SCREENSHOTS / "inbox.png"))
    return seen


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


async def visible(client: Client, workflow_id: str) -> bool:
    return any([wf.id == workflow_id async for wf in client.list_workflows(PENDING)])


async def test_a_manager_approves_in_the_browser_and_the_requester_cannot(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    store_id: str,
    tmp_path: Path,
) -> None:
    settings = inbox_settings(refund_settings(odoo_emulator, temporal_address, gateway), tmp_path)
    async with running_worker(client, settings), serving(settings, client) as url:
        request, handle = await awaiting_decision(client, settings, gateway, store_id, "ann")
        await eventually(lambda: visible(client, handle.id), bool)
        seen = await asyncio.to_thread(browse, url, request.refund_id)
        result = await handle.result()
    assert seen["amount"] == "30.00" and seen["sale"] == f"POS:{store_id}:T1"
    assert seen["requester"] == "ann (ann)"  # the test issuer names requesters by subject
    assert "four eyes: ann requested" in seen["own"]
    assert seen["approved"] == f"refund {request.refund_id} approved by Lee Park"
    assert f"refund-{request.refund_id}" not in seen["after"]
    assert (SCREENSHOTS / "inbox-pending.png").stat().st_size > 0
    assert (SCREENSHOTS / "inbox.png").stat().st_size > 0
    assert result.status is RefundStatus.REFUNDED
    assert (result.decided_by, result.decided_by_sub) == ("Lee Park", "lee")
    approved = next(e for e in result.audit if e.what == "approved as store_manager")
    assert (approved.sub, approved.comment) == ("lee", "receipt seen")


async def test_inbox_logins_roles_csrf_and_escaping_over_http(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    gateway: Gateway,
    tmp_path: Path,
) -> None:
    settings = inbox_settings(refund_settings(odoo_emulator, temporal_address, gateway), tmp_path)
    async with serving(settings, client) as url, httpx.AsyncClient(base_url=url) as http:
        first = await http.get("/inbox/")
        token = csrf_of(first.text)
        wrong = await http.post(
            "/inbox/login", data={"csrf": token, "username": "sam", "password": "nope"}
        )
        forged = await http.post(
            "/inbox/login", data={"csrf": "x", "username": "sam", "password": PASSWORD}
        )
        token = csrf_of(forged.text)
        ok = await http.post(
            "/inbox/login", data={"csrf": token, "username": "sam", "password": PASSWORD}
        )
        page = await http.get("/inbox/")
        cookie = ok.headers["set-cookie"]
        no_csrf = await http.post(
            "/inbox/decide",
            data={"refund_id": "R1", "workflow_id": "refund:R1", "action": "approve"},
        )
        async with httpx.AsyncClient(base_url=url) as ann:
            t = csrf_of((await ann.get("/inbox/")).text)
            await ann.post(
                "/inbox/login", data={"csrf": t, "username": "ann", "password": PASSWORD}
            )
            ann_page = await ann.get("/inbox/")
    assert wrong.status_code == 401 and "Wrong user or password" in wrong.text
    assert forged.status_code == 403
    assert ok.status_code == 303
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Max-Age=3600" in cookie and "Path=/inbox/" in cookie
    assert page.status_code == 200 and 'id="no-role"' in page.text
    assert 'class="approve"' not in page.text  # no role to decide: no buttons
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "The form expired" in no_csrf.text
    assert "Ann &lt;Cashier&gt;" in ann_page.text and "Ann <Cashier>" not in ann_page.text
