"""The built site in a real browser: Debian's Chromium, headless, driven by Playwright.

Run by ``tox -e docs`` after ``mkdocs build --strict`` (the site in ``site/``); elsewhere,
where mkdocs or Playwright is missing, it skips with the reason. The home page renders,
every gallery picture loads (natural width > 0), the catalogue lists ``adamw`` and
``cosine``, and the built-in search finds ``muon_adamw``. Screenshots of the home,
gallery and catalogue pages go to ``.artifacts/docs/`` (or ``$OPTREG_ARTIFACTS``).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mkdocs", reason="the docs env builds the site (tox -e docs)")
playwright = pytest.importorskip("playwright.sync_api", reason="the docs env has Playwright")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("OPTREG_ARTIFACTS", ROOT / ".artifacts" / "docs"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``mkdocs build --strict`` makes it (built here unless tox just did)."""
    built = ROOT / "site"
    if os.environ.get("OPTREG_SITE_BUILT") != "1" or not (built / "index.html").exists():
        built = tmp_path_factory.mktemp("site")
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
        proc = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(built)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return built


@pytest.fixture(scope="module")
def url(site: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page(url: str) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: tox -e docs installs Debian's (apt)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def test_the_home_page_renders(page: Any, url: str) -> None:
    page.goto(f"{url}/")
    assert page.title().startswith("optreg")
    assert page.locator("h1").first.inner_text().rstrip("¶") == "Getting started"
    assert page.locator("nav").count() > 0
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=False)


def test_every_gallery_picture_loads(page: Any, url: str) -> None:
    from optreg import list_schedulers, scheduler_info

    builtins = {n for n in list_schedulers() if scheduler_info(n).provider == "optreg"}
    page.goto(f"{url}/gallery/")
    page.wait_for_load_state("networkidle")
    widths = page.eval_on_selector_all(
        "article img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])"
    )
    drawn = {src.rsplit("/", 1)[-1].removesuffix(".png") for src, _ in widths}
    assert drawn == builtins - {"adafactor"}
    assert all(width > 0 for _, width in widths), widths
    page.screenshot(path=str(ARTIFACTS / "gallery.png"), full_page=False)


def test_the_catalogue_lists_names(page: Any, url: str) -> None:
    page.goto(f"{url}/catalogue/")
    cells = page.eval_on_selector_all(
        "table td:first-child code", "cs => cs.map(c => c.textContent)"
    )
    assert {"adamw", "cosine", "muon_adamw", "adafactor"} <= set(cells)
    page.screenshot(path=str(ARTIFACTS / "catalogue.png"), full_page=False)


def test_the_search_finds_muon_adamw(page: Any, url: str) -> None:
    page.goto(f"{url}/")
    page.wait_for_load_state("networkidle")  # the search index, loaded by a worker
    page.keyboard.press("/")  # Material's search shortcut
    page.locator("input.md-search__input").press_sequentially("muon_adamw", delay=50)
    results = page.locator(".md-search-result__item")
    try:
        results.first.wait_for(timeout=20_000)
    finally:
        page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=False)
    assert "muon_adamw" in results.first.inner_text()


@pytest.mark.parametrize(
    ("page", "module"),
    [("optreg", "optreg"), ("testing", "optreg.testing"), ("params", "optreg.params")],
)
def test_the_api_reference_documents_every_public_name(site: Path, page: str, module: str) -> None:
    import importlib

    html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
    names = importlib.import_module(module).__all__
    missing = [n for n in names if f'id="{module}.{n}"' not in html]
    assert missing == [], f"{page}: no entry for {missing}"
