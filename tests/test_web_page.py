"""The web page in a real browser: Debian's headless Chromium driven by Selenium.

A real uvicorn serves the app with the bundled model; the test uploads a real
corpus file and checks the label shown, a tone (the distinct "no speech"
state), a clip with too little speech (``unknown`` with its reason), the
clip at 8 kHz (a "Telephone / narrowband" badge and the warning) and a long
recording (the summary by shares), then starts live capture from
Chromium's fake microphone (fed a real corpus clip as a WAV file) and checks
that stream events arrive and the probability bars move, once with 16-bit
PCM from the AudioWorklet and once with MediaRecorder WebM/Opus chunks.
A ~10 s recording goes through the streamed (NDJSON) path with a progress
bar, then offers its downloads (JSON, CSV equal to ``emovox predict --csv``,
SRT and WebVTT from the server, PNG), a player its segments seek, and a
failing upload after it clears the result.
Three files chosen (and two dropped) at once get a result each; a live
session gets its summary and JSON/CSV downloads after Stop; a one-minute
timeline zooms and pans, and its tick labels never overlap; a narrow window
scrolls the result into view.
With API keys on, the page signs in by ``/?api_key=KEY`` or its form and then
works (upload, live stream) by the HttpOnly session cookie alone.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from emovox.corpora import default_corpora_root

pytest.importorskip("fastapi")
pytest.importorskip("selenium")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
)
EMODB = default_corpora_root() / "emodb" / "wav"
API_KEY = "browser-test-key-0123456789"


def _clip(name: str) -> Path:
    path = EMODB / name
    if not path.is_file():
        pytest.skip(f"corpus file {path} is absent")
    return path


@pytest.fixture(scope="module")
def model():
    from emovox.inference import load_model

    return load_model(num_threads=1)


@pytest.fixture(scope="module")
def n_labels(model) -> int:
    return len(model.labels)


@pytest.fixture(scope="module")
def server(model):
    from emovox.service.app import create_app
    from emovox.service.testing import serve_in_thread

    with serve_in_thread(create_app(model)) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_server(model):
    """The app with API keys on: only /healthz is open; the page works by the session cookie."""
    from emovox.service.app import create_app
    from emovox.service.auth import ApiKeys
    from emovox.service.testing import serve_in_thread

    with serve_in_thread(create_app(model, api_keys=ApiKeys([API_KEY]))) as url:
        yield url


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory) -> Path:
    """A 16-bit WAV of real speech (two EMO-DB clips, 48 kHz like a real microphone) for the fake mic."""
    import soundfile as sf

    from emovox.audio import load_audio

    y = np.concatenate([load_audio(_clip(n), sample_rate_hz=48000) for n in ("03a01Wa.flac", "03a02Wb.flac")])
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    sf.write(path, y, 48000, subtype="PCM_16")
    return path


def _chromium(mic_wav: Path, tmp_path_factory):
    """Headless Chromium whose fake microphone plays ``mic_wav``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,1000",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser(mic_wav, tmp_path_factory):
    driver = _chromium(mic_wav, tmp_path_factory)
    yield driver
    driver.quit()


def _wait(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _bars(driver) -> dict[str, float]:
    rows = driver.find_elements("css selector", "#bars .bar")
    return {r.get_attribute("data-label"): float(r.get_attribute("data-p") or 0) for r in rows}


def _upload(driver, server, path, n_labels):
    driver.get(server + "/")
    _wait(lambda: len(_bars(driver)) == n_labels, what="bars")
    driver.find_element("id", "file-input").send_keys(str(path))
    _wait(
        lambda: f"Done: {Path(path).name}" in driver.find_element("id", "file-status").text,
        what=f"the result of {Path(path).name}",
    )


def _shown(driver) -> dict:
    """What the result card shows: state, label (data and text), reason, lines, badges, warnings."""
    el = driver.find_element("id", "result-label")
    return {
        "state": driver.find_element("id", "result-card").get_attribute("data-state"),
        "label": el.get_attribute("data-label"),
        "reason": el.get_attribute("data-reason"),
        "text": driver.find_element("id", "result-label-text").get_attribute("textContent"),
        "color": el.value_of_css_property("color"),
        "line": driver.find_element("id", "result-confidence").text,
        "speech": driver.find_element("id", "result-speech").text,
        "badges": {
            b.get_attribute("data-flag"): b.text for b in driver.find_elements("css selector", "#result-quality .badge")
        },
        "warnings": [w.text for w in driver.find_elements("css selector", "#result-warnings li")],
    }


def _write_wav(path: Path, y: np.ndarray, sr: int = 16000) -> Path:
    import soundfile as sf

    sf.write(path, y, sr, subtype="PCM_16")
    return path


def test_page_serves_only_local_assets(server, browser, n_labels):
    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="the model's labels as bars")
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])"
    )
    assert urls and all(u.startswith(server) for u in urls), urls
    assert "emotions" in browser.find_element("id", "model-info").text


