// emovox web page: upload a file to POST /v1/predict, or stream the microphone over
// WebSocket /v1/stream (16-bit PCM from an AudioWorklet, or MediaRecorder WebM/Opus).
// No libraries, no CDN: everything here is served by the emovox app itself.
"use strict";

const COLORS = {
  neutral: "#8a94a6", calm: "#5bbfb5", happy: "#f2b600", sad: "#3b7dd8", angry: "#e0453a",
  fearful: "#8e5bd6", disgust: "#4f9d5d", surprised: "#f08a24", boredom: "#a57f5a", unknown: "#c3c6d1",
  mixed: "#5b6478", no_speech: "#8fd0dc",
};
// Quality flags (emovox.audio.quality) as badges, and why a result holds no emotion (results.REASONS).
const FLAG_TEXT = { narrowband: "Telephone / narrowband", clipping: "Clipping", low_snr: "Noisy", low_level: "Very quiet" };
const REASON_TEXT = {
  no_speech: "no speech", too_little_speech: "too little speech", low_confidence: "not confident",
  no_confident_speech: "not confident", mixed: "no emotion leads",
};
const EXTRA = ["#d6336c", "#0ca678", "#1c7ed6", "#f59f00", "#7048e8", "#868e96"];
const LIVE_WINDOW_S = 30;
const $ = (id) => document.getElementById(id);

const state = {
  labels: [], threshold: 0, hopS: 0.5, gate: null,
  live: null,          // {ws, ctx, stream, node, recorder, events: [], count}
  fileTimeline: null,  // {duration_s, segments}
  file: null,          // the analysed upload: {file, stem, url (object URL for the player), result}
};

