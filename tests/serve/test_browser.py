"""The demo page in a real headless Chromium, driven by Selenium against a live uvicorn server.

Skipped when Selenium, Debian's chromium or its chromedriver is missing. The driver binary is
given explicitly, so Selenium Manager never tries to download one.
"""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcnlab.data.decode import decode_image_bytes
from fcnlab.masks import colorize

pytest.importorskip("fastapi", reason="the serve extra (FastAPI) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
pytest.importorskip("selenium", reason="selenium is not installed")
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
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


# --- the page's controls: side by side, opacity, downloads, the pointer, drop, explain --------

IMAGES_SHOWN = """
const ids = ["image", "overlay-base", "overlay"];
return ids.map((id) => {
  const img = document.getElementById(id);
  return img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
});
"""
SET_OPACITY = """
const slider = document.getElementById("opacity");
slider.value = arguments[0];
slider.dispatchEvent(new Event("input"));
slider.dispatchEvent(new Event("change"));
"""
DROP_FILE = """
const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
const zone = document.getElementById("drop");
for (const type of ["dragenter", "dragover", "drop"]) {
  zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true,
                                           cancelable: true }));
}
"""
FIGURES_SHOWN = """
return [...document.querySelectorAll("#figures img")]
    .map((img) => [img.dataset.name, img.complete && img.naturalWidth > 0]);
"""


def data_url_image(url: str) -> Image.Image:
    header, _, payload = url.partition(",")
    assert header == "data:image/png;base64", header
    return Image.open(BytesIO(base64.b64decode(payload)))


def test_image_and_overlay_side_by_side_with_opacity_and_downloads(
    browser, server, predictor, make_png, tmp_path
):
    image = tmp_path / "street.png"
    data = make_png(64, 48)
    image.write_bytes(data)
    assert upload(browser, server, image) == "done"
    shown = WebDriverWait(browser, WAIT_S).until(
        lambda d: (s := d.execute_script(IMAGES_SHOWN)) and all(s) and s
    )
    assert shown == [[64, 48]] * 3
    assert browser.find_element(By.ID, "controls").is_displayed()
    first = browser.find_element(By.ID, "image").rect
    second = browser.find_element(By.ID, "overlay").rect
    assert second["x"] > first["x"] + first["width"] / 2  # side by side, not stacked

    browser.execute_script(SET_OPACITY, 100)
    assert browser.find_element(By.ID, "overlay").value_of_css_property("opacity") == "1"
    assert browser.find_element(By.ID, "opacity-value").text == "100 %"
    card = predictor.card
    expected = predictor.predict(decode_image_bytes(data)).mask
    overlay_link = browser.find_element(By.ID, "download-overlay")
    assert overlay_link.get_attribute("download") == "street.overlay.png"
    blended = np.array(data_url_image(overlay_link.get_attribute("href")).convert("RGB"))
    assert np.array_equal(blended, colorize(expected, card.palette, None))  # opacity 100 %

    browser.execute_script(SET_OPACITY, 0)
    assert browser.find_element(By.ID, "overlay").value_of_css_property("opacity") == "0"
    mask_link = browser.find_element(By.ID, "download-mask")
    assert mask_link.get_attribute("download") == "street.mask.png"
    mask = data_url_image(mask_link.get_attribute("href"))
    assert mask.mode == "P" and np.array_equal(np.array(mask), expected)


def test_the_class_under_the_pointer_is_shown(browser, server, predictor, make_png, tmp_path):
    image = tmp_path / "street.png"
    data = make_png(64, 48)
    image.write_bytes(data)
    assert upload(browser, server, image) == "done"
    expected = predictor.predict(decode_image_bytes(data)).mask
    overlay = browser.find_element(By.ID, "overlay")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script(IMAGES_SHOWN)[2])
    width = overlay.rect["width"]
    for fraction in (0.2, 0.7):
        offset = round((fraction - 0.5) * width)  # from the element's centre
        ActionChains(browser).move_to_element_with_offset(overlay, offset, 0).perform()
        text = WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "hover").text)
        name, _, where = text.partition(" at ")
        x, y = (int(v) for v in where.strip("()").split(", "))
        assert name == predictor.card.classes[expected[y, x]]


def test_a_dropped_image_is_segmented(browser, server, make_png):
    browser.get(f"{server.url}/")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#legend li"))
    browser.execute_script(DROP_FILE, base64.b64encode(make_png(40, 30)).decode())
    WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script(STATE) in ("done", "error"))
    assert browser.execute_script(STATE) == "done", browser.find_element(By.ID, "error").text
    assert "dropped.png: 40 × 30" in browser.find_element(By.ID, "size").text
    assert browser.execute_script(OVERLAY_LOADED) == [40, 30]


def test_the_explain_view_shows_the_figures(browser, server, make_png, tmp_path):
    image = tmp_path / "street.png"
    image.write_bytes(make_png(48, 40))
    assert upload(browser, server, image) == "done"
    button = browser.find_element(By.ID, "explain")
    assert button.is_displayed()
    button.click()
    WebDriverWait(browser, 120).until(
        lambda d: d.execute_script("return document.body.dataset.explain") in ("done", "error")
    )
    assert browser.execute_script("return document.body.dataset.explain") == "done"
    names = ["prediction", "aspp_branches", "aspp_summary", "decoder_low_level"]
    figures = WebDriverWait(browser, WAIT_S).until(
        lambda d: (f := d.execute_script(FIGURES_SHOWN)) and all(ok for _, ok in f) and f
    )
    assert [name for name, _ in figures] == names
    assert "deeplab" in browser.find_element(By.ID, "explain-status").text