def test_upload_shows_label_and_bars(server, browser, model, n_labels):
    clip = _clip("03a01Wa.flac")
    expected = model.predict(clip)
    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    browser.find_element("id", "file-input").send_keys(str(clip))
    _wait(lambda: "Done" in browser.find_element("id", "file-status").text, what="the upload result")
    shown = _shown(browser)
    assert shown["label"] == shown["text"] == expected.label and shown["state"] == "emotion"
    assert f"{expected.speech_s:.1f} s of speech" in shown["speech"]
    assert shown["badges"] == {} and shown["warnings"] == []
    assert not browser.find_element("id", "summary").is_displayed()  # a short clip: no shares
    bars = _bars(browser)
    assert bars[expected.top_class] == pytest.approx(expected.confidence, abs=1e-3)
    assert sum(bars.values()) == pytest.approx(1.0, abs=0.01)


def test_a_tone_shows_the_no_speech_state(server, browser, model, tmp_path, n_labels):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * 16000) / 16000)).astype(np.float32)
    path = _write_wav(tmp_path / "tone.wav", tone)
    expected = model.predict(path)
    _upload(browser, server, path, n_labels)
    shown = _shown(browser)
    assert (shown["state"], shown["label"], shown["reason"]) == ("no_speech", "no_speech", "no_speech")
    assert shown["text"] == "No speech found" and "no emotion" in shown["line"]
    assert shown["speech"] == f"{expected.speech_s:.1f} s of speech in 2.0 s."
    assert browser.find_element("css selector", "#result-label .no-speech-icon").is_displayed()
    assert set(_bars(browser).values()) == {0.0}  # no scores: every bar empty
    pcts = {e.text for e in browser.find_elements("css selector", "#bars .pct")}
    assert pcts == {"–"}
    region = browser.find_element("id", "result-main")  # read out by screen readers
    assert region.get_attribute("aria-live") == "polite" and "No speech found" in region.text
    # its own look: not the grey of "unknown"
    browser.execute_script("document.getElementById('result-label').dataset.label = 'unknown'")
    assert browser.find_element("id", "result-label").value_of_css_property("color") != shown["color"]


def test_too_little_speech_shows_unknown_with_its_reason(server, browser, model, tmp_path, n_labels):
    from emovox.audio import load_audio
    from emovox.inference.gate import MIN_EMOTION_S, NO_SPEECH_S

    y = load_audio(_clip("03a01Wa.flac"))
    start = int(np.flatnonzero(model.check_speech(y).probs >= 0.5)[0]) * 512
    keep = int((NO_SPEECH_S + MIN_EMOTION_S) / 2 * 16000)  # between the gate's two thresholds
    pause = np.zeros(8000, np.float32)
    path = _write_wav(tmp_path / "short.wav", np.concatenate([pause, y[start : start + keep], pause]))
    expected = model.predict(path)
    assert expected.reason == "too_little_speech"
    _upload(browser, server, path, n_labels)
    shown = _shown(browser)
    assert (shown["state"], shown["label"], shown["reason"]) == ("unknown", "unknown", "too_little_speech")
    assert shown["line"].startswith(f"Too little speech: {expected.speech_s:.2f} s of speech, an emotion needs")
    assert sum(_bars(browser).values()) == pytest.approx(1.0, abs=0.01)  # the guess is still shown