function color(label) {
  if (COLORS[label]) return COLORS[label];
  let h = 0;
  for (const c of String(label)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return EXTRA[h % EXTRA.length];
}

function pct(p) { return (100 * p).toFixed(p >= 0.995 || p < 0.1 ? 1 : 0) + " %"; }
function secs(s) { return (s || 0).toFixed(1) + " s"; }
function sentence(text) { return text ? text.charAt(0).toUpperCase() + text.slice(1) : ""; }

function setStatus(id, text, isError = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// With API keys on, the page, its assets, fetches and the WebSocket authenticate by the server's
// HttpOnly session cookie (set when the page was opened as /?api_key=KEY or through the sign-in form):
// this script never sees a key.
async function errorText(response) {
  if (response.status === 401) return "Not signed in (or the key was revoked): reload the page to sign in.";
  try {
    const body = await response.json();
    if (body && body.error) return body.error.message;
  } catch (_) { /* not JSON */ }
  return "HTTP " + response.status;
}

// ------------------------------------------------------------------ model and bars
async function loadModel() {
  try {
    const r = await fetch("/v1/model", { credentials: "same-origin" });
    if (!r.ok) {
      $("model-info").textContent = r.status === 401 ? "Not signed in: reload the page" : await errorText(r);
      return;
    }
    const m = await r.json();
    state.labels = m.labels;
    state.threshold = m.threshold;
    state.hopS = (m.stream && m.stream.hop_s) || 0.5;
    state.gate = m.gate || null;
    Object.assign(COLORS, m.palette || {});  // emovox.palette: the same colours as the PNGs
    $("model-info").textContent = `${m.name || m.architecture || "model"} ${m.version || ""} · ` +
      `${m.labels.length} emotions · ${m.backend} · unknown under ${pct(m.threshold)}`;
    buildBars();
    buildLegend();
  } catch (e) {
    $("model-info").textContent = "server unreachable";
  }
}

function buildBars() {
  const bars = $("bars");
  bars.innerHTML = "";
  for (const label of state.labels) {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.label = label;
    row.innerHTML = `<span class="name"></span><div class="track"><div class="fill"></div></div><span class="pct">–</span>`;
    row.querySelector(".name").textContent = label;
    row.querySelector(".fill").style.background = color(label);
    bars.appendChild(row);
  }
}

function buildLegend() {
  const legend = $("legend");
  legend.innerHTML = "";
  for (const label of [...state.labels, "unknown", "no_speech"]) {
    const s = document.createElement("span");
    s.textContent = label === "no_speech" ? "no speech" : label;
    s.style.setProperty("--c", color(label));
    legend.appendChild(s);
  }
  const t = document.createElement("span");
  t.className = "threshold";
  t.textContent = "threshold: under it, unknown";
  legend.appendChild(t);
}

function updateBars(scores) {
  const entries = Object.entries(scores || {});
  const top = entries.length ? entries.reduce((a, b) => (b[1] > a[1] ? b : a))[0] : null;
  for (const row of $("bars").children) {
    const p = scores && row.dataset.label in scores ? scores[row.dataset.label] : 0;
    row.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    row.querySelector(".pct").textContent = scores && entries.length ? pct(p) : "–";
    row.dataset.p = p.toFixed(4);
    row.classList.toggle("best", row.dataset.label === top);
  }
}

// What a result says in words: its state, the label shown and the line under it.
// `r` is a prediction ({label, confidence, scores, speech_s, reason, ...}), a stream event, or a
// timeline's overall prediction with `summary` (then the headline is the summary's label and detail).
function describe(r, { live = false, summary = null } = {}) {
  const label = r.label;
  if (label === "no_speech") {
    return { state: "no_speech", shown: live ? "No speech" : "No speech found",
             line: live ? "No voice in the last window: no emotion is given."
                        : "The voice detector found no speech in this recording (a tone, music, noise or silence?): no emotion is given." };
  }
  const scores = r.scores || {};
  const entries = Object.entries(scores);
  const top = entries.length ? entries.reduce((a, b) => (b[1] > a[1] ? b : a)) : null;
  const guess = top ? ` Best guess ${top[0]} at ${pct(top[1])}.` : "";
  const why = sentence(REASON_TEXT[r.reason] || REASON_TEXT.low_confidence);  // the reason in words
  if (label === "unknown") {
    let line;
    if (r.reason === "too_little_speech") {
      const need = state.gate ? `, an emotion needs at least ${(state.gate.min_emotion_s).toFixed(2)} s` : "";
      line = `${why}: ${(r.speech_s || 0).toFixed(2)} s of speech${need}.` + guess;
    } else if (summary) {
      line = `${why}: ${summary.detail}.`;
    } else {
      line = top ? `${why}: best guess ${top[0]} at ${pct(top[1])}, under the threshold of ${pct(state.threshold)}.`
                 : `${why}.`;
    }
    return { state: "unknown", shown: "unknown", line };
  }
  if (label === "mixed") {
    return { state: "mixed", shown: "mixed", line: summary ? `${why}: ${summary.detail}.` : `${why}.` };
  }
  const line = summary ? `${sentence(summary.detail)}; confidence ${pct(r.confidence)} (calibrated).`
                       : `Confidence ${pct(r.confidence)} (calibrated)`;
  return { state: "emotion", shown: label, line };
}

function speechLine(r, { live = false, summary = null } = {}) {
  if (summary) {
    if (!summary.speech_s) return `0.0 s of speech in ${secs(summary.duration_s)}.`;
    return `${r.label === "unknown" ? "" : "Based on "}${secs(summary.speech_s)} of speech in ${secs(summary.duration_s)}` +
      ` (${secs(summary.confident_s)} with a confident emotion).`;
  }
  const span = Math.max(0, (r.end_s || 0) - (r.start_s || 0));
  if (live) return `${secs(r.speech_s)} of speech in the last ${secs(span)}.`;
  const text = `${secs(r.speech_s)} of speech in ${secs(span)}.`;
  return r.label === "unknown" || r.label === "no_speech" ? text : "Based on " + text;
}

function qualityTitle(flag, q) {
  if (flag === "narrowband" && q.bandwidth_hz != null) return `effective bandwidth ${(q.bandwidth_hz / 1000).toFixed(1)} kHz`;
  if (flag === "clipping") return `${(100 * q.clipped_share).toFixed(2)} % of samples clipped`;
  if (flag === "low_snr" && q.snr_db != null) return `estimated SNR ${Math.round(q.snr_db)} dB`;
  if (flag === "low_level" && q.level_dbfs != null) return `speech level ${Math.round(q.level_dbfs)} dBFS`;
  return "";
}

function showQuality(quality, warnings) {
  const badges = $("result-quality");
  badges.innerHTML = "";
  for (const flag of (quality && quality.flags) || []) {
    const li = document.createElement("li");
    li.className = "badge";
    li.dataset.flag = flag;
    li.textContent = FLAG_TEXT[flag] || flag;
    li.title = qualityTitle(flag, quality);
    badges.appendChild(li);
  }
  badges.hidden = !badges.children.length;
  const list = $("result-warnings");
  list.innerHTML = "";
  for (const w of warnings || []) {
    const li = document.createElement("li");
    li.textContent = sentence(w) + ".";
    list.appendChild(li);
  }
  list.hidden = !list.children.length;
}

function showShares(summary) {
  const box = $("summary"), list = $("shares");
  list.innerHTML = "";
  if (!summary || !summary.speech_s) { box.hidden = true; return; }
  for (const [label, share] of Object.entries(summary.emotion_share || {})) {
    const li = document.createElement("li");
    li.className = "share";
    li.dataset.share = label;
    li.dataset.p = String(share);
    li.innerHTML = `<span class="name"></span><div class="track"><div class="fill"></div></div><span class="pct"></span>`;
    li.querySelector(".name").textContent = label;
    li.querySelector(".fill").style.cssText = `width: ${(100 * share).toFixed(1)}%; background: ${color(label)}`;
    li.querySelector(".pct").textContent = pct(share);
    list.appendChild(li);
  }
  const note = (key, p, text) => {
    const li = document.createElement("li");
    li.className = "share-note";
    li.dataset.share = key;
    li.dataset.p = String(p);
    li.textContent = text;
    list.appendChild(li);
  };
  $("summary-title").textContent = Object.keys(summary.emotion_share || {}).length
    ? `Share of the confident speech per emotion (${pct(summary.confident_share)} of the speech got a confident emotion)`
    : "No stretch of speech got a confident emotion";
  note("unknown", summary.unknown_share, `Unknown: ${pct(summary.unknown_share)} of the speech (not confident, or too little speech).`);
  note("no_speech", summary.no_speech_share, `No speech: ${pct(summary.no_speech_share)} of the recording.`);
  box.hidden = false;
}

// Show one result: a file's prediction (with `summary` for a timeline) or a live event (`live`).
function showResult(r, { source, live = false, summary = null }) {
  const d = describe(r, { live, summary });
  const el = $("result-label");
  $("result-card").dataset.state = d.state;
  $("result-label-text").textContent = d.shown;
  el.dataset.label = r.label;
  el.dataset.reason = r.reason || "";
  el.style.color = d.state === "emotion" ? color(r.label) : "";
  $("result-source").textContent = source;
  $("result-confidence").textContent = d.line;
  $("result-speech").textContent = speechLine(r, { live, summary });
  showQuality(r.quality, r.warnings);
  showShares(summary);
  $("bars-title").textContent = summary ? "Mean calibrated probability over the speech, per emotion"
                                        : "Calibrated probability per emotion";
  updateBars(r.label === "no_speech" ? null : r.scores);
}

// ------------------------------------------------------------------ timeline drawing
function prepareCanvas() {
  const canvas = $("timeline");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 900, h = canvas.clientHeight || 150;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  return { g, w, h, pad: { l: 34, r: 10, t: 10, b: 22 } };
}

function drawAxes(c, t0, t1) {
  const { g, w, h, pad } = c;
  const ph = h - pad.t - pad.b;
  g.strokeStyle = "#e4e7ee"; g.fillStyle = "#8a8fa0"; g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (const p of [0, 0.5, 1]) {
    const y = pad.t + ph * (1 - p);
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(w - pad.r, y); g.stroke();
    g.fillText(Math.round(p * 100) + "%", 2, y + 4);
  }
  const span = Math.max(t1 - t0, 1e-6);
  const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => span / s <= 10) || 600;
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
    const x = pad.l + ((t - t0) / span) * (w - pad.l - pad.r);
    const text = (step < 1 ? t.toFixed(1) : Math.round(t)) + " s";
    g.fillText(text, Math.min(x - 8, w - pad.r - g.measureText(text).width), h - 6);
  }
  if (state.threshold > 0) {
    const y = pad.t + ph * (1 - state.threshold);
    g.setLineDash([4, 4]); g.strokeStyle = "#b0b4c3";
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(w - pad.r, y); g.stroke();
    g.setLineDash([]);
  }
}

