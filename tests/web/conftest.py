"""Browser-test setup: a `magnetkit web` server in a subprocess and Debian's chromium driven by Playwright.

A missing browser or Playwright fails the tests with the line that installs it: nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# Playwright's own browser download cannot run offline; Debian's chromium can (PITFALLS.md).
CHROMIUM_HINT = "install it with: apt-get install -y chromium (or set MAGNETKIT_CHROMIUM to a Chromium binary)"
PLAYWRIGHT_HINT = "install it with: pip install -e '.[test]' (Playwright for Python; never `playwright install`)"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 240  # importing Gradio and torch, and loading the model, on 2 busy cores


def chromium_path() -> str:
    """The Chromium binary to drive, or a failing test saying how to install one."""
    candidates = [os.environ.get("MAGNETKIT_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(f"the browser tests need Chromium, which is not installed; {CHROMIUM_HINT}", pytrace=False)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    """``magnetkit web`` (the embedded default model) on a free port; yields its URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("web") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(log_path.parent / "gradio"),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "magnetkit.cli", "web", "--port", str(port), "--threads", "1"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Poll the page until it answers; fail with the server's output if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`magnetkit web` exited with {process.returncode}:\n{log_path.read_text()}", pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"`magnetkit web` did not serve {url} within {START_TIMEOUT_S} s:\n{log_path.read_text()}",
                pytrace=False)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium under Playwright for Python."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the browser tests need Playwright for Python, which is not installed; {PLAYWRIGHT_HINT}",
                    pytrace=False)
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the server; records every URL the page requests (``page.requested``)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.set_default_timeout(120_000)  # one generation on 2 busy cores
    page.goto(server)
    yield page
    context.close()