def test_narrowband_and_clipped_audio_show_quality_badges_and_the_warning(server, browser, model, tmp_path, n_labels):
    from emovox.audio import load_audio

    phone = _write_wav(tmp_path / "phone.wav", load_audio(_clip("03a01Wa.flac"), sample_rate_hz=8000), 8000)
    _upload(browser, server, phone, n_labels)
    shown = _shown(browser)
    assert shown["badges"].get("narrowband") == "Telephone / narrowband"
    badge = browser.find_element("css selector", '#result-quality .badge[data-flag="narrowband"]')
    assert "kHz" in badge.get_attribute("title")
    # the default model was measured on telephone channels: flagged, not warned about
    assert not any("narrowband" in w.lower() for w in shown["warnings"])
    assert shown["state"] != "no_speech" and shown["label"] == model.predict(phone).label

    y = load_audio(_clip("03a01Wa.flac"))
    hot = _write_wav(tmp_path / "hot.wav", np.clip(y * (1.2 / np.abs(y).max()), -0.9, 0.9), 16000)  # flat tops
    _upload(browser, server, hot, n_labels)
    shown = _shown(browser)
    assert "clipping" in shown["badges"]
    assert any(w.startswith("Clipped audio") for w in shown["warnings"]), shown["warnings"]  # never measured


def test_upload_of_a_non_audio_file_shows_the_error(server, browser, tmp_path, n_labels):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"this is not audio at all" * 20)
    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    browser.find_element("id", "file-input").send_keys(str(bad))
    status = browser.find_element("id", "file-status")
    _wait(lambda: "error" in (status.get_attribute("class") or ""), what="an error message")
    assert "notes.wav" in status.text and "Traceback" not in status.text


@pytest.mark.parametrize("fmt", ["pcm16", "webm"])
def test_live_capture_streams_events_and_moves_bars(server, browser, fmt, n_labels):
    from selenium.webdriver.support.ui import Select

    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    Select(browser.find_element("id", "live-format")).select_by_value(fmt)
    browser.find_element("id", "live-start").click()
    status = browser.find_element("id", "live-status")
    events = lambda: int(status.get_attribute("data-events") or 0)  # noqa: E731
    _wait(lambda: events() >= 2, timeout_s=25, what=f"{fmt} stream events")
    seen = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(seen) < 2:  # bars must change as events arrive
        seen.add(tuple(sorted(_bars(browser).items())))
        time.sleep(0.2)
    assert len(seen) >= 2, "the bars did not move during live capture"
    shown = _shown(browser)
    assert shown["label"] in set(_bars(browser)) | {"unknown", "no_speech"}
    assert re.fullmatch(r"\d+\.\d s of speech in the last \d\.\d s\.", shown["speech"]), shown["speech"]
    assert browser.find_element("id", "result-main").get_attribute("aria-live") == "off"  # no chatter
    assert browser.find_element("id", "timeline-wrap").is_displayed()
    browser.find_element("id", "live-stop").click()
    _wait(lambda: "Stopped" in status.text, what="the end of the stream")
    assert "error" not in (status.get_attribute("class") or "")
    assert browser.find_element("id", "result-main").get_attribute("aria-live") == "polite"


def test_live_capture_of_a_tone_shows_no_speech(server, tmp_path_factory, n_labels):
    """A fake microphone that hears only a tone: the live events are shown as no speech."""
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(4 * 48000) / 48000)).astype(np.float32)
    wav = _write_wav(tmp_path_factory.mktemp("tone-mic") / "tone.wav", tone, 48000)
    driver = _chromium(wav, tmp_path_factory)
    try:
        driver.get(server + "/")
        _wait(lambda: len(_bars(driver)) == n_labels, what="bars")
        driver.find_element("id", "live-start").click()
        status = driver.find_element("id", "live-status")
        _wait(lambda: int(status.get_attribute("data-events") or 0) >= 2, timeout_s=25, what="stream events")
        shown = _shown(driver)
        assert (shown["state"], shown["label"], shown["text"]) == ("no_speech", "no_speech", "No speech")
        assert "No voice in the last window" in shown["line"]
        driver.find_element("id", "live-stop").click()
        _wait(lambda: "Stopped" in status.text, what="the end of the stream")
    finally:
        driver.quit()