function drawSpans(c, t0, t1, spans) {
  const { g, w, h, pad } = c;
  const ph = h - pad.t - pad.b, pw = w - pad.l - pad.r, span = Math.max(t1 - t0, 1e-6);
  for (const s of spans) {
    const a = Math.max(s.start, t0), b = Math.min(s.end, t1);
    if (b <= a) continue;
    const x = pad.l + ((a - t0) / span) * pw, xw = Math.max(1, ((b - a) / span) * pw - 1);
    if (!s.speech) {
      g.fillStyle = COLORS.no_speech;
      g.fillRect(x, pad.t + ph - 3, xw, 3);
      continue;
    }
    const hh = Math.max(2, s.confidence * ph);
    g.fillStyle = color(s.label);
    g.globalAlpha = s.label === "unknown" ? 0.7 : 0.9;
    g.fillRect(x, pad.t + ph - hh, xw, hh);
    g.globalAlpha = 1;
  }
}

function drawFileTimeline({ cursor = true } = {}) {
  const t = state.fileTimeline;
  if (!t) return;
  $("timeline-wrap").hidden = false;
  $("timeline-title").textContent =
    `Timeline of the recording: ${t.segments.length} speech segments over ${t.duration_s.toFixed(1)} s ` +
    "(height: confidence; bottom strip: no speech)";
  const c = prepareCanvas();
  drawAxes(c, 0, t.duration_s);
  const spans = [];
  let at = 0;
  for (const s of t.segments) {
    if (s.start_s > at) spans.push({ start: at, end: s.start_s, speech: false });
    spans.push({ start: s.start_s, end: s.end_s, label: s.label, confidence: s.confidence,
                 speech: s.label !== "no_speech" });
    at = Math.max(at, s.end_s);
  }
  if (t.duration_s > at) spans.push({ start: at, end: t.duration_s, speech: false });
  drawSpans(c, 0, t.duration_s, spans);
  const player = $("player");
  if (cursor && state.file && state.file.result && player.currentSrc && t.duration_s > 0) {  // the playing position
    const x = c.pad.l + Math.min(1, player.currentTime / t.duration_s) * (c.w - c.pad.l - c.pad.r);
    c.g.strokeStyle = "#1d2433"; c.g.lineWidth = 2;
    c.g.beginPath(); c.g.moveTo(x, c.pad.t); c.g.lineTo(x, c.h - c.pad.b); c.g.stroke();
  }
  $("timeline").setAttribute("aria-label", timelineText(t));
}

