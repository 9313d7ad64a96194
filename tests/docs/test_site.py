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
    version = __import__("optreg").__version__
    assert f"optreg {version}" in page.locator("header").inner_text()  # the version shown
    assert page.locator("h1").first.inner_text().rstrip("¶") == "Getting started"
    assert page.locator("nav").count() > 0
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=False)


def test_the_choosing_guide_recommends_with_sources(page: Any, url: str) -> None:
    page.goto(f"{url}/guides/choosing/")
    text = page.locator("article").inner_text()
    for needed in ("adamw", "muon_adamw", "Devlin et al., 2019", "Touvron et al., 2023"):
        assert needed in text
    page.screenshot(path=str(ARTIFACTS / "choosing.png"), full_page=True)


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


def _pages(site: Path) -> list[str]:
    """Every page of the site (its nav's and the catalogue's), as URL paths."""
    return sorted(
        "/" + str(p.parent.relative_to(site)).replace(".", "").strip("/") + "/"
        for p in site.rglob("index.html")
        if "names" not in p.relative_to(site).parts and p.parent.name != "404"
    )


def _published_only() -> set[str]:
    """The catalogue's names of an adapter not installed here, measured to pass fsdp2
    (in a process of its own: it loads every name)."""
    import json

    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "docs_catalogue.py"), "--published-fsdp2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(json.loads(out.stdout))


def test_the_catalogue_filters_sorts_and_links(page: Any, url: str) -> None:
    """Typing fsdp2 leaves the names `optreg list --supports fsdp2` prints (and those of an
    adapter not installed here that its table says pass); a column sorts; a name links
    to its page."""
    import json

    listed = subprocess.run(
        [sys.executable, "-m", "optreg", "list", "--supports", "fsdp2", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = {row["name"] for row in json.loads(listed.stdout)["optimizers"]}
    expected |= _published_only()
    page.goto(f"{url}/catalogue/")
    search = page.locator(".gridjs-search-input")
    search.fill("fsdp2")
    page.wait_for_timeout(1000)  # Grid.js filters after a short pause in typing
    names = "els => els.map(e => e.textContent.trim())"
    shown = page.eval_on_selector_all(".gridjs-tbody tr td a", names)
    page.screenshot(path=str(ARTIFACTS / "catalogue-fsdp2.png"), full_page=False)
    assert len(expected) > 100 and set(shown) == expected
    search.fill("")
    page.wait_for_timeout(1000)
    every = sorted(page.eval_on_selector_all(".gridjs-tbody tr td a", names))
    assert len(every) > 300
    sort = page.locator("th.gridjs-th", has_text="name").locator("button")
    sort.click()
    assert _settled(page, names) == every
    sort.click()
    assert _settled(page, names) == every[::-1]
    search.fill("muon_adamw")
    page.wait_for_timeout(1000)
    page.locator(".gridjs-tbody a", has_text="muon_adamw").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/names/optimizer/muon_adamw/")
    assert page.locator("h1").first.inner_text().rstrip("¶").strip() == "muon_adamw"
    assert "fsdp2" in page.locator("article").inner_text()  # its capability verdicts
    page.screenshot(path=str(ARTIFACTS / "name-page.png"), full_page=True)


def _settled(page: Any, names: str) -> list[str]:
    """The grid's names once two reads a moment apart agree (it renders asynchronously)."""
    before: list[str] = []
    for _ in range(20):
        page.wait_for_timeout(250)
        now: list[str] = page.eval_on_selector_all(".gridjs-tbody tr td a", names)
        if now == before:
            return now
        before = now
    return before


def test_the_built_pages_are_clean(site: Path) -> None:
    """No escaped pipes, no raw Sphinx roles, no private module path outside the API
    reference and Contributing."""
    import re

    roles = re.compile(r":(class|func|mod|meth|attr|data|exc):`")
    bad: dict[str, list[str]] = {}
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(site))
        problems = []
        if "\\|" in text:
            problems.append("\\|")
        if roles.search(text):
            problems.append("a Sphinx role")
        if "optreg._" in text and not rel.startswith(("reference/", "contributing/")):
            problems.append("optreg._")
        if problems:
            bad[rel] = problems
    assert bad == {}


def test_no_page_is_wider_than_the_window_or_asks_another_host(
    page: Any, url: str, site: Path
) -> None:
    """At 1280 px every page fits (a wide table scrolls inside itself), and no page
    requests anything from another host (the site works offline)."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    wide = {}
    pages = [*_pages(site), "/names/optimizer/muon_adamw/", "/names/scheduler/cosine/"]
    for path in pages:
        page.goto(f"{url}{path}")
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 1280:
            wide[path] = width
    assert len(pages) > 20 and wide == {}
    elsewhere = sorted({r for r in requested if not r.startswith(url)})
    assert elsewhere == []


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
