"""The demo page in a real headless Chromium, driven by Selenium against a live uvicorn server.

Skipped when Selenium, Debian's chromium or its chromedriver is missing. The driver binary is
given explicitly, so Selenium Manager never tries to download one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
pytest.importorskip("selenium", reason="selenium is not installed")
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fcnlab.serve import create_app
from fcnlab.serve.server import BackgroundServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs Debian's chromium and chromedriver in /usr/bin",
)

STATE = "return document.body.dataset.state"
OVERLAY_LOADED = """
const img = document.getElementById("overlay");
return img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
"""
SWATCH_COLOURS = """
return [...document.querySelectorAll("#legend .swatch")]
    .map((s) => getComputedStyle(s).backgroundColor);
"""


@pytest.fixture(scope="module")
def server(predictor):
    with BackgroundServer(create_app(predictor)) as server:
        yield server


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def upload(browser, server, path: Path, reload: bool = True) -> str:
    """Open the page (unless ``reload`` is false), upload ``path`` and wait for the answer;
    the page's final state."""
    if reload:
        browser.get(f"{server.url}/")
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script(STATE) in ("done", "error"))
    return browser.execute_script(STATE)


def test_upload_shows_overlay_legend_and_fractions(browser, server, predictor, make_png, tmp_path):
    image = tmp_path / "street.png"
    image.write_bytes(make_png(64, 48))
    assert upload(browser, server, image) == "done"
    assert browser.find_element(By.ID, "error").text == ""

    size = WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script(OVERLAY_LOADED))
    assert size == [64, 48]

    card = predictor.card
    legend = browser.find_elements(By.CSS_SELECTOR, "#legend li")
    assert [item.text for item in legend] == list(card.classes)
    expected = [f"rgb({r}, {g}, {b})" for r, g, b in card.palette]
    assert browser.execute_script(SWATCH_COLOURS) == expected

    rows = browser.find_elements(By.CSS_SELECTOR, "#fractions tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows] == list(card.classes)
    percents = [
        float(row.find_element(By.CSS_SELECTOR, "td.pct").text.rstrip(" %")) for row in rows
    ]
    assert sum(percents) == pytest.approx(100.0, abs=0.2)


def test_a_non_image_shows_the_server_message(browser, server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    assert upload(browser, server, notes) == "error"
    assert "'notes.txt' is not an image" in browser.find_element(By.ID, "error").text
    assert browser.execute_script(OVERLAY_LOADED) is None


def test_a_file_over_the_limit_is_refused_in_the_page(browser, predictor, make_png, tmp_path):
    image = tmp_path / "big.png"
    image.write_bytes(make_png(64, 64))  # about 12 kB of noise
    with BackgroundServer(create_app(predictor, max_bytes=2000)) as strict:
        browser.get(f"{strict.url}/")
        WebDriverWait(browser, WAIT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#legend li")  # /health has answered
        )
        assert upload(browser, strict, image, reload=False) == "error"
    assert "over the upload limit of 2000 bytes" in browser.find_element(By.ID, "error").text