def test_long_file_gets_a_timeline_chart(server, browser, model, n_labels, tmp_path):
    import soundfile as sf

    from emovox.audio import load_audio

    names = ("03a01Wa.flac", "03a02Wb.flac", "03a01Fa.flac", "03a01Nc.flac")
    parts = []
    for n in names:
        parts += [load_audio(_clip(n)), np.zeros(8000, np.float32)]
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate(parts), 16000, subtype="PCM_16")
    expected = model.predict_timeline(path)
    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    browser.find_element("id", "file-input").send_keys(str(path))
    _wait(lambda: "Done" in browser.find_element("id", "file-status").text, what="the timeline result")
    assert browser.find_element("id", "timeline-wrap").is_displayed()
    title = browser.find_element("id", "timeline-title").text
    assert f"{len(expected.segments)} speech segments" in title
    summary = expected.summary
    shown = _shown(browser)
    assert shown["label"] == expected.overall().label == summary["label"]
    assert summary["detail"].lower() in shown["line"].lower()
    assert f"{summary['speech_s']:.1f} s of speech in {expected.duration_s:.1f} s" in shown["speech"]
    assert browser.find_element("id", "summary").is_displayed()
    shares = {
        li.get_attribute("data-share"): float(li.get_attribute("data-p"))
        for li in browser.find_elements("css selector", "#shares li")
    }
    assert {k: shares[k] for k in summary["emotion_share"]} == pytest.approx(summary["emotion_share"])
    assert shares["unknown"] == pytest.approx(summary["unknown_share"])
    assert shares["no_speech"] == pytest.approx(summary["no_speech_share"]) and shares["no_speech"] > 0.1
    painted = browser.execute_script(
        "const c = document.getElementById('timeline'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++; return n;"
    )
    assert painted > 1000  # the chart was drawn


def test_dropping_a_file_analyses_it(server, browser, n_labels):
    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    browser.execute_script("""
        const sr = 16000, n = sr;                      // 1 s of a gliding tone as a 16-bit WAV
        const buf = new ArrayBuffer(44 + 2 * n), v = new DataView(buf);
        const put = (o, s) => [...s].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
        put(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); put(8, "WAVEfmt ");
        v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
        v.setUint32(24, sr, true); v.setUint32(28, 2 * sr, true); v.setUint16(32, 2, true);
        v.setUint16(34, 16, true); put(36, "data"); v.setUint32(40, 2 * n, true);
        for (let i = 0; i < n; i++) v.setInt16(44 + 2 * i, 8000 * Math.sin(2 * Math.PI * (200 + 100 * i / n) * i / sr), true);
        const dt = new DataTransfer();
        dt.items.add(new File([buf], "dropped.wav", { type: "audio/wav" }));
        document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
    """)
    _wait(
        lambda: "Done: dropped.wav" in browser.find_element("id", "file-status").text, what="the dropped file's result"
    )
    assert _shown(browser)["label"] == "no_speech"  # a gliding tone is not speech


