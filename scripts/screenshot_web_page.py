"""Refresh the README's screenshot of the web page (``docs/img/web_page.png``) with the bundled model.

Serves the app on 127.0.0.1, opens it in Debian's headless Chromium, uploads
a recording and saves the page once its result is shown::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/screenshot_web_page.py RECORDING [--out docs/img/web_page.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recording", type=Path, help="the audio file to upload")
    ap.add_argument("--out", type=Path, default=Path("docs/img/web_page.png"))
    ap.add_argument("--size", default="1200,1500", help="window width,height in pixels")
    args = ap.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from emovox.inference import load_model
    from emovox.service.app import create_app
    from emovox.service.testing import serve_in_thread

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    with tempfile.TemporaryDirectory() as profile, serve_in_thread(create_app(load_model(num_threads=1))) as url:
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--window-size={args.size}",
            f"--user-data-dir={profile}",
        ):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(driver_path), options=opts)
        try:
            driver.get(url + "/")
            time.sleep(1.0)
            driver.find_element("id", "file-input").send_keys(str(args.recording.resolve()))
            deadline = time.monotonic() + 120
            while f"Done: {args.recording.name}" not in driver.find_element("id", "file-status").text:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no result for {args.recording} within 120 s")
                time.sleep(0.2)
            time.sleep(0.5)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
