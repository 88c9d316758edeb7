"""The viewer's pages in a real headless browser (Debian's chromium + chromedriver, selenium).

``.ci/run`` installs chromium; in CI (``CI=true``) a missing browser fails these tests, locally
they skip with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from atdata.viewer import ServerThread, create_app
from tests._services import require_service
from tests._viewer_data import N, write_pics

pytestmark = pytest.mark.services

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _driver() -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:  # pragma: no cover - selenium is in the dev group
        require_service("selenium", str(exc))
    binary = next((p for p in map(shutil.which, _BROWSERS) if p), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        require_service(
            "chromium",
            "chromium and chromedriver are not installed "
            "(apt-get install -y chromium chromium-driver; .ci/run does this)",
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(binary)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--disable-extensions"):  # fmt: skip
        opts.add_argument(arg)
    try:
        return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    except Exception as exc:  # a broken install: a service failure, not a test failure
        require_service("chromium", f"could not start headless chromium: {exc}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    d = tmp_path_factory.mktemp("viewer-browser")
    pics = write_pics(d)
    import atdata

    other = atdata.write_samples([{"note": "a" * 500}], os.path.join(d, "notes.tar"))
    with ServerThread(create_app(pics, other)) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    drv = _driver()
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


def _open(browser: Any, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    # a fresh document each time: a hash-only navigation would leave the previous page's
    # render (and its ``ready`` flag) racing the new one
    browser.get("about:blank")
    browser.get(url)
    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script("return document.body.dataset.ready") == "1"
    )


def _texts(browser: Any, css: str) -> list[str]:
    return [e.text for e in browser.find_elements("css selector", css)]


def test_dataset_list_renders(browser: Any, server: ServerThread) -> None:
    _open(browser, server.url + "#/")
    assert _texts(browser, "table.datasets a.ds-link") == ["pics", "notes"]
    row = browser.find_element("css selector", "table.datasets tr[data-id='pics']")
    assert str(N) in row.text
    assert browser.find_elements("css selector", ".error") == []


def test_dataset_page_shows_schema_and_histogram(browser: Any, server: ServerThread) -> None:
    _open(browser, server.url + "#/d/pics")
    schema = _texts(browser, "table.schema td:first-child")
    assert schema[:3] == ["image", "depth", "embedding"]
    agg = browser.find_element("css selector", "table.aggregates").text
    assert "cat (20)" in agg and "min 0" in agg
    assert len(browser.find_elements("css selector", "table.aggregates svg.hist rect")) == 20


def test_sample_page_shows_thumbnails(browser: Any, server: ServerThread) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, server.url + "#/d/pics/samples")
    assert len(browser.find_elements("css selector", "table.samples tbody tr")) == 20
    imgs = browser.find_elements("css selector", "table.samples img.thumb")
    assert len(imgs) == 40  # image (CHW uint8) and depth (HW float) of each of 20 rows
    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script(
            "return [...document.querySelectorAll('img.thumb')].every(i => i.complete)"
        )
    )
    widths = browser.execute_script(
        "return [...document.querySelectorAll('img.thumb')].map(i => i.naturalWidth)"
    )
    assert sorted(set(widths)) == [10, 20]  # depth 12x10, image 16x20: all decoded, none broken
    cut = browser.find_elements("css selector", "table.samples .cut")
    assert cut and "520 chars, cut" in cut[0].text


def test_query_narrows_the_rows(browser: Any, server: ServerThread) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, server.url + "#/d/pics/samples")
    assert "of 60" in browser.find_element("css selector", "#range").text
    box = browser.find_element("css selector", "#where")
    box.clear()
    box.send_keys("label = 'dog' AND score < 5")
    browser.execute_script("document.body.dataset.ready = '0'")
    browser.find_element("css selector", "#query-form button").click()
    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script("return document.body.dataset.ready") == "1"
    )
    keys = [
        e.get_attribute("data-key")
        for e in browser.find_elements("css selector", "table.samples tbody tr")
    ]
    assert keys == [f"{i:08d}" for i in range(N) if i % 3 == 1 and i / 4 < 5]
    assert "of 7 matching" in browser.find_element("css selector", "#range").text
    assert "pruned" in browser.find_element("css selector", "#stats").text


def test_bad_query_shows_the_error(browser: Any, server: ServerThread) -> None:
    _open(browser, server.url + "#/d/pics/samples?where=label%20%3D%20%3D")
    err = browser.find_element("css selector", ".error").text
    assert err.startswith("SQL query 'label = =' failed") and "syntax error" in err