// The timeline in words, for the canvas's aria-label.
function timelineText(t) {
  const s = t.summary;
  if (!s) return `Timeline being analysed: ${t.segments.length} speech segments so far.`;
  if (!s.speech_s) return `Timeline: no speech in ${secs(s.duration_s)}.`;
  const shares = Object.entries(s.emotion_share || {}).sort((a, b) => b[1] - a[1])
    .map(([k, v], i) => `${k} ${Math.round(100 * v)}%` + (i === 0 ? " of confident speech" : ""));
  return `Timeline of ${secs(t.duration_s)}, ${t.segments.length} speech segments: ` +
    (shares.length ? shares.join(", ") : "no confident emotion") +
    `; unknown ${Math.round(100 * s.unknown_share)}% of speech; no speech ${Math.round(100 * s.no_speech_share)}% of the recording.`;
}

function drawLiveTimeline() {
  const live = state.live;
  if (!live) return;
  $("timeline-wrap").hidden = false;
  $("timeline").setAttribute("aria-label", "Live timeline of the last 30 s");
  $("timeline-title").textContent = `Live: the last ${LIVE_WINDOW_S} s (height: confidence; bottom strip: no speech)`;
  const now = live.events.length ? live.events[live.events.length - 1].t : 0;
  const t1 = Math.max(now, LIVE_WINDOW_S), t0 = t1 - LIVE_WINDOW_S;
  const c = prepareCanvas();
  drawAxes(c, t0, t1);
  drawSpans(c, t0, t1, live.events.map((e) => ({
    start: Math.max(e.start_s, e.t - live.hopS), end: e.t, label: e.label, confidence: e.confidence,
    speech: e.speech && e.label !== "no_speech" })));
}

