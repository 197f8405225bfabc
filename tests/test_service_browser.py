"""The web page in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``)
against ``scenetalk serve`` on loopback, with the shipped models and an index of the sample
photos. Skipped with a message where Chromium or Playwright is not installed (``.ci/run``
installs both where it can)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import copy_sample_photos

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
#: As the environment's notes say: without the background-networking flags Chromium keeps
#: trying hosts this machine cannot reach.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The service on a free loopback port, in a thread; its base URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium; .ci/run does where it can)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    import uvicorn

    from scenetalk.retrieval.index import index_folder
    from scenetalk.service import ServiceSettings, create_app

    root = tmp_path_factory.mktemp("browser")
    photos = copy_sample_photos(root / "photos")
    (root / "sentences.txt").write_text("a cat lying on a blanket\na man in a space suit\na cup of coffee\n"
                                        "a rocket on a launch pad\n")
    index_folder(photos, root / "samples", sentence_file=root / "sentences.txt", progress=False)
    app = create_app(ServiceSettings(indexes={"samples": str(root / "samples")}), load_in_background=False)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", photos, app.state.service.models
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server[0] + "/")
    page.wait_for_selector("#status:has-text('Ready')", timeout=60_000)
    yield page
    context.close()
    assert not errors, errors  # no JavaScript error on the way


def test_upload_a_photo_and_see_its_captions_and_boxes(page, server, tmp_path):
    page.set_input_files("#file", str(server[1] / "chelsea.png"))
    page.wait_for_selector("#captions li", timeout=60_000)
    page.wait_for_selector("#regions li")
    from scenetalk.vision.images import load_image

    assert page.locator("#captions li").count() == 3
    best = server[2].caption([load_image(server[1] / "chelsea.png")], beam_size=7, n_best=3)[0][0]
    assert page.locator("#captions li").first.inner_text().startswith(best.text + " log p")
    assert page.locator("#boxes rect").count() == page.locator("#regions li").count() >= 1
    page.locator("#regions li").first.hover()  # its box stands out, the others fade
    assert page.locator("#boxes rect.hot").count() == 1
    page.screenshot(path=str(tmp_path / "photo.png"))


def test_captions_in_another_language_from_the_menu(page, server):
    page.set_input_files("#file", str(server[1] / "chelsea.png"))
    page.wait_for_selector("#captions li", timeout=60_000)
    page.select_option("#caption-lang", "zh")
    page.wait_for_selector("#captions li[lang=zh]", timeout=60_000)
    import scenetalk
    from scenetalk.vision.images import load_image

    best = scenetalk.load(lang="zh").caption([load_image(server[1] / "chelsea.png")], beam_size=7, n_best=3)[0][0]
    assert page.locator("#captions li").count() == 3
    assert page.locator("#captions li").first.inner_text().startswith(best.text + " log p")


def test_align_a_sentence_links_words_to_regions_before_and_after_the_mrf(page, server):
    page.set_input_files("#file", str(server[1] / "chelsea.png"))
    page.wait_for_selector("#captions li", timeout=60_000)
    page.fill("#sentence", "a cat lying on a blanket")
    page.click("#align-form button[type=submit]")
    page.wait_for_selector("#aligned .seg", timeout=60_000)
    segments = page.locator("#aligned .seg").count()
    page.check("input[name=mode][value=words]")
    words = page.locator("#aligned .seg").count()
    assert words == 6 and 1 <= segments <= words  # the MRF joins words into segments
    assert page.locator("#aligned .seg:not(.none)").count() >= 1  # "cat" is linked to a region


def test_search_and_open_a_hit(page):
    page.click(".tab[data-view=search]")
    page.fill("#query", "a cat lying on a blanket")
    page.press("#query", "Enter")
    page.wait_for_selector("#hits li", timeout=60_000)
    assert page.locator("#hits li").count() == 4
    assert "chelsea.png" in page.locator("#hits li").first.inner_text()
    page.locator("#hits li button").first.click()
    page.wait_for_selector("#sentences li", timeout=60_000)
    assert page.locator("#view-photo").is_visible()
    assert page.locator("#sentences li").first.inner_text().startswith("a cat lying on a blanket")
    page.wait_for_selector("#aligned .seg")  # the best sentence, aligned


def test_browse_the_index(page):
    page.click(".tab[data-view=browse]")
    page.wait_for_selector("#browse li img")
    assert page.locator("#browse li").count() == 4
    assert page.locator("#page-note").inner_text() == "1–4 of 4"
    page.wait_for_function("() => [...document.querySelectorAll('#browse img')].every(i => i.complete && "
                           "i.naturalWidth > 0)")  # every photo arrives; a timeout fails the test


def test_a_bad_upload_says_why_on_the_page(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a photo")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#status.error", timeout=60_000)
    assert "not an image" in page.locator("#status").inner_text()


def test_keyboard_and_phone_width(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(server[0] + "/")
    page.wait_for_selector("#status:has-text('Ready')", timeout=60_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing wider than a phone
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select')].filter(e =>
        e.type !== 'radio' && e.type !== 'file' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
        .map(e => e.id)""")
    assert unlabelled == []
    page.keyboard.press("Tab")  # the first control is reachable and the views switch by keyboard
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.locator("#view-search").is_visible()
    context.close()


@pytest.mark.parametrize("how", ["drop", "paste"])
def test_a_photo_can_be_dropped_or_pasted(page, how):
    page.evaluate("""async (how) => {
        const blob = await (await fetch('/v1/indexes/samples/photos/coffee.png?size=256')).blob();
        const data = new DataTransfer();
        data.items.add(new File([blob], 'given.jpg', { type: 'image/jpeg' }));
        const event = how === 'drop'
            ? new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true })
            : new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true });
        (how === 'drop' ? document.getElementById('drop') : document).dispatchEvent(event);
    }""", how)
    page.wait_for_selector("#captions li", timeout=60_000)
    assert page.locator("#photo-name").inner_text() == "given.jpg"
    assert page.locator("#regions li").count() >= 1
