"""The built site in a real browser (headless Debian Chromium driven by selenium).

Serves `_build/html` on a loopback port and, for every page in `_toc.yml`: no JavaScript
console errors, every image loaded with alt text or a caption, every internal link and
anchor resolves; the search page finds each chapter by a term of its own; at a phone's,
a laptop's and a wide screen's width, in light and dark mode, nothing is cut off
without a scroll bar and no text is too faint to read (readability.js). Light and dark
full-page screenshots go to `_build/screenshots/` for a person to look at.
"""

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
from bs4 import BeautifulSoup

from .common import HTML, ROOT, toc_pages

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.site
SHOTS = ROOT / "_build" / "screenshots"
READABILITY = (Path(__file__).parent / "readability.js").read_text()
WIDTHS = (360, 1280, 1920)  # a small phone, a laptop, a wide screen (CSS pixels)
# A term from each page that only a reader of that page would search for.
SEARCH_TERMS = {"book/intro": "probabilistic", "book/bayesian_modeling": "heavy-tailed",
                "book/bnn": "reliability", "book/vae": "decoder",
                "book/ssvae": "enumeration"}


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(HTML))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None  # quiet
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    binary = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(binary).exists() and Path(driver_path).exists()):
        pytest.fail("chromium and chromedriver are needed: "
                    "apt-get install chromium chromium-driver (.ci/run does this)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


def load(browser, url):
    browser.get(url)
    browser.execute_script("return document.readyState")
    browser.execute_async_script(  # let MathJax and images settle
        "const done = arguments[0];"
        "const mj = window.MathJax && MathJax.startup && MathJax.startup.promise;"
        "Promise.resolve(mj).then(() => setTimeout(done, 300), () => done());")


@pytest.mark.parametrize("page", toc_pages())
def test_page_in_browser(page, server, browser):
    browser.get_log("browser")  # drop what earlier pages logged
    load(browser, urljoin(server, f"{page}.html"))
    errors = [e["message"] for e in browser.get_log("browser")
              if e["level"] == "SEVERE"]
    assert not errors, errors

    images = browser.execute_script(
        "return [...document.querySelectorAll('main img')].map(i => ({src: i.src,"
        " width: i.naturalWidth, alt: i.alt,"
        " caption: !!(i.closest('figure') && i.closest('figure').querySelector("
        "'figcaption'))}))")
    for img in images:
        assert img["width"] > 0, f"image did not load: {img['src']}"
        assert img["alt"].strip() or img["caption"], (
            f"no alt text or caption: {img['src']}")

    # Full-page screenshots, light and dark, for a person to look at.
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = page.replace("/", "_")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(height + 100, 16000))
    browser.save_screenshot(str(SHOTS / f"{name}.png"))
    browser.execute_script("document.documentElement.dataset.theme = 'dark'")
    browser.save_screenshot(str(SHOTS / f"{name}.dark.png"))
    browser.set_window_size(1280, 900)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", toc_pages())
def test_nothing_cut_off_and_no_faint_text(page, width, server, browser):
    browser.set_window_size(width, 900)
    try:
        load(browser, urljoin(server, f"{page}.html"))
        problems = []
        for mode in ("light", "dark"):
            browser.execute_script(f"document.documentElement.dataset.theme = '{mode}'")
            found = browser.execute_script(READABILITY)
            problems += [f"{mode}: {line}"
                         for line in found["clipped"] + found["faint"]]
    finally:
        browser.set_window_size(1280, 900)
    assert not problems, f"{page} at {width} px:\n" + "\n".join(problems)


def test_internal_links_and_anchors_resolve():
    ids, links = {}, []
    for path in HTML.rglob("*.html"):
        if "_static" in path.parts:
            continue
        soup = BeautifulSoup(path.read_text(), "html.parser")
        ids[path.resolve()] = {tag["id"] for tag in soup.find_all(id=True)}
        links += [(path, a["href"]) for a in soup.find_all("a", href=True)]
    broken = []
    for source, href in links:
        if urlparse(href).scheme or href.startswith(("mailto:", "javascript:")):
            continue
        target, anchor = urldefrag(href)
        file = ((source.parent / unquote(target)).resolve() if target
                else source.resolve())
        if not file.exists():
            broken.append(f"{source.name}: {href}")
        elif anchor and file.suffix == ".html" and anchor not in ids.get(file, set()):
            broken.append(f"{source.name}: {href} (no such anchor)")
    assert not broken, broken


@pytest.mark.parametrize("page", [p for p in toc_pages() if p in SEARCH_TERMS])
def test_search_finds_each_chapter(page, server, browser):
    browser.get(urljoin(server, f"search.html?q={SEARCH_TERMS[page]}"))
    found = WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "const r = document.querySelectorAll('#search-results li a');"
            "return r.length ? [...r].map(a => a.getAttribute('href')) : null"))
    assert any(f"{page}.html" in href for href in found), found
