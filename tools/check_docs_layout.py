"""Check the built documentation for horizontal overflow in a headless browser.

Usage (``make docs-check`` builds the site, then runs this)::

    python tools/check_docs_layout.py docs/_build/html --width 1280

Each page is opened in headless Chromium (Debian: ``apt-get install chromium``) at
the given window width, with a small script added that reports, once the page has
loaded, whether the page is wider than the window, and which code blocks, tables
or images are wider than their box without a scroll bar of their own (cut off).
The page is opened from a copy beside it, so its styles and scripts load as
published. Exit status: 0 when no page overflows, 1 when some do (listed), 2 when
Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
MARKER = "sk-layout-result"
PROBE = """<script>
window.addEventListener("load", function () {
  var width = window.innerWidth, cut = [];
  document.querySelectorAll("pre, table, img").forEach(function (element) {
    var style = getComputedStyle(element);
    if (style.display === "none" || element.offsetParent === null) return;
    var scrolls = style.overflowX === "auto" || style.overflowX === "scroll";
    var box = element.getBoundingClientRect();
    if ((element.scrollWidth > element.clientWidth + 1 && !scrolls) ||
        box.right > width + 1) {
      cut.push(element.tagName.toLowerCase() + ": " +
               (element.textContent || element.src || "").trim().slice(0, 60));
    }
  });
  var result = document.createElement("pre");
  result.id = "@MARKER@";
  result.textContent = JSON.stringify({
    page_width: document.documentElement.scrollWidth, window_width: width,
    cut: cut.slice(0, 5)});
  document.body.appendChild(result);
});
</script>
""".replace("@MARKER@", MARKER)


def find_browser() -> str | None:
    """Return the path of a Chromium-like browser, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def check_page(browser: str, page: Path, width: int) -> dict[str, object]:
    """Open ``page`` at ``width`` pixels; return the probe's findings."""
    html = page.read_text(encoding="utf-8")
    probed = re.sub(r"</body>", PROBE + "</body>", html, count=1, flags=re.I)
    with tempfile.TemporaryDirectory() as profile:
        copy = page.with_name(f".layout-check-{os.getpid()}-{page.name}")
        copy.write_text(probed, encoding="utf-8")
        try:
            result = subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--user-data-dir={profile}",
                    f"--window-size={width},900",
                    "--virtual-time-budget=5000",
                    "--dump-dom",
                    copy.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            copy.unlink(missing_ok=True)
    match = re.search(rf'<pre id="{MARKER}"[^>]*>(.*?)</pre>', result.stdout, re.S)
    if not match:
        return {"error": "the page did not load: " + result.stderr.strip()[-300:]}
    text = match.group(1).replace("&quot;", '"').replace("&amp;", "&")
    found = json.loads(text.replace("&lt;", "<").replace("&gt;", ">"))
    found["overflow"] = found["page_width"] > found["window_width"] or bool(
        found["cut"]
    )
    return found


def main(argv: list[str] | None = None) -> int:
    """Check every page of the site; print the overflowing ones."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built HTML folder")
    parser.add_argument("--width", type=int, default=1280, help="window width (px)")
    parser.add_argument(
        "--pages",
        default="*.html,auto_examples/*.html",
        help="comma-separated globs of pages, relative to SITE",
    )
    parser.add_argument("--jobs", type=int, default=2, help="browsers at once")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print(
            "check_docs_layout: no Chromium found; install it (Debian: apt-get "
            "install chromium)",
            file=sys.stderr,
        )
        return 2
    pages = sorted(
        {
            page
            for pattern in args.pages.split(",")
            for page in args.site.glob(pattern.strip())
            if not page.name.startswith(".")
        }
    )
    if not pages:
        print(f"check_docs_layout: no pages in {args.site}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(
            pool.map(lambda page: check_page(browser, page, args.width), pages)
        )
    bad = 0
    for page, found in zip(pages, results, strict=True):
        name = page.relative_to(args.site)
        if "error" in found or found["overflow"]:
            bad += 1
            print(f"{name}: {json.dumps(found)}")
    print(f"{len(pages)} pages at {args.width} px: {bad} with horizontal overflow")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