// ------------------------------------------------------------------ files
function durationOf(file) {
  return new Promise((resolve) => {
    const audio = document.createElement("audio");
    const url = URL.createObjectURL(file);
    const done = (d) => { URL.revokeObjectURL(url); resolve(d); };
    audio.preload = "metadata";
    audio.onloadedmetadata = () => done(isFinite(audio.duration) ? audio.duration : null);
    audio.onerror = () => done(null);
    setTimeout(() => done(null), 3000);
    audio.src = url;
  });
}

function fileStem(name) { return String(name || "recording").replace(/\.[^.]*$/, "") || "recording"; }

// Forget the shown file result: a new error must not stand under an old answer.
function clearResult() {
  const card = $("result-card");
  card.dataset.state = "empty";
  delete card.dataset.via;
  const el = $("result-label");
  el.dataset.label = ""; el.dataset.reason = ""; el.style.color = "";
  $("result-label-text").textContent = "—";
  $("result-source").textContent = "No result yet";
  $("result-confidence").textContent = "";
  $("result-speech").textContent = "";
  showQuality(null, []);
  showShares(null);
  $("bars-title").textContent = "Calibrated probability per emotion";
  updateBars(null);
  state.fileTimeline = null;
  $("timeline-wrap").hidden = true;
  $("player-wrap").hidden = true;
  $("segments").innerHTML = "";
  $("downloads").hidden = true;
  if (state.file) state.file.result = null;
}

function hideProgress() { $("file-progress").hidden = true; }

function showProgress(done, total) {
  const bar = $("file-progress");
  bar.hidden = false;
  bar.max = Math.max(total, 1e-6);
  bar.value = Math.min(done, total);
  bar.dataset.seen = "1";
}

// Read an NDJSON body line by line as it arrives.
async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const flush = () => {
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onLine(JSON.parse(line));
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    flush();
  }
  buf += decoder.decode() + "\n";
  flush();
}

function showFileResult(p, via) {
  $("result-main").setAttribute("aria-live", "polite");
  showResult(p, { source: `${p.file} · ${p.end_s.toFixed(1)} s`, summary: p.timeline ? p.timeline.summary : null });
  $("result-card").dataset.via = via;
  if (p.type === "result") { p = { ...p }; delete p.type; }  // the same answer as without stream=true
  state.file.result = p;
  if (p.timeline && p.timeline.segments.length) {
    state.fileTimeline = p.timeline;
    drawFileTimeline();
  } else {
    state.fileTimeline = null;
    $("timeline-wrap").hidden = true;
  }
  buildSegmentList(p.timeline ? p.timeline.segments : []);
  $("player-wrap").hidden = false;
  for (const b of $("downloads").querySelectorAll("button[data-timeline]")) b.hidden = !p.timeline;
  $("downloads").hidden = false;
}

function buildSegmentList(segments) {
  const list = $("segments");
  list.innerHTML = "";
  segments.forEach((s, i) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "segment";
    b.dataset.segment = String(i);
    b.dataset.start = String(s.start_s);
    b.style.setProperty("--c", color(s.label));
    b.textContent = `${s.start_s.toFixed(1)}–${s.end_s.toFixed(1)} s · ${s.label === "no_speech" ? "no speech" : s.label}` +
      ` · ${pct(s.confidence)}`;
    b.setAttribute("aria-label", `Play from ${s.start_s.toFixed(1)} s: ${s.label}, confidence ${pct(s.confidence)}`);
    b.addEventListener("click", () => {
      const player = $("player");
      player.currentTime = s.start_s;
      const played = player.play();
      if (played && played.catch) played.catch(() => {});
      drawFileTimeline();
    });
    li.appendChild(b);
    list.appendChild(li);
  });
}

