"""`magnetkit web` end to end in headless Chromium: type, press Generate, fetch and check the audio.

Set MAGNETKIT_WEB_SCREENSHOT=docs/web-demo.png to save the README's screenshot after a generation.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow  # a server start (Gradio + torch + the model) and generations: ~1 min

PROMPT = "a fast high square-wave arpeggio"
DURATION = 1.2  # seconds; a whole number of 3-frame spans at 50 Hz, so the clip is exactly this long
FRAME_S = 1 / 50  # the default model's frame period


def generate(page, prompt: str = PROMPT, duration: float = DURATION) -> None:
    """Fill in the prompt and duration and press Generate."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Duration (s)").fill(str(duration))
    page.get_by_role("button", name="Generate").click()


def fetch(page, href: str) -> bytes:
    """Download a file the page links to, through the browser's own session."""
    response = page.request.get(href)
    assert response.ok, f"{href}: HTTP {response.status}"
    return response.body()


def output_audio_link(page) -> str:
    """The ``/gradio_api/file=...`` URL of the first output's audio, once the page shows one."""
    link = page.locator("#output-1 [data-testid=download-link]")
    link.wait_for(state="attached")
    return link.get_attribute("href")


def check_audio(data: bytes, duration: float) -> np.ndarray:
    """The file decodes, lasts ``duration`` seconds (to a frame) and is not silent."""
    wav, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert sample_rate == 16000
    assert abs(wav.shape[0] / sample_rate - duration) < FRAME_S, wav.shape[0] / sample_rate
    assert np.isfinite(wav).all()
    assert np.sqrt(np.mean(wav ** 2)) > 1e-3, "the generated audio is silent"
    return wav


# Records every progress text ("12/70 steps | ... decoding") the page shows, however briefly.
WATCH_PROGRESS = """() => {
    window.progressSeen = [];
    new MutationObserver(() => {
        for (const el of document.querySelectorAll('[data-testid=status-tracker]')) {
            const text = el.textContent || '';
            if (/\\d+\\/\\d+ steps/.test(text)) window.progressSeen.push(text.trim());
        }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_generate_in_the_browser_gives_audio_codes_and_a_spectrogram_offline(page, server):
    page.evaluate(WATCH_PROGRESS)
    generate(page)
    audio = check_audio(fetch(page, output_audio_link(page)), DURATION)
    assert audio.shape[1] == 1

    codes_link = page.locator("#downloads a[download=\"codes.npy\"]")
    codes = np.load(io.BytesIO(fetch(page, codes_link.get_attribute("href"))))
    assert codes.shape == (1, 4, round(DURATION * 50)) and codes.dtype == np.int64
    assert page.locator("#spectrogram-1 img").first.is_visible()
    assert "1 x 1.20 s at 16000 Hz" in page.locator("#status").inner_text()
    progress = page.evaluate("window.progressSeen")
    assert any("decoding" in text for text in progress), progress  # the bar follows the engine's steps
    assert any(re.search(r"\b\d+/70 steps", text) for text in progress), progress  # 40+10+10+10 steps

    # Offline: the page fetched nothing from anywhere but this server (no fonts, scripts, analytics).
    hosts = {urlparse(url).netloc for url in page.requested if urlparse(url).scheme in ("http", "https")}
    assert hosts == {urlparse(server).netloc}, hosts

    target = os.environ.get("MAGNETKIT_WEB_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=target, full_page=True)


def test_a_bad_setting_shows_a_readable_error_and_the_next_request_works(page):
    # A zero duration: a setting in the main row, filled like every request's (the sampler fields
    # sit in an accordion whose values a loaded page could still be settling under CPU load).
    generate(page, "a slow low sine note", duration=0)
    error = page.locator(".toast-body", has_text="duration must be > 0")
    error.wait_for()
    assert "Traceback" not in page.content()

    generate(page, "a slow low sine note")
    check_audio(fetch(page, output_audio_link(page)), DURATION)


def test_an_uploaded_audio_prompt_is_continued(page, tmp_path):
    sample_rate = 22050  # not the model's rate: the page resamples
    t = np.arange(int(0.5 * sample_rate)) / sample_rate
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, (0.3 * np.sign(np.sin(2 * np.pi * 440 * t))).astype(np.float32), sample_rate)
    page.get_by_text("Audio prompt (continuation and infill)").click()
    page.locator("#audio-prompt input[type=file]").set_input_files(str(prompt))
    # Uploading in text mode switches to continuation.
    page.wait_for_function("() => document.querySelector('#mode input[value=\"Continue the audio prompt\"]')?.checked")
    generate(page)
    check_audio(fetch(page, output_audio_link(page)), DURATION)


def test_a_model_that_cannot_load_is_reported_and_another_can_be_picked(page):
    model = page.get_by_role("combobox", name="Model")
    model.fill("/no/such/folder")
    model.press("Enter")
    page.locator("#status", has_text="Could not load /no/such/folder: no such folder or file").wait_for()
    model.click()
    page.get_by_role("option", name="default model (embedded, offline)").click()
    page.locator("#status", has_text="Loaded default-model").wait_for()


def test_two_users_at_once_are_queued_and_both_served(browser, server):
    pages = [browser.new_page() for _ in range(2)]
    try:
        for page in pages:
            page.set_default_timeout(180_000)
            page.goto(server)
        pages[1].locator("#samples input[type=number]").fill("2")
        for page in pages:
            generate(page, duration=0.6)
        links = [output_audio_link(page) for page in pages]
        for page, link in zip(pages, links):
            check_audio(fetch(page, link), 0.6)
        second = pages[1].locator("#output-2 [data-testid=download-link]")
        check_audio(fetch(pages[1], second.get_attribute("href")), 0.6)
    finally:
        for page in pages:
            page.close()
