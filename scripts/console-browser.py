#!/usr/bin/env python3
"""The operator's console in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium, against a running `callrec console`.

Usage: console-browser.py BASE_URL AUDIO_KEY RETRY_KEY SCREENSHOT_DIR
The password comes from CALLREC_CONSOLE_PASSWORD (never argv). Checks, each failing the run
(exit 1) with what it saw:
  - a wrong password shows nothing of the console (401);
  - the overview and a recording's page load with no console error, and are photographed;
  - the list filtered by a warning code and the reconcile page load with no console error;
  - the audio element loads the spool's MP3 and seeks to its middle (HTTP Range);
  - a retry whose CSRF token was taken out of the form is refused (403);
  - the retry button then works: the page comes back saying the job will run again.
Prints one JSON line with what it measured. Exit 2: the browser could not be started.
"""
import base64
import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def fail(message):
    print(f"console-browser: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    base, audio_key, retry_key, shots = sys.argv[1:5]
    password = os.environ["CALLREC_CONSOLE_PASSWORD"]
    options = Options()
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1100",
                     "--autoplay-policy=no-user-gesture-required", "--no-proxy-server"]:
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    except Exception as error:  # noqa: BLE001 - any start failure is the same answer
        print(f"console-browser: chromium did not start: {error}", file=sys.stderr)
        sys.exit(2)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    result = {}
    try:
        def authorize(user, secret):
            token = base64.b64encode(f"{user}:{secret}".encode()).decode()
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})

        def click_and_wait(selector, text):
            """Clicks the button and waits (20 s at most) for the page the form leads to: a click
            returns before its navigation has happened."""
            driver.find_element(By.CSS_SELECTOR, selector).click()
            try:
                WebDriverWait(driver, 20).until(lambda d: text in d.page_source)
            except Exception:  # noqa: BLE001 - a timeout says the same as a wrong page
                fail(f"after the click, no '{text}' in: {driver.page_source[:800]}")

        def no_errors(where):
            # Reading the log empties it: each page's errors are its own.
            severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            if severe:
                fail(f"{where} logged errors: {severe}")

        authorize("alice", "not the password")
        driver.get(f"{base}/console/")
        # Chromium shows a 401 that asks for Basic credentials as an empty page (its prompt,
        # cancelled headless): what counts is that nothing of the console shows.
        if "<h1>Overview</h1>" in driver.page_source or "Recordings</h2>" in driver.page_source:
            fail(f"a wrong password did not get the 401 page: {driver.page_source[:300]}")
        driver.get_log("browser")  # the 401 is logged as a failed load: expected here

        authorize("alice", password)
        driver.get(f"{base}/console/")
        if "<h1>Overview</h1>" not in driver.page_source:
            fail(f"the overview did not load: {driver.page_source[:500]}")
        no_errors("the overview")
        driver.save_screenshot(os.path.join(shots, "overview.png"))

        driver.get(f"{base}/console/recordings/{audio_key}")
        audio = driver.find_element(By.TAG_NAME, "audio")
        seek = driver.execute_async_script("""
            const [audio, done] = arguments;
            const seekTo = () => {
              const target = audio.duration / 2;
              audio.addEventListener('seeked', () => done({duration: audio.duration, target: target, at: audio.currentTime,
                                                           seekable: audio.seekable.length ? audio.seekable.end(0) : 0}), {once: true});
              audio.currentTime = target;
            };
            audio.addEventListener('error', () => done({error: audio.error ? audio.error.code : -1}), {once: true});
            if (audio.readyState >= 1) { seekTo(); } else { audio.addEventListener('loadedmetadata', seekTo, {once: true}); audio.load(); }
        """, audio)
        result["seek"] = seek
        if "error" in seek:
            fail(f"the audio did not load: media error {seek['error']}")
        if not (seek["duration"] > 1 and abs(seek["at"] - seek["target"]) < 0.5 and seek["seekable"] > seek["target"]):
            fail(f"the audio did not seek: {seek}")
        no_errors("the recording page")
        if not driver.find_elements(By.CSS_SELECTOR, "svg.wave path"):
            fail("the recording page has no waveform")
        driver.save_screenshot(os.path.join(shots, "recording.png"))

        # The list with the warning filter, and the reconcile page (no Pipedrive credentials
        # here: it says so, with no form) load clean.
        driver.get(f"{base}/console/recordings?warning=one_way_audio")
        if 'name="warning"' not in driver.page_source:
            fail(f"the list has no warning filter: {driver.page_source[:500]}")
        no_errors("the list filtered by warning")
        driver.get(f"{base}/console/reconcile")
        if "<h1>Reconcile</h1>" not in driver.page_source:
            fail(f"the reconcile page did not load: {driver.page_source[:500]}")
        no_errors("the reconcile page")

        driver.get(f"{base}/console/recordings/{retry_key}")
        driver.execute_script("document.querySelectorAll('form[action$=\"/retry\"] input[name=csrf]').forEach(e => e.remove())")
        click_and_wait("form[action$='/retry'] button", "<h1>Refused</h1>")
        driver.get_log("browser")  # the 403 is logged as a failed load: expected here

        driver.get(f"{base}/console/recordings/{retry_key}")
        click_and_wait("form[action$='/retry'] button", "will run again")
        no_errors("the page after the retry")
        result["retried"] = True
    finally:
        driver.quit()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