async function analyseFile(file) {
  if (!file) return;
  if (state.live) stopLive();
  setStatus("file-status", `Analysing ${file.name}…`);
  hideProgress();
  $("file-progress").removeAttribute("data-seen");
  if (state.file && state.file.url) URL.revokeObjectURL(state.file.url);
  const current = { file, stem: fileStem(file.name), url: URL.createObjectURL(file), result: null };
  state.file = current;
  const player = $("player");
  player.pause();
  player.src = current.url;
  const duration = await durationOf(file);
  const timeline = duration !== null && duration > 6;
  const form = new FormData();
  form.append("file", file, file.name);
  const fail = (text) => {
    if (state.file !== current) return;
    hideProgress();
    clearResult();
    setStatus("file-status", text, true);
  };
  try {
    const r = await fetch("/v1/predict" + (timeline ? "?timeline=true&stream=true" : ""),
      { method: "POST", body: form, credentials: "same-origin" });
    if (!r.ok) { fail(`${file.name}: ${await errorText(r)}`); return; }
    if (!timeline) {
      const p = await r.json();
      if (state.file !== current) return;
      showFileResult(p, "json");
      setStatus("file-status", `Done: ${p.file}.`);
      return;
    }
    let last = null;
    const partial = { duration_s: duration, segments: [] };
    await readLines(r, (line) => {
      if (state.file !== current) return;
      if (line.type === "start") {
        clearResult();  // the new recording's partial timeline replaces the old result
        partial.duration_s = line.duration_s;
        showProgress(0, line.duration_s);
      } else if (line.type === "progress") {
        showProgress(line.done_s, line.total_s);
        setStatus("file-status", `Analysing ${file.name}… ${line.done_s.toFixed(0)} of ${line.total_s.toFixed(0)} s`);
      } else if (line.type === "segment") {
        partial.segments.push(line);
        state.fileTimeline = partial;
        drawFileTimeline({ cursor: false });
      } else if (line.type === "result" || line.type === "error") {
        last = line;
      }
    });
    if (state.file !== current) return;
    if (last && last.type === "result") {
      hideProgress();
      showFileResult(last, "stream");
      setStatus("file-status", `Done: ${last.file}.`);
    } else {
      fail(`${file.name}: ` + (last ? last.error.message : "the answer was cut off; please try again."));
    }
  } catch (e) {
    fail("The server could not be reached: " + e.message);
  }
}

