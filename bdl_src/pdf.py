"""The whole book as one PDF: the single-page site printed by headless Chromium.

``make pdf`` builds the single-page HTML (``jupyter-book build . --builder singlehtml``,
which reuses the pages the site build executed), then runs
``python -m bdl_src.pdf``: it serves that page on a loopback port, opens it in Debian's
headless Chromium (through selenium, as the site tests do), waits until MathJax has
typeset every equation and every image has loaded, opens the folded solutions and code
dropdowns, and prints it with the DevTools command ``Page.printToPDF``. The print rules
in ``_static/print.css`` hide the site's navigation, wrap code at the page edge and keep
figures within the page. Nothing is downloaded: MathJax is the copy the site serves.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import os
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from bdl_src.sphinx_ext import book_hash

ROOT = Path(__file__).resolve().parent.parent
PRINTED = "book-print.html"  # the root page, copied beside _static/: its links resolve

# A4 with 15 mm margins left and right: a 180 mm (680 CSS px) text column, in which
# _static/print.css sets code at 11 px so that a 96-character line fits.
PAGE = {
    "paperWidth": 8.27, "paperHeight": 11.69,  # inches
    "marginTop": 0.7, "marginBottom": 0.7,
    "marginLeft": 15 / 25.4, "marginRight": 15 / 25.4,  # 15 mm
    "printBackground": True,
    "displayHeaderFooter": True,
    "headerTemplate": ('<div style="font-size:8px;width:100%;text-align:center;'
                       'color:#555"><span class="title"></span></div>'),
    "footerTemplate": ('<div style="font-size:8px;width:100%;text-align:center;'
                       'color:#555"><span class="pageNumber"></span> / '
                       '<span class="totalPages"></span></div>'),
    "generateDocumentOutline": True,  # PDF bookmarks from the headings
}

# Run in the page before printing: MathJax done, every image decoded, fonts loaded, and
# the folds a reader of the site can open (exercise solutions, code dropdowns) open.
SETTLE = """
const done = arguments[0];
const mathjax = window.MathJax && MathJax.startup && MathJax.startup.promise;
Promise.resolve(mathjax)
  .then(() => Promise.all([...document.images].map(i => i.decode().catch(() => null))))
  .then(() => document.fonts.ready)
  .then(() => {
    document.querySelectorAll("details.sd-dropdown, details.toggle-details")
      .forEach(d => { d.open = true; });
    document.querySelectorAll(".admonition.toggle.toggle-hidden button.toggle-button")
      .forEach(b => b.click());
    const broken = [...document.images].filter(i => !i.complete || !i.naturalWidth);
    const math = document.querySelectorAll(".math");
    const unset = document.querySelectorAll(
      "mjx-merror, .math:not(:has(mjx-container))");
    done({broken: broken.map(i => i.src), math_errors: unset.length,
          equations: math.length, images: document.images.length});
  }, error => done({error: String(error)}));
"""


def root_page(html_dir: Path) -> Path:
    """The single-page builder writes the root document (``_toc.yml``'s ``root``) under
    its own name, but its links are relative to the output folder: copy it there."""
    root = yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    page = html_dir / f"{root}.html"
    if not page.is_file():
        raise SystemExit(f"{page} not found: build the single-page site first "
                         "(`make pdf` does: jupyter-book build . --builder singlehtml)")
    printed = html_dir / PRINTED
    shutil.copyfile(page, printed)
    return printed


@contextmanager
def serve(directory: Path):
    """``directory`` over HTTP on a free loopback port (MathJax and fonts load as on the
    published site); yields the base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


def chromium():
    """Headless Debian Chromium through selenium, as ``tests/built_site`` drives it."""
    from selenium import webdriver

    binary = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(binary).exists() and Path(driver_path).exists()):
        raise SystemExit("chromium and chromedriver are needed to print the book: "
                         "apt-get install chromium chromium-driver (.ci/run does this)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1280,900"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    driver.command_executor.client_config.timeout = 600  # printing takes a while
    return driver


def print_book(html_dir: Path, out: Path) -> dict:
    """Print the single-page site in ``html_dir`` to ``out``; returns what was seen."""
    page = root_page(html_dir)
    start = time.perf_counter()
    with serve(html_dir) as url:
        driver = chromium()
        try:
            driver.set_script_timeout(300)
            driver.get(url + PRINTED)
            seen = driver.execute_async_script(SETTLE)
            if "error" in seen:
                raise SystemExit(f"the page did not settle: {seen['error']}")
            if seen["broken"]:
                raise SystemExit(f"images did not load: {seen['broken'][:5]}")
            if seen["math_errors"]:
                raise SystemExit(f"{seen['math_errors']} equations failed to typeset")
            print(f"printing the book ({seen['images']} images, {seen['equations']} "
                  "equations) in headless Chromium...",
                  file=sys.stderr, flush=True)
            pdf = driver.execute_cdp_cmd("Page.printToPDF", PAGE)["data"]
        finally:
            driver.quit()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(base64.b64decode(pdf))
    tmp.replace(out)  # atomic: a half-written PDF is never linked
    # The site links the PDF only while its sources are these (bdl_src/sphinx_ext.py).
    out.with_suffix(".sha256").write_text(book_hash(ROOT))
    page.unlink()
    seen["seconds"] = time.perf_counter() - start
    return seen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bdl_src.pdf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html_dir", nargs="?", type=Path,
                        default=ROOT / "_build" / "singlehtml",
                        help="the single-page site (default: _build/singlehtml)")
    parser.add_argument("out", nargs="?", type=Path,
                        default=ROOT / "_build" / "pdf" / "book.pdf",
                        help="the PDF to write (default: _build/pdf/book.pdf)")
    args = parser.parse_args(argv)
    seen = print_book(args.html_dir, args.out)
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.1f} MB) in {seen['seconds']:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
