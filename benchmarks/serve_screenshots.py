"""Issue #15: screenshots of the web page for README and docs (docs/images/serve-*.png).

    python benchmarks/serve_screenshots.py

Serves the Flickr8K test index (serve_test_index.py) with the shipped models, drives Debian's
Chromium with Playwright through each view as a user would (a test photo uploaded, a sentence
aligned; a search and a hit opened; the browse view; the photo view at phone width) and saves
what it shows.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from served import REPO, TEST_INDEX, free_port, start_server

OUT = REPO / "docs" / "images"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHOTO = "3385593926_d3e9c21170.jpg"   # a Flickr8K test photo: two dogs playing in the snow
QUERY = "a dog runs on the beach"


def main() -> None:
    from playwright.sync_api import sync_playwright

    meta = json.loads((TEST_INDEX / "index.json").read_text())
    photo = Path(meta["folder"]) / (PHOTO if PHOTO in meta["names"] else meta["names"][0])
    work = Path(tempfile.mkdtemp(prefix="scenetalk-shots-"))
    port = free_port()
    server = start_server(TEST_INDEX, port, work / "server.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#status:has-text('Ready')", timeout=120_000)
            page.set_input_files("#file", str(photo))
            page.wait_for_selector("#regions li", timeout=120_000)
            page.wait_for_selector("#status:has-text('Done')", timeout=120_000)
            page.click("#align-form button[type=submit]")
            page.wait_for_selector("#aligned .seg", timeout=120_000)
            page.locator("#aligned .seg:not(.none)").first.hover()
            page.screenshot(path=str(OUT / "serve-photo.png"), full_page=True)

            page.click(".tab[data-view=search]")
            page.fill("#query", QUERY)
            page.press("#query", "Enter")
            page.wait_for_selector("#hits li img", timeout=120_000)
            page.wait_for_function("() => [...document.querySelectorAll('#hits img')].slice(0, 12)"
                                   ".every(i => i.complete && i.naturalWidth > 0)", timeout=120_000)
            page.screenshot(path=str(OUT / "serve-search.png"))

            page.locator("#hits li button").first.click()
            page.wait_for_selector("#sentences li", timeout=120_000)
            page.wait_for_selector("#aligned .seg", timeout=120_000)
            page.screenshot(path=str(OUT / "serve-hit.png"), full_page=True)

            page.click(".tab[data-view=browse]")
            page.wait_for_function("() => [...document.querySelectorAll('#browse img')].slice(0, 12)"
                                   ".every(i => i.complete && i.naturalWidth > 0)", timeout=120_000)
            page.screenshot(path=str(OUT / "serve-browse.png"))

            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(f"http://127.0.0.1:{port}/")
            phone.wait_for_selector("#status:has-text('Ready')", timeout=120_000)
            phone.set_input_files("#file", str(photo))
            phone.wait_for_selector("#status:has-text('Done')", timeout=120_000)
            phone.screenshot(path=str(OUT / "serve-phone.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    for name in ("photo", "search", "hit", "browse", "phone"):
        print(OUT / f"serve-{name}.png")


if __name__ == "__main__":
    main()