// ------------------------------------------------------------------ downloads
function csvCell(column, value) {
  if (value === null || value === undefined) return "";
  let text;
  if (typeof value === "number" && !["input_index", "segment"].includes(column)) {
    text = value.toFixed(["start_s", "end_s", "speech_s"].includes(column) ? 3 : 4);
  } else {
    text = String(value);
  }
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

// The rows of `emovox predict --csv` (emovox.inference.records): a file row, then one per segment.
function resultCsv(p) {
  const labels = state.labels.length ? state.labels : Object.keys(p.scores || {});
  const columns = ["file", "input_index", "kind", "segment", "start_s", "end_s", "label", "confidence", "speech_s",
    "reason", "flags", ...labels.map((k) => "score_" + k), "model", "model_version", "error"];
  const flags = (p.quality && p.quality.flags) || [];
  const row = (r, kind, segment) => {
    const out = { file: p.file, input_index: 0, kind, segment, start_s: r.start_s, end_s: r.end_s, label: r.label,
      confidence: r.confidence, speech_s: r.speech_s, reason: r.reason, flags: flags.join(";"),
      model: p.model, model_version: p.model_version, error: null };
    for (const k of labels) out["score_" + k] = r.scores && k in r.scores ? r.scores[k] : null;
    return columns.map((c) => csvCell(c, out[c])).join(",");
  };
  const lines = [columns.join(","), row(p, "file", null)];
  ((p.timeline && p.timeline.segments) || []).forEach((s, i) => lines.push(row(s, "segment", i)));
  return lines.join("\n") + "\n";
}

// The file result as a Blob in `format` (json, csv, srt, vtt, png); srt and vtt are written by the server.
async function exportBlob(format) {
  const f = state.file;
  if (!f || !f.result) throw new Error("no result to download");
  if (format === "json") return new Blob([JSON.stringify(f.result, null, 2)], { type: "application/json" });
  if (format === "csv") return new Blob([resultCsv(f.result)], { type: "text/csv" });
  if (format === "png") {
    drawFileTimeline({ cursor: false });
    const blob = await new Promise((resolve) => $("timeline").toBlob(resolve, "image/png"));
    drawFileTimeline();
    return blob;
  }
  const form = new FormData();
  form.append("file", f.file, f.file.name);
  const r = await fetch(`/v1/predict?timeline=true&format=${encodeURIComponent(format)}`,
    { method: "POST", body: form, credentials: "same-origin" });
  if (!r.ok) throw new Error(await errorText(r));
  return await r.blob();
}

async function download(format, button) {
  const f = state.file;
  if (!f) return;
  button.disabled = true;
  try {
    const blob = await exportBlob(format);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${f.stem}.${format}`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    $("downloads").dataset.last = a.download;
  } catch (e) {
    setStatus("file-status", `Download failed: ${e.message}`, true);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ live
function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/v1/stream`;  // the session cookie goes with the handshake
}

async function startLive() {
  const format = $("live-format").value;
  $("live-start").disabled = true;
  setStatus("live-status", "Asking for the microphone…");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
  } catch (e) {
    setStatus("live-status", "No microphone: " + (e.message || e.name), true);
    $("live-start").disabled = false;
    return;
  }
  const live = { stream, events: [], count: 0, hopS: state.hopS, format, ended: false };
  state.live = live;
  $("result-main").setAttribute("aria-live", "off");  // an update every hop would drown a screen reader
  state.fileTimeline = null;
  $("player").pause();  // the live answer replaces the file's: no player, segments or downloads of it
  $("player-wrap").hidden = true;
  $("downloads").hidden = true;
  if (state.file) state.file.result = null;
  let start;
  if (format === "pcm16") {
    live.ctx = new AudioContext();
    start = { format: "pcm16", sample_rate_hz: live.ctx.sampleRate };
  } else {  // MediaRecorder: WebM/Opus (Chrome, Firefox) or Ogg/Opus; anything else cannot be streamed
    const types = [["audio/webm;codecs=opus", "webm"], ["audio/webm", "webm"], ["audio/ogg;codecs=opus", "ogg"]];
    const found = window.MediaRecorder && types.find(([t]) => MediaRecorder.isTypeSupported(t));
    if (!found) {
      setStatus("live-status", "This browser records neither WebM nor Ogg: choose PCM.", true);
      teardown(live);
      return;
    }
    live.mime = found[0];
    start = { format: found[1] };
  }
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  live.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify(start));
  ws.onmessage = (m) => onLiveMessage(live, JSON.parse(m.data));
  ws.onclose = (e) => {
    if (!live.ended && !live.failed) setStatus("live-status", `Connection closed (${e.code}).`, e.code !== 1000);
    teardown(live);
  };
  ws.onerror = () => setStatus("live-status", "WebSocket error: is the server running?", true);
  $("live-stop").disabled = false;
  document.body.classList.add("listening");
}

async function beginCapture(live) {
  if (live.format === "pcm16") {
    const ctx = live.ctx;
    const source = ctx.createMediaStreamSource(live.stream);
    const send = (f32) => {
      if (live.ws.readyState !== WebSocket.OPEN) return;
      const pcm = new Int16Array(f32.length);
      for (let i = 0; i < f32.length; i++) {
        const v = Math.max(-1, Math.min(1, f32[i]));
        pcm[i] = v < 0 ? v * 32768 : v * 32767;
      }
      live.ws.send(pcm.buffer);
    };
    const mute = ctx.createGain();
    mute.gain.value = 0;
    mute.connect(ctx.destination);
    if (ctx.audioWorklet) {
      await ctx.audioWorklet.addModule("/static/pcm-worklet.js");
      live.node = new AudioWorkletNode(ctx, "pcm-capture");
      live.node.port.onmessage = (e) => send(e.data);
    } else {  // older browsers: ScriptProcessor
      live.node = ctx.createScriptProcessor(4096, 1, 1);
      live.node.onaudioprocess = (e) => send(e.inputBuffer.getChannelData(0));
    }
    source.connect(live.node);
    live.node.connect(mute);
    if (ctx.state === "suspended") await ctx.resume();
  } else {
    live.recorder = new MediaRecorder(live.stream, { mimeType: live.mime });
    live.recorder.ondataavailable = (e) => {
      if (e.data.size && live.ws.readyState === WebSocket.OPEN) live.ws.send(e.data);
    };
    live.recorder.onstop = () => {
      if (live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ type: "end" }));
    };
    live.recorder.start(250);
  }
}

