"""The Analyse tab as a first visitor meets it, at a desktop's 1400x1000 and a phone's 412x900 (issue 41, points 1-7):
the TCF section explains itself, the transcript box stops at its limit with a counter, a refusal shows where the
visitor is looking and brings every placeholder back, the phone's first screen leads to the examples, the
buttons under a loaded clip are whole, and the placeholder cards are even."""

from __future__ import annotations

import contextlib

import pytest
from test_app import (CLIP_CLEAR, CLIP_SHOWN, TRANSCRIPT, browser_test, chromium, img_loaded, in_viewport, open_with_clip,  # noqa: F401
                      server, server_log)

SIZES = {"desktop": (1400, 1000), "phone": (412, 900)}
PLACEHOLDER_CARDS = ".score-empty p, .slot-empty, .tcf-empty p"
PAIRS = ["text × acoustic", "text × visual", "acoustic × visual"]


@contextlib.contextmanager
def browser(size: str):
    """Headless Chromium whose viewport is exactly SIZES[size] (a headless window is at least 500 px wide, so the
    phone's is set through the DevTools protocol, as a mobile device)."""
    width, height = SIZES[size]
    with chromium(f"page-{size}-failure.png", width=max(width, 500), height=height) as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 768})
        yield driver


def visible_text(driver) -> str:
    from selenium.webdriver.common.by import By
    return driver.find_element(By.TAG_NAME, "body").text


def assert_placeholders_even(driver, refused: bool = False) -> None:
    """Every empty card has the same inset from its block on both sides; the cards beside the inputs are equally wide.
    ``refused``: the score box holds the refusal instead of its card."""
    cards = driver.execute_script(f"""return [...document.querySelectorAll('{PLACEHOLDER_CARDS}')].map(e => {{
        const r = e.getBoundingClientRect(), b = e.closest('.block').getBoundingClientRect();
        return [e.textContent.slice(0, 80), Math.round(r.left - b.left), Math.round(b.right - r.right), Math.round(r.width)];}})""")
    beside = 3 if refused else 4               # (score), words, face, expressions; then 3 TCF pairs, audio
    assert len(cards) == beside + 4, cards
    assert len({(left, right) for _, left, right, _ in cards}) == 1, cards
    assert len({width for _, _, _, width in cards[:beside]}) == 1, cards
    assert any(text.startswith("After Analyse: the transcript with each word") for text, *_ in cards), cards