def test_with_api_keys_the_page_works_by_the_session_cookie(keyed_server, browser, model, n_labels):
    clip = _clip("03a01Wa.flac")
    expected = model.predict(clip)
    browser.get(keyed_server + "/")
    browser.delete_all_cookies()  # no session from an earlier run of this browser
    browser.get(keyed_server + "/")
    assert browser.find_elements("css selector", "form input[name=api_key]")  # the sign-in form, not the page
    assert not browser.find_elements("id", "bars")

    browser.get(keyed_server + f"/?api_key={API_KEY}")
    _wait(lambda: len(_bars(browser)) == n_labels, what="the page after signing in")
    assert browser.current_url == keyed_server + "/"  # the key left the address bar
    assert "emovox_session" not in browser.execute_script("return document.cookie")  # HttpOnly
    cookie = browser.get_cookie("emovox_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and API_KEY not in cookie["value"]
    browser.find_element("id", "file-input").send_keys(str(clip))
    _wait(lambda: "Done" in browser.find_element("id", "file-status").text, what="the upload result")
    assert browser.find_element("id", "result-label").get_attribute("data-label") == expected.label

    browser.find_element("id", "live-start").click()  # the WebSocket handshake carries the cookie
    status = browser.find_element("id", "live-status")
    _wait(lambda: int(status.get_attribute("data-events") or 0) >= 1, timeout_s=25, what="stream events")
    browser.find_element("id", "live-stop").click()
    _wait(lambda: "Stopped" in status.text, what="the end of the stream")
    assert "error" not in (status.get_attribute("class") or "")

    browser.delete_all_cookies()  # the sign-in form works too
    browser.get(keyed_server + "/")
    browser.find_element("name", "api_key").send_keys(API_KEY)
    browser.find_element("css selector", "form button[type=submit]").click()
    _wait(lambda: len(_bars(browser)) == n_labels, what="the page after the sign-in form")
    assert browser.current_url == keyed_server + "/"


def _page_blob(driver, fmt: str):
    """``emovox.exportBlob(fmt)`` in the page (what the download buttons save): [type, size, text]."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "emovox.exportBlob(arguments[0]).then(async (b) => done([b.type, b.size, b.type.startsWith('image/') ? '' : "
        "await b.text()]), (e) => done(['error', 0, e.message]));",
        fmt,
    )


def test_long_upload_streams_progress_then_offers_downloads_player_and_segments(
    server, browser, model, n_labels, tmp_path
):
    from emovox.audio import load_audio
    from emovox.inference.records import result_columns

    pause = np.zeros(16000, np.float32)
    parts = [pause]
    for n in ("03a01Wa.flac", "03a02Wb.flac", "03a01Fa.flac"):
        parts += [load_audio(_clip(n)), pause]
    path = _write_wav(tmp_path / "three clips.wav", np.concatenate(parts))
    expected = model.predict_timeline(path)
    assert expected.duration_s > 6 and len(expected.segments) >= 2
    browser.set_script_timeout(30)
    _upload(browser, server, path, n_labels)
    assert browser.find_element("id", "result-card").get_attribute("data-via") == "stream"  # the NDJSON result line
    progress = browser.find_element("id", "file-progress")
    assert progress.get_attribute("data-seen") == "1" and not progress.is_displayed()  # shown, then gone
    assert _shown(browser)["label"] == expected.overall().label

    canvas = browser.find_element("id", "timeline")
    assert canvas.get_attribute("role") == "img"
    top = max(expected.summary["emotion_share"], key=expected.summary["emotion_share"].get)
    assert f"{top} " in canvas.get_attribute("aria-label") and "% of confident speech" in canvas.get_attribute(
        "aria-label"
    )

    buttons = {b.get_attribute("data-format"): b for b in browser.find_elements("css selector", "#downloads button")}
    assert set(buttons) == {"json", "csv", "srt", "vtt", "png"} and all(b.is_displayed() for b in buttons.values())
    assert buttons["srt"].text == "Subtitles (SRT)" and buttons["png"].tag_name == "button"  # keyboard: real buttons
    kind, _, srt = _page_blob(browser, "srt")
    assert srt.startswith(("1\n", "1\r\n")), srt[:80]
    assert "-->" in srt and expected.segments[0].label in srt
    assert _page_blob(browser, "vtt")[2].startswith("WEBVTT")
    import json

    answer = json.loads(_page_blob(browser, "json")[2])
    assert answer["label"] == expected.overall().label and "type" not in answer
    assert len(answer["timeline"]["segments"]) == len(expected.segments)
    csv_lines = _page_blob(browser, "csv")[2].splitlines()
    assert csv_lines[0] == ",".join(result_columns(model.labels))
    assert len(csv_lines) == 2 + len(expected.segments)  # the header, the file row, one row per segment
    assert csv_lines[1].startswith(
        f"three clips.wav,0,file,,0.000,{expected.duration_s:.3f},{expected.overall().label},"
    )
    assert all(",segment," in line for line in csv_lines[2:])
    import io

    from emovox.inference.records import CsvRows, timeline_rows

    cli = io.StringIO()  # what `emovox predict --csv` writes for the same recording
    CsvRows(cli, model.labels).write_all(
        timeline_rows(
            expected,
            labels=model.labels,
            file="three clips.wav",
            input_index=0,
            model=(answer["model"], answer["model_version"]),
        )
    )
    assert csv_lines == cli.getvalue().splitlines()
    kind, size, _ = _page_blob(browser, "png")
    assert kind == "image/png" and size > 1000
    from selenium.webdriver.common.keys import Keys

    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "deny"})  # nothing saved to disk
    buttons["json"].send_keys(Keys.ENTER)  # the keyboard starts a download; it is named after the upload
    _wait(
        lambda: browser.find_element("id", "downloads").get_attribute("data-last") == "three clips.json",
        what="the JSON download",
    )
    assert buttons["json"].value_of_css_property("outline-width") == "3px"  # the focus ring of style.css

    # the segment list seeks the player; the timeline draws its position
    _wait(
        lambda: browser.execute_script("return document.getElementById('player').readyState >= 1"),
        what="the player's metadata",
    )
    segs = browser.find_elements("css selector", "#segments button.segment")
    assert len(segs) == len(expected.segments)
    segs[1].click()
    t = browser.execute_script("const a = document.getElementById('player'); a.pause(); return a.currentTime")
    assert t == pytest.approx(expected.segments[1].start_s, abs=0.5)
    # hovering or tapping a segment on the chart says what it is; a tap plays from it
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = browser.find_element("id", "timeline")
    seg = expected.segments[2]
    v0, v1 = (float(canvas.get_attribute(k)) for k in ("data-view-start", "data-view-end"))
    width = canvas.size["width"]
    x = 34 + ((seg.start_s + seg.end_s) / 2 - v0) / (v1 - v0) * (width - 44) - width / 2
    ActionChains(browser).move_to_element_with_offset(canvas, int(x), 0).perform()
    _wait(lambda: canvas.get_attribute("title").startswith(seg.label), what="the hover text")
    ActionChains(browser).move_to_element_with_offset(canvas, int(x), 0).click().perform()
    detail = browser.find_element("id", "timeline-detail").text
    assert detail.startswith(seg.label) and f"{seg.start_s:.1f}" in detail, detail
    t = browser.execute_script("const a = document.getElementById('player'); a.pause(); return a.currentTime")
    assert t == pytest.approx(seg.start_s, abs=0.5)

    # a failing upload clears the previous result instead of leaving it under the error
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"this is not audio at all" * 20)
    browser.find_element("id", "file-input").send_keys(str(bad))
    status = browser.find_element("id", "file-status")
    _wait(lambda: "error" in (status.get_attribute("class") or ""), what="an error message")
    assert "notes.wav" in status.text
    shown = _shown(browser)
    assert (shown["state"], shown["label"], shown["text"]) == ("empty", "", "—")
    for box in ("timeline-wrap", "downloads", "player-wrap", "summary"):
        assert not browser.find_element("id", box).is_displayed(), box
    assert set(_bars(browser).values()) == {0.0}


def test_live_format_choices_are_in_plain_words(server, browser, n_labels):
    browser.get(server + "/")
    options = {o.get_attribute("value"): o.text for o in browser.find_elements("css selector", "#live-format option")}
    assert set(options) == {"pcm16", "webm"}
    assert not any(jargon in text for text in options.values() for jargon in ("PCM", "WebM", "Opus"))


def test_several_files_at_once_get_a_result_each(server, browser, model, n_labels, tmp_path):
    """Three files chosen together: analysed one after another, one entry each, each selectable."""
    import json

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * 16000) / 16000)).astype(np.float32)
    paths = [_clip("03a01Wa.flac"), _write_wav(tmp_path / "tone.wav", tone), _clip("03a02Wb.flac")]
    expected = [model.predict(p).label for p in paths]
    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    browser.find_element("id", "file-input").send_keys("\n".join(str(p) for p in paths))
    status = browser.find_element("id", "file-status")
    _wait(lambda: "Done: 3 of 3 files" in status.text, timeout_s=40, what="the three results")
    entries = browser.find_elements("css selector", "#file-list button.file-entry")
    assert browser.find_element("id", "file-list").is_displayed() and len(entries) == 3
    assert [e.get_attribute("data-state") for e in entries] == ["done"] * 3
    assert [e.get_attribute("data-label") for e in entries] == expected
    assert [f["label"] for f in browser.execute_script("return emovox.files()")] == expected
    assert [e.text.split("\n")[0] for e in entries] == [p.name for p in paths]
    for i in (1, 0, 2):  # each entry shows its own card, player and downloads
        entries[i].click()
        _wait(
            lambda: browser.find_element("id", "result-label").get_attribute("data-label") == expected[i],  # noqa: B023 - called at once, inside the loop
            what=f"the card of {paths[i].name}",
        )
        assert entries[i].get_attribute("aria-pressed") == "true"
        assert sum(e.get_attribute("aria-pressed") == "true" for e in entries) == 1
        assert paths[i].name in browser.find_element("id", "result-source").get_attribute("textContent")
        answer = json.loads(_page_blob(browser, "json")[2])
        assert answer["file"] == paths[i].name and answer["label"] == expected[i]
        assert browser.find_element("id", "downloads").is_displayed()
        src = browser.execute_script("return document.getElementById('player').src")
        assert src.startswith("blob:")

    # a single file afterwards: no list, the card alone (as before)
    browser.find_element("id", "file-input").send_keys(str(paths[0]))
    _wait(lambda: f"Done: {paths[0].name}." in status.text, what="the single result")
    assert not browser.find_element("id", "file-list").is_displayed()


def test_dropping_several_files_analyses_each(server, browser, n_labels):
    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    browser.execute_script("""
        const wav = (f0) => {                          // 1 s of a tone as a 16-bit WAV
          const sr = 16000, n = sr, buf = new ArrayBuffer(44 + 2 * n), v = new DataView(buf);
          const put = (o, s) => [...s].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
          put(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); put(8, "WAVEfmt ");
          v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
          v.setUint32(24, sr, true); v.setUint32(28, 2 * sr, true); v.setUint16(32, 2, true);
          v.setUint16(34, 16, true); put(36, "data"); v.setUint32(40, 2 * n, true);
          for (let i = 0; i < n; i++) v.setInt16(44 + 2 * i, 8000 * Math.sin(2 * Math.PI * f0 * i / sr), true);
          return buf;
        };
        const dt = new DataTransfer();
        for (const f0 of [300, 500]) dt.items.add(new File([wav(f0)], `tone${f0}.wav`, { type: "audio/wav" }));
        document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
    """)
    _wait(lambda: "Done: 2 of 2 files" in browser.find_element("id", "file-status").text, what="both results")
    files = browser.execute_script("return emovox.files()")
    assert [(f["name"], f["label"]) for f in files] == [("tone300.wav", "no_speech"), ("tone500.wav", "no_speech")]


def test_live_session_summary_and_download_after_stop(server, browser, n_labels):
    import json

    browser.get(server + "/")
    _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
    browser.find_element("id", "live-start").click()
    status = browser.find_element("id", "live-status")
    _wait(lambda: int(status.get_attribute("data-events") or 0) >= 1, timeout_s=25, what="stream events")
    time.sleep(3)
    assert not browser.find_element("id", "session-downloads").is_displayed()  # not while listening
    browser.find_element("id", "live-stop").click()
    _wait(lambda: "Stopped" in status.text, what="the end of the stream")
    card = browser.find_element("id", "result-card")
    _wait(lambda: card.get_attribute("data-via") == "session", what="the session summary")
    summary = browser.find_element("id", "summary")
    assert summary.is_displayed() and summary.get_attribute("data-kind") == "session"
    assert "Live session" in browser.find_element("id", "result-source").get_attribute("textContent")
    shares = {
        li.get_attribute("data-share"): float(li.get_attribute("data-p"))
        for li in browser.find_elements("css selector", "#shares li")
    }
    assert "unknown" in shares and "no_speech" in shares
    emotions = {k: v for k, v in shares.items() if k not in ("unknown", "no_speech")}
    assert not emotions or sum(emotions.values()) == pytest.approx(1.0, abs=1e-6)
    assert re.search(r"of speech in \d+\.\d s", browser.find_element("id", "result-speech").text)
    assert browser.find_element("id", "session-downloads").is_displayed()
    text = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.resolve().then(() => emovox.exportSession(arguments[0]).text()).then(done, (e) => done('error ' + e));",
        "json",
    )
    session = json.loads(text)
    n_events = int(status.get_attribute("data-events"))
    assert len(session["events"]) == n_events >= 4
    assert all(e["type"] == "event" and "label" in e for e in session["events"])
    s = session["summary"]
    assert s["duration_s"] == pytest.approx(session["events"][-1]["t"], abs=1.0) and s["duration_s"] >= 2
    assert 0 <= s["speech_s"] <= s["duration_s"] + 1e-6 and s["speech_s"] > 0  # the fake mic plays speech
    assert s["emotion_share"] == pytest.approx(dict(emotions.items()))
    assert s["unknown_share"] == pytest.approx(shares["unknown"]) and s["no_speech_share"] == pytest.approx(
        shares["no_speech"]
    )
    assert session["model"]
    csv_text = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.resolve().then(() => emovox.exportSession('csv').text()).then(done, (e) => done('error ' + e));"
    )
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == n_events and rows[0]["label"] == session["events"][0]["label"]
    assert float(rows[-1]["t"]) == pytest.approx(session["events"][-1]["t"], abs=1e-3)


def _long_wav(path: Path, seconds: float) -> Path:
    from emovox.audio import load_audio

    pause = np.zeros(8000, np.float32)
    parts, total = [], 0
    names = ("03a01Wa.flac", "03a02Wb.flac", "03a01Fa.flac", "03a01Nc.flac")
    while total < seconds * 16000:
        y = load_audio(_clip(names[len(parts) // 2 % len(names)]))
        parts += [y, pause]
        total += len(y) + len(pause)
    return _write_wav(path, np.concatenate(parts))


def _ticks_apart(driver):
    ticks = driver.execute_script("return emovox.ticks()")
    assert len(ticks) >= 2, ticks
    for a, b in zip(ticks, ticks[1:]):  # no label drawn over the previous one
        assert b["left"] - a["left"] >= a["width"], (a, b)
    return ticks


def test_long_timeline_zooms_pans_and_its_tick_labels_never_collide(server, browser, n_labels, tmp_path):
    path = _long_wav(tmp_path / "minute.wav", 60)
    browser.set_script_timeout(30)
    _upload(browser, server, path, n_labels)
    canvas = browser.find_element("id", "timeline")
    duration = browser.execute_script("return emovox.view()")[1]
    assert duration > 55
    assert float(canvas.get_attribute("data-view-start")) == 0
    assert float(canvas.get_attribute("data-view-end")) == pytest.approx(duration, abs=1e-3)
    assert browser.find_element("id", "zoom").is_displayed()
    whole = _ticks_apart(browser)
    browser.find_element("id", "zoom-in").click()
    browser.find_element("id", "zoom-in").click()
    v0, v1 = browser.execute_script("return emovox.view()")
    assert v1 - v0 == pytest.approx(duration / 4, rel=1e-3)  # the visible window shrank
    assert float(canvas.get_attribute("data-view-end")) - float(canvas.get_attribute("data-view-start")) < duration / 3
    zoomed = _ticks_apart(browser)
    assert zoomed[1]["t"] - zoomed[0]["t"] < whole[1]["t"] - whole[0]["t"]  # finer ticks
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(canvas).click_and_hold().move_by_offset(-200, 0).release().perform()
    d0, d1 = browser.execute_script("return emovox.view()")
    assert d0 > v0 + 1 and d1 - d0 == pytest.approx(v1 - v0, rel=1e-3)  # dragged sideways: later audio
    pan = browser.find_element("id", "timeline-pan")
    assert pan.is_enabled()
    browser.execute_script("const p = arguments[0]; p.value = '1000'; p.dispatchEvent(new Event('input'))", pan)
    w0, w1 = browser.execute_script("return emovox.view()")
    assert w1 == pytest.approx(duration, abs=1e-3) and w1 - w0 == pytest.approx(v1 - v0, rel=1e-3)  # panned right
    browser.find_element("id", "zoom-reset").click()
    assert browser.execute_script("return emovox.view()") == pytest.approx([0, duration], abs=1e-3)
    assert not pan.is_enabled()
    for width in (1200, 520):  # a narrow window: fewer labels, still apart
        browser.set_window_size(width, 1000)
        _wait(
            lambda: browser.execute_script("return document.getElementById('timeline').clientWidth") < width,  # noqa: B023 - called at once, inside the loop
            what="the resize",
        )
        browser.execute_script("window.dispatchEvent(new Event('resize'))")
        _ticks_apart(browser)
        for span in (duration / 7, duration / 33):
            browser.execute_script("emovox.setView(3.3, arguments[0])", span)
            _ticks_apart(browser)
        browser.execute_script("emovox.setView(0, Infinity)")
    browser.set_window_size(1200, 1000)


def test_on_a_narrow_screen_the_result_scrolls_into_view(server, browser, n_labels):
    clip = _clip("03a01Wa.flac")
    browser.set_window_size(400, 900)
    try:
        browser.get(server + "/")
        _wait(lambda: len(_bars(browser)) == n_labels, what="bars")
        before = browser.execute_script(
            "return [document.getElementById('result-card').getBoundingClientRect().top, innerHeight]"
        )
        assert before[0] > 0.4 * before[1]  # the card starts below the fold's upper part
        browser.find_element("id", "file-input").send_keys(str(clip))
        _wait(lambda: "Done" in browser.find_element("id", "file-status").text, what="the upload result")
        _wait(
            lambda: browser.execute_script(
                "const r = document.getElementById('result-card').getBoundingClientRect();"
                "return scrollY > 0 && r.top >= -1 && r.top < innerHeight / 4"
            ),
            what="the result in view",
        )
    finally:
        browser.set_window_size(1200, 1000)