function onLiveMessage(live, msg) {
  if (msg.type === "ready") {
    live.hopS = msg.hop_s;
    setStatus("live-status", "Listening… speak now.");
    beginCapture(live).catch((e) => {
      setStatus("live-status", "Audio capture failed: " + e.message, true);
      stopLive();
    });
  } else if (msg.type === "event") {
    live.count += 1;
    live.events.push(msg);
    while (live.events.length && live.events[0].t < msg.t - LIVE_WINDOW_S - 5) live.events.shift();
    const el = $("live-status");
    el.dataset.events = String(live.count);
    if (!live.ended) el.textContent = `Listening… ${live.count} updates, ${msg.t.toFixed(1)} s of audio.`;
    showResult(msg, { source: `Live · ${msg.t.toFixed(1)} s`, live: true });
    drawLiveTimeline();
  } else if (msg.type === "error") {
    live.failed = true;
    setStatus("live-status", msg.error.message, true);
  } else if (msg.type === "end") {
    setStatus("live-status", `Stopped: ${msg.audio_s.toFixed(1)} s analysed, ${msg.events} updates.`);
  }
}

function teardown(live) {
  if (live.torn) return;
  live.torn = true;
  try { if (live.recorder && live.recorder.state !== "inactive") live.recorder.stop(); } catch (_) {}
  try { if (live.node) live.node.disconnect(); } catch (_) {}
  try { if (live.ctx) live.ctx.close(); } catch (_) {}
  for (const t of live.stream.getTracks()) t.stop();
  if (state.live === live) state.live = null;
  $("result-main").setAttribute("aria-live", "polite");
  document.body.classList.remove("listening");
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
}

function stopLive() {
  const live = state.live;
  if (!live || live.ended) return;
  live.ended = true;
  $("live-stop").disabled = true;
  setStatus("live-status", "Finishing…");
  if (live.recorder && live.recorder.state !== "inactive") {
    live.recorder.stop();  // its onstop sends {"type": "end"} after the last chunk
  } else if (live.ws.readyState === WebSocket.OPEN) {
    try { if (live.node) live.node.disconnect(); } catch (_) {}
    live.ws.send(JSON.stringify({ type: "end" }));
  } else {
    teardown(live);
  }
}

// ------------------------------------------------------------------ wiring
function init() {
  const drop = $("drop-zone");
  $("file-input").addEventListener("change", (e) => analyseFile(e.target.files[0]));
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => analyseFile(e.dataTransfer.files[0]));
  $("live-start").addEventListener("click", startLive);
  $("live-stop").addEventListener("click", stopLive);
  for (const b of $("downloads").querySelectorAll("button[data-format]")) {
    b.addEventListener("click", () => download(b.dataset.format, b));
  }
  const player = $("player");
  for (const ev of ["timeupdate", "seeked"]) {
    player.addEventListener(ev, () => { if (!state.live && state.file && state.file.result) drawFileTimeline(); });
  }
  localStorage.removeItem("emovox.apiKey");  // older versions kept a key here; the cookie replaced it
  window.addEventListener("resize", () => (state.live ? drawLiveTimeline() : drawFileTimeline()));
  if (!navigator.mediaDevices || !window.WebSocket) {
    $("live-start").disabled = true;
    setStatus("live-status", "Live capture needs a browser with microphone access over http://localhost or https.", true);
  }
  loadModel();
}

window.emovox = { exportBlob, resultCsv };  // for scripts and the browser tests
init();
