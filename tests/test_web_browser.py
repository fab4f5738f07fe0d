"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
``coopchain serve`` runs as its own process against anvil; the test loads the list, opens a
proposal, sees its diff and votes, watches a vote arrive live, downloads a proof that
``coopchain audit --proof`` accepts, and makes an accessibility pass. Screenshots are kept
under the test's tmp dir and copied to ``artifacts/dashboard/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from needs import unavailable
from web_site import REPO, WebSite, build_site

from nornir_coopchain import session as sessions
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.model.content import EvidenceProof
from nornir_coopchain.model.rules import VoteType

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from nornir_coopchain.chain.devchain import AnvilProcess

pytestmark = [pytest.mark.browser, pytest.mark.anvil, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts" / "dashboard"
CLI = (sys.executable, "-c", "from nornir_coopchain.cli import app; app()")
RECORDED, OPEN = 1, 2

# Every form control has an accessible name; every text has WCAG AA contrast against the
# background it is drawn on (4.5:1, or 3:1 for large text).
_A11Y_JS = """
() => {
  const problems = [];
  for (const el of document.querySelectorAll('input, select, textarea, button')) {
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim());
    if (!named) problems.push('no label: ' + el.outerHTML.slice(0, 80));
  }
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || !box.width || !box.height) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || box.right < 0) continue;
    const fg = lum(rgb(style.color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < need) {
      problems.push(`contrast ${ratio.toFixed(2)} < ${need}: ` + el.outerHTML.slice(0, 80));
    }
  }
  return problems;
}
"""

# The interactive elements a keyboard user must reach (visible links, buttons, controls).
_FOCUSABLE_JS = """
() => [...document.querySelectorAll('a[href], button, select, input, [tabindex="0"]')]
  .filter(el => el.getBoundingClientRect().width > 0 && !el.classList.contains('skip'))
  .map(el => el.outerHTML.slice(0, 120))
"""


@dataclass
class Served:
    site: WebSite
    url: str
    inventory: Path
    tmp: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _inventory(site: WebSite, target: Path, chain_url: str) -> Path:
    """The owner's inventory pointing at anvil, the deployed contract and its journal."""
    shutil.copytree(REPO / "inventory", target)
    defaults = yaml.safe_load((target / "defaults.yaml").read_text())
    extras = defaults["connection_options"]["coopchain"]["extras"]
    extras.update(
        chain_url=chain_url,
        contract=site.coop.address,
        state_dir=str(site.owner.settings.state_dir),
    )
    (target / "defaults.yaml").write_text(yaml.safe_dump(defaults))
    return target


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):  # bounded: 30 s
        if process.poll() is not None:
            raise AssertionError(f"serve exited ({process.returncode}): {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"coopchain serve did not answer at {url}")


@pytest.fixture(scope="module")
def served(own_anvil: AnvilProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} missing: scripts/test installs Debian's chromium (as root)")
    tmp = tmp_path_factory.mktemp("browser")
    with ChainClient.connect(own_anvil.url, receipt_timeout=10) as chain:
        site = build_site(chain, tmp)
        assert (site.recorded_change(), site.open_proposal()) == (RECORDED, OPEN)
        inventory = _inventory(site, tmp / "inventory", own_anvil.url)
        port = _free_port()
        command = [*CLI, "serve"]
        options = ["--inventory", str(inventory), "--port", str(port), "--poll", "0.2"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        log = (tmp / "serve.log").open("wb")
        process = subprocess.Popen([*command, *options], env=env, stderr=log, cwd=tmp)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url + "/", process, tmp / "serve.log")
            yield Served(site, url, inventory, tmp)
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()
            site.nr.close_connections()
            sessions.forget_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} missing: scripts/test installs Debian's chromium (as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def _shot(page: Page, served: Served, name: str, **options: Any) -> Path:
    path = served.tmp / "screenshots" / f"{name}.png"
    page.screenshot(path=str(path), **options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    return path


def test_list_then_a_proposal_with_its_diff_and_votes(page: Page, served: Served) -> None:
    answer = page.goto(served.url + "/")
    assert answer is not None
    assert answer.status == 200
    rows = page.locator("table.proposals tbody tr")
    assert rows.count() == 2
    assert "Verified" in rows.nth(1).inner_text()
    assert "+00:00" in rows.nth(1).inner_text()
    _shot(page, served, "list")
    page.get_by_role("link", name="Turn up OPERATOR-C").click()
    page.wait_for_url(f"**/proposals/{RECORDED}")
    assert page.locator(".l-add").first.is_visible()
    assert page.locator("#h-site17-r1").is_visible()
    assert page.locator("mark.tenant", has_text="OPERATOR-C").first.is_visible()
    timeline = page.locator("#timeline").inner_text()
    assert "OPERATOR-B voted Approve" in timeline
    assert "OPERATOR-C voted Approve" in timeline
    assert "audits (pass)" in page.locator("#evidence").inner_text()
    _shot(page, served, "proposal", full_page=True)
    device = served.tmp / "screenshots" / "device.png"
    page.locator("section.device").first.screenshot(path=str(device))
    shutil.copy(device, ARTIFACTS / device.name)


def test_a_vote_arrives_live_without_reload(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/proposals/{OPEN}")
    page.wait_for_function(
        "document.getElementById('live-status').textContent.includes('watching')",
        timeout=30_000,
    )
    assert "0 approve" in page.locator("#tally").inner_text()
    page.evaluate("window.notReloaded = true")
    site = served.site
    site.coop.cast_vote(site.voters["OPERATOR-B"].session.account, OPEN, VoteType.Approve)
    page.wait_for_function(
        "document.getElementById('timeline').textContent.includes('OPERATOR-B voted Approve')",
        timeout=30_000,
    )
    assert "1 approve" in page.locator("#tally").inner_text()
    assert page.evaluate("window.notReloaded") is True
    assert "VoteCast" in page.locator("#live-status").inner_text()
    _shot(page, served, "live-vote")


def test_proof_download_passes_coopchain_audit_proof(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/proposals/{RECORDED}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the inclusion proof of site17-r2").click()
    saved = served.tmp / download.value.suggested_filename
    download.value.save_as(saved)
    assert EvidenceProof.from_bytes(saved.read_bytes()).evidence.host == "site17-r2"
    command = [*CLI, "audit", str(RECORDED)]
    options = ["--proof", str(saved), "--inventory", str(served.inventory), "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    audited = subprocess.run(
        [*command, *options], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert audited.returncode == 0, audited.stderr
    assert json.loads(audited.stdout)["result"] == "pass"


def test_bad_input_is_a_page_with_a_status(page: Page, served: Served) -> None:
    for path, status in (("/proposals/abc", 400), ("/proposals/99", 404)):
        answer = page.goto(served.url + path)
        assert answer is not None
        assert answer.status == status
        assert page.locator("h1").inner_text() in ("Bad request", "Not found")
        assert "Traceback" not in page.content()
    _shot(page, served, "not-found")


def test_a_new_proposal_appears_on_the_list_live(page: Page, served: Served) -> None:
    page.goto(served.url + "/")
    page.wait_for_function(
        "document.getElementById('live-status').textContent.includes('watching')",
        timeout=30_000,
    )
    count = page.locator("table.proposals tbody tr").count()
    page.evaluate("window.notReloaded = true")
    site = served.site
    tenant_a = site.nr.inventory.groups["site17"].data["tenants"]["OPERATOR-A"]
    tenant_a["accept"] = [*tenant_a["accept"], {"prefix": "203.0.113.192/26"}]
    proposed = site.propose("Widen OPERATOR-A's accepted prefixes")
    row = page.locator(f"#proposal-{proposed}")
    row.wait_for(timeout=30_000)
    assert "Widen OPERATOR-A" in row.inner_text()
    assert page.locator("table.proposals tbody tr").count() == count + 1
    assert page.evaluate("window.notReloaded") is True
    _shot(page, served, "live-proposal")


@pytest.mark.parametrize("path", ["/", f"/proposals/{RECORDED}"])
def test_accessibility_labels_contrast_and_keyboard(page: Page, served: Served, path: str) -> None:
    page.goto(served.url + path)
    assert page.evaluate(_A11Y_JS) == []
    wanted = page.evaluate(_FOCUSABLE_JS)
    reached: list[str] = []
    for _ in range(len(wanted) + 10):  # bounded: every element once, and a little slack
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const el = document.activeElement;"
            " const s = getComputedStyle(el);"
            " return [el.outerHTML.slice(0, 120), s.outlineStyle, s.outlineWidth]; }"
        )
        if focused[0].startswith("<body"):
            continue
        assert focused[1] != "none", f"no visible focus on {focused[0]}"
        reached.append(focused[0])
    assert set(wanted) <= set(reached)
    name = "a11y-list" if path == "/" else "a11y-proposal"
    _shot(page, served, name)