def refuse_and_check_it_is_in_view(driver, wait, analyse) -> None:
    """Scroll so that the Analyse button is at the top of the screen (the score box above it is out of sight),
    press it with no clip: the refusal is scrolled into view."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", analyse)
    analyse.click()
    error = wait.until(EC.visibility_of_element_located((By.ID, "analysis-error")))
    assert "No video" in error.text
    wait.until(lambda d: in_viewport(d, "analysis-error"))


@browser_test
@pytest.mark.parametrize("size", SIZES)
def test_first_view_leads_to_the_examples_counts_characters_and_shows_a_refusal(server, size):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    with browser(size) as driver:
        wait = WebDriverWait(driver, 120)
        driver.get(server)
        examples = wait.until(EC.presence_of_element_located((By.ID, "examples")))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, PLACEHOLDER_CARDS)) == 8)
        assert_placeholders_even(driver)
        link = driver.find_element(By.PARTIAL_LINK_TEXT, "Try an example")          # 4: in the first screen
        assert link.rect["y"] + link.rect["height"] <= SIZES[size][1], link.rect
        link.click()
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return r.top > -2 && r.top < window.innerHeight / 2;",
            examples), "the examples are not brought into view")
        examples.find_elements(By.CSS_SELECTOR, "tbody tr")[-1].click()              # an example chosen: the button
        box = driver.find_element(By.CSS_SELECTOR, "#transcript textarea")          # to analyse it is in view
        wait.until(lambda d: "terrible" in box.get_attribute("value"))
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(
            "const b = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Analyse')"
            ".getBoundingClientRect(); return b.top >= 0 && b.bottom <= window.innerHeight;"), "Analyse is out of view")
        counter = driver.find_element(By.ID, "transcript-count")                      # 2: the counter and the limit
        wait.until(lambda d: counter.text == f"{len(box.get_attribute('value'))} / 2,000 characters")
        driver.find_element(By.CSS_SELECTOR, CLIP_CLEAR).click()
        box.send_keys(Keys.CONTROL, "a", Keys.DELETE)
        wait.until(lambda d: counter.text == "0 / 2,000 characters" and not d.execute_script(CLIP_SHOWN))
        box.send_keys("word " * 420)                                                  # 2100 characters typed
        assert len(box.get_attribute("value")) == 2000
        wait.until(lambda d: counter.text == "2,000 / 2,000 characters: the limit")
        assert box.size["height"] < 260                                               # 8 lines at most, then it scrolls
        box.send_keys(Keys.CONTROL, "a", Keys.DELETE)
        wait.until(lambda d: counter.text == "0 / 2,000 characters")
        analyse = driver.find_element(By.XPATH, "//button[normalize-space()='Analyse']")
        refuse_and_check_it_is_in_view(driver, wait, analyse)
        assert_placeholders_even(driver, refused=True)                                # 5: every placeholder stays


@browser_test
@pytest.mark.parametrize("size", SIZES)
def test_tcf_section_reads_without_the_paper_and_a_refusal_brings_every_placeholder_back(server, make_clip, size):
    from selenium.webdriver.common.by import By

    with browser(size) as driver:
        wait, analyse = open_with_clip(driver, server, make_clip("talk.mp4"))
        cut = driver.execute_script("""const block = document.querySelector('.source-selection').closest('.block');
            const b = block.getBoundingClientRect();
            return [...block.querySelectorAll('.source-selection button')].map(e => e.getBoundingClientRect())
                .filter(r => r.top < b.top || r.bottom > b.bottom + 0.5).length;""")
        assert cut == 0                                                               # 6: the buttons are whole
        driver.find_element(By.CSS_SELECTOR, "#transcript textarea").send_keys(TRANSCRIPT)
        analyse.click()
        wait.until(lambda d: sum(img_loaded(d, i) for i in d.find_elements(By.CSS_SELECTOR, ".tcf-map img")) == 12)

        text = visible_text(driver)                                                   # 1: the section explains itself
        for sentence in ("one text feature times one voice feature of this clip", "Bright: both features strongly on",
                         "dark: at least one of them is off", "for training, so that the three senses agree",
                         "they do not set the score", "share one colour scale"):
            assert sentence in text, sentence
        pairs = driver.find_elements(By.CSS_SELECTOR, ".tcf-pair")
        assert [p.find_element(By.TAG_NAME, "figcaption").text.split("\n")[0] for p in pairs] == PAIRS
        tops = set()
        for pair, (rows, columns) in zip(pairs, [("text", "acoustic"), ("text", "visual"), ("acoustic", "visual")]):
            assert f"rows: {rows} features 1–64" in pair.text and f"columns: {columns} features 1–64" in pair.text
            shown = [i for i in pair.find_elements(By.TAG_NAME, "img") if i.is_displayed()]
            assert len(shown) == 1 and shown[0].size["width"] >= 250                  # the image first ...
            assert pair.find_element(By.TAG_NAME, "details").get_attribute("open") is None    # ... the maps folded
            tops.add(pair.find_element(By.CSS_SELECTOR, ".tcf-bar-ticks span:last-child").text)
        assert len(tops) == 1, tops                                                   # one colour scale
        pairs[0].find_element(By.TAG_NAME, "summary").click()
        assert sum(i.is_displayed() for i in pairs[0].find_elements(By.TAG_NAME, "img")) == 4
        view = driver.execute_script("return document.documentElement.clientWidth")
        assert driver.execute_script("return document.documentElement.scrollWidth") <= view

        text = visible_text(driver)                                                   # 7: once, in one order
        assert text.count("trained on") == 1 and "visual × acoustic" not in text
        assert not any(jargon in driver.find_element(By.CSS_SELECTOR, ".contrib").text for jargon in ("ReLU", "conv"))

        driver.find_element(By.CSS_SELECTOR, CLIP_CLEAR).click()   # 5: refused after a success
        wait.until(lambda d: not d.execute_script(CLIP_SHOWN))
        refuse_and_check_it_is_in_view(driver, wait, analyse)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, PLACEHOLDER_CARDS)) == 7)
        assert_placeholders_even(driver, refused=True)
