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
  file: null,          // the selected upload: an entry of state.batch
  batch: null,         // the files chosen together: {entries: [{file, stem, url, result, via, error, partial}], pinned}
  view: null,          // the visible window of the file timeline when zoomed: {t0, t1}
  ticks: [],           // the x-axis labels as drawn: [{t, x, left, width, text}]
  session: null,       // the last live session after Stop: {summary, events, ...}
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
  return { g, w, h, canvas, pad: { l: 34, r: 10, t: 10, b: 22 } };
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
  // tick spacing from the pixel width: at least 50 px (and the widest label) per label, so labels never collide
  const span = Math.max(t1 - t0, 1e-6), pw = w - pad.l - pad.r;
  const fmt = (t, step) => (step < 1 ? t.toFixed(1) : String(Math.round(t))) + " s";
  const widest = Math.max(g.measureText(fmt(t0, 0.1)).width, g.measureText(fmt(t1, 0.1)).width);
  const minPx = Math.max(50, widest + 12);
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const step = steps.find((s) => (s / span) * pw >= minPx) || steps[steps.length - 1];
  const ticks = [];
  let right = -Infinity;
  const first = Math.ceil(t0 / step - 1e-9);
  for (let i = first; i * step <= t1 + 1e-9; i++) {
    const t = i * step, x = pad.l + ((t - t0) / span) * pw;
    const text = fmt(t, step), tw = g.measureText(text).width;
    const left = Math.max(2, Math.min(x - tw / 2, w - pad.r - tw));
    if (left < right + 6) continue;  // never over the previous label (the last one is pushed in from the edge)
    g.fillText(text, left, h - 6);
    g.beginPath(); g.moveTo(x, h - pad.b); g.lineTo(x, h - pad.b + 3); g.stroke();
    ticks.push({ t, x, left, width: tw, text });
    right = left + tw;
  }
  state.ticks = ticks;
  c.canvas.dataset.ticks = String(ticks.length);
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
  const [v0, v1] = viewOf(t);
  const c = prepareCanvas();
  c.canvas.dataset.viewStart = v0.toFixed(3);
  c.canvas.dataset.viewEnd = v1.toFixed(3);
  $("zoom").hidden = false;
  drawAxes(c, v0, v1);
  const spans = [];
  let at = 0;
  for (const s of t.segments) {
    if (s.start_s > at) spans.push({ start: at, end: s.start_s, speech: false });
    spans.push({ start: s.start_s, end: s.end_s, label: s.label, confidence: s.confidence,
                 speech: s.label !== "no_speech" });
    at = Math.max(at, s.end_s);
  }
  if (t.duration_s > at) spans.push({ start: at, end: t.duration_s, speech: false });
  drawSpans(c, v0, v1, spans);
  const player = $("player");
  if (cursor && state.file && state.file.result && player.currentSrc && t.duration_s > 0 &&
      player.currentTime >= v0 && player.currentTime <= v1) {  // the playing position
    const x = c.pad.l + ((player.currentTime - v0) / Math.max(v1 - v0, 1e-6)) * (c.w - c.pad.l - c.pad.r);
    c.g.strokeStyle = "#1d2433"; c.g.lineWidth = 2;
    c.g.beginPath(); c.g.moveTo(x, c.pad.t); c.g.lineTo(x, c.h - c.pad.b); c.g.stroke();
  }
  $("timeline").setAttribute("aria-label", timelineText(t));
}

// The file timeline's segment under a pointer at clientX (null between segments), and it in words.
function segmentAt(canvas, clientX) {
  const t = state.fileTimeline;
  if (!t) return null;
  const [v0, v1] = viewOf(t);
  const r = canvas.getBoundingClientRect(), pad = { l: 34, r: 10 };
  const x = (clientX - r.left - pad.l) / Math.max(1, r.width - pad.l - pad.r);
  if (x < 0 || x > 1) return null;
  const at = v0 + x * (v1 - v0);
  return t.segments.find((s) => s.start_s <= at && at <= s.end_s) || null;
}

function segmentText(s) {
  const what = s.label === "no_speech" ? "no speech" : s.label;
  return `${what}, confidence ${pct(s.confidence)}, ${s.start_s.toFixed(1)}–${s.end_s.toFixed(1)} s` +
    (s.reason && s.label !== s.reason ? ` (${REASON_TEXT[s.reason] || s.reason})` : "");
}

// ------------------------------------------------------------------ zoom
// The visible window [t0, t1] of the file timeline: the whole recording, or state.view when zoomed.
function viewOf(t) {
  const d = Math.max(t.duration_s, 1e-6);
  if (!state.view) return [0, d];
  const span = Math.min(d, state.view.t1 - state.view.t0), t0 = Math.max(0, Math.min(state.view.t0, d - span));
  return [t0, t0 + span];
}

function setView(t0, span) {
  const t = state.fileTimeline;
  if (!t) return;
  const d = t.duration_s;
  span = Math.max(Math.min(d, 1), Math.min(d, span));
  t0 = Math.max(0, Math.min(t0, d - span));
  state.view = span >= d - 1e-9 ? null : { t0, t1: t0 + span };
  syncZoom(d);
  $("timeline").classList.toggle("zoomed", !!state.view);
  drawFileTimeline();
}

function syncZoom(d) {
  const v = state.view, pan = $("timeline-pan");
  pan.disabled = !v;
  pan.value = v && d > v.t1 - v.t0 ? String(Math.round((1000 * v.t0) / (d - (v.t1 - v.t0)))) : "0";
  $("zoom-out").disabled = $("zoom-reset").disabled = !v;
}

function resetZoom() {
  state.view = null;
  $("timeline").classList.remove("zoomed");
  syncZoom(0);
}

function panTo(value) {
  const t = state.fileTimeline;
  if (!t || !state.view) return;
  const span = state.view.t1 - state.view.t0;
  setView((Number(value) / 1000) * (t.duration_s - span), span);
}

function zoom(factor) {
  const t = state.fileTimeline;
  if (!t) return;
  const [v0, v1] = viewOf(t);
  const player = $("player");
  const playing = state.file && state.file.result && player.currentSrc && player.currentTime > v0 && player.currentTime < v1;
  const centre = playing ? player.currentTime : (v0 + v1) / 2;  // zoom around the playing position
  const span = (v1 - v0) * factor;
  setView(centre - span / 2, span);
}

// Keep the playing position in the visible window.
function followCursor() {
  const t = state.fileTimeline;
  if (!t || !state.view) return;
  const now = $("player").currentTime, [v0, v1] = viewOf(t);
  if (now < v0 || now > v1) setView(now - 0.1 * (v1 - v0), v1 - v0);
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
  $("zoom").hidden = true;
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
  $("timeline-detail").textContent = "";
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
  $("session-downloads").hidden = true;
  delete $("summary").dataset.kind;
  resetZoom();
  $("zoom").hidden = true;
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
  $("timeline-detail").textContent = "";
  $("result-main").setAttribute("aria-live", "polite");
  showResult(p, { source: `${p.file} · ${p.end_s.toFixed(1)} s`, summary: p.timeline ? p.timeline.summary : null });
  $("result-card").dataset.via = via;
  $("session-downloads").hidden = true;
  delete $("summary").dataset.kind;
  resetZoom();
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
      followCursor();
      drawFileTimeline();
    });
    li.appendChild(b);
    list.appendChild(li);
  });
}

// On a narrow screen the result card lies under the inputs: bring it into view when a result arrives.
function revealResult() {
  if (!window.matchMedia("(max-width: 760px)").matches) return;
  const card = $("result-card"), top = card.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.4) card.scrollIntoView({ behavior: "smooth", block: "start" });
}

// ------------------------------------------------------------------ several files
// Files chosen or dropped together are analysed one after another; each gets an entry in the list,
// which shows its result card (player and downloads included) when chosen.
function analyseFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  if (state.live) stopLive();
  if (state.batch) for (const e of state.batch.entries) URL.revokeObjectURL(e.url);
  const batch = {
    pinned: false,
    entries: files.map((file, index) => ({ file, index, stem: fileStem(file.name), url: URL.createObjectURL(file),
      status: "queued", result: null, via: null, error: null, partial: null })),
  };
  state.batch = batch;
  buildFileList(batch);
  runBatch(batch);
}

async function runBatch(batch) {
  for (const entry of batch.entries) {
    if (state.batch !== batch) return;
    await analyseFile(entry, batch);
  }
  const n = batch.entries.length;
  if (state.batch !== batch || n < 2) return;
  const ok = batch.entries.filter((e) => e.result).length;
  setStatus("file-status", `Done: ${ok} of ${n} files analysed; choose one in the list to see its result.`, ok < n);
}

function buildFileList(batch) {
  const list = $("file-list");
  list.innerHTML = "";
  list.hidden = batch.entries.length < 2;  // one file: its card alone, as before
  for (const entry of batch.entries) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "file-entry";
    b.dataset.index = String(entry.index);
    b.innerHTML = `<span class="file-name"></span><span class="file-state"></span>`;
    b.querySelector(".file-name").textContent = entry.file.name;
    b.addEventListener("click", () => {
      if (state.batch !== batch) return;
      batch.pinned = true;
      selectEntry(entry);
    });
    entry.button = b;
    li.appendChild(b);
    list.appendChild(li);
    updateEntry(entry);
  }
}

function updateEntry(entry) {
  const b = entry.button;
  if (!b) return;
  const r = entry.result;
  b.dataset.state = entry.status;
  b.dataset.label = r ? r.label : "";
  b.style.setProperty("--c", r ? (r.label === "unknown" || r.label === "no_speech" ? COLORS[r.label] : color(r.label)) : "");
  let text = { queued: "waiting", analysing: "analysing…" }[entry.status] || "";
  if (r) text = (r.label === "no_speech" ? "no speech" : r.label) + (r.confidence ? ` · ${pct(r.confidence)}` : "");
  if (entry.status === "error") text = "error";
  b.querySelector(".file-state").textContent = text;
  b.title = entry.error || "";
  b.setAttribute("aria-pressed", String(state.file === entry));
}

// Show an entry's result (or its partial timeline while it is analysed) in the card.
function selectEntry(entry) {
  if (state.live) stopLive();
  state.file = entry;
  const player = $("player");
  player.pause();
  if (player.src !== entry.url) player.src = entry.url;
  if (state.batch) for (const e of state.batch.entries) updateEntry(e);
  if (entry.result) {
    showFileResult(entry.result, entry.via);
  } else {
    clearResult();
    if (entry.partial && entry.partial.segments.length) {
      state.fileTimeline = entry.partial;
      drawFileTimeline({ cursor: false });
    }
  }
}

async function analyseFile(entry, batch) {
  const file = entry.file;
  const n = batch.entries.length, of = n > 1 ? ` (${entry.index + 1} of ${n})` : "";
  const alive = () => state.batch === batch;
  const shown = () => alive() && state.file === entry;
  entry.status = "analysing";
  if (!batch.pinned) selectEntry(entry);  // the card follows the file being analysed until one is chosen
  updateEntry(entry);
  setStatus("file-status", `Analysing ${file.name}…${of}`);
  hideProgress();
  $("file-progress").removeAttribute("data-seen");
  const duration = await durationOf(file);
  const timeline = duration !== null && duration > 6;
  const form = new FormData();
  form.append("file", file, file.name);
  const fail = (text) => {
    entry.status = "error";
    entry.error = text;
    entry.partial = null;
    updateEntry(entry);
    if (!alive()) return;
    hideProgress();
    if (shown()) clearResult();
    setStatus("file-status", text, true);
  };
  const finish = (p, via) => {
    if (p.type === "result") { p = { ...p }; delete p.type; }  // the same answer as without stream=true
    entry.result = p;
    entry.via = via;
    entry.status = "done";
    entry.partial = null;
    updateEntry(entry);
    if (!alive()) return;
    if (shown()) {
      showFileResult(p, via);
      revealResult();
    }
    setStatus("file-status", `Done: ${p.file}.${of}`);
  };
  try {
    const r = await fetch("/v1/predict" + (timeline ? "?timeline=true&stream=true" : ""),
      { method: "POST", body: form, credentials: "same-origin" });
    if (!r.ok) { fail(`${file.name}: ${await errorText(r)}`); return; }
    if (!timeline) {
      finish(await r.json(), "json");
      return;
    }
    let last = null;
    const partial = { duration_s: duration, segments: [] };
    entry.partial = partial;
    await readLines(r, (line) => {
      if (!alive()) return;
      if (line.type === "start") {
        if (shown()) clearResult();  // the new recording's partial timeline replaces the old result
        partial.duration_s = line.duration_s;
        showProgress(0, line.duration_s);
      } else if (line.type === "progress") {
        showProgress(line.done_s, line.total_s);
        setStatus("file-status", `Analysing ${file.name}…${of} ${line.done_s.toFixed(0)} of ${line.total_s.toFixed(0)} s`);
      } else if (line.type === "segment") {
        partial.segments.push(line);
        if (shown()) {
          state.fileTimeline = partial;
          drawFileTimeline({ cursor: false });
        }
      } else if (line.type === "result" || line.type === "error") {
        last = line;
      }
    });
    if (!alive()) return;
    if (last && last.type === "result") {
      hideProgress();
      finish(last, "stream");
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
    text = value.toFixed(["t", "start_s", "end_s", "speech_s", "duration_s"].includes(column) ? 3 : 4);
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

// ------------------------------------------------------------------ live session summary
// A live session's summary from its events: each event stands for the audio since the previous one
// (one hop), of which the share speech_s / window is speech; its label says whether that speech got a
// confident emotion. The same fields as a timeline's summary.
function sessionSummary(events, audioS) {
  let prev = 0, speech = 0, confident = 0, unknown = 0, weight = 0;
  const per = {}, conf = {}, scores = {};
  for (const e of events) {
    const d = Math.max(0, e.t - prev);
    prev = Math.max(prev, e.t);
    const span = Math.max(1e-6, (e.end_s || 0) - (e.start_s || 0));
    const f = e.speech && e.label !== "no_speech" ? Math.min(1, (e.speech_s || 0) / span) : 0;
    const sp = d * f;
    if (!(sp > 0)) continue;
    speech += sp;
    if (e.label === "unknown" || e.label === "mixed") {
      unknown += sp;
    } else {
      confident += sp;
      per[e.label] = (per[e.label] || 0) + sp;
      conf[e.label] = (conf[e.label] || 0) + sp * (e.confidence || 0);
    }
    for (const [k, v] of Object.entries(e.scores || {})) scores[k] = (scores[k] || 0) + sp * v;
    weight += sp;
  }
  const duration = Math.max(prev, audioS || 0);
  const share = Object.entries(per).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / confident]);
  for (const k of Object.keys(scores)) scores[k] /= weight || 1;
  const top = share.length ? share[0][0] : null;
  const s = {
    duration_s: duration, speech_s: speech, confident_s: confident,
    confident_share: speech ? confident / speech : 0, unknown_share: speech ? unknown / speech : 0,
    no_speech_share: duration ? Math.max(0, 1 - speech / duration) : 1,
    emotion_share: Object.fromEntries(share), events: events.length,
  };
  if (!speech) Object.assign(s, { label: "no_speech", reason: "no_speech", confidence: 0, detail: "no speech" });
  else if (!top) Object.assign(s, { label: "unknown", reason: "no_confident_speech", confidence: 0,
    detail: "no stretch of the session's speech got a confident emotion" });
  else Object.assign(s, { label: top, reason: null, confidence: conf[top] / per[top],
    detail: `${top} in ${Math.round(100 * share[0][1])}% of the confident speech` });
  s.scores = s.label === "no_speech" ? {} : scores;
  return s;
}

function showSession(live, end) {
  const s = sessionSummary(live.all, end && end.audio_s);
  state.session = { type: "live_session", model: live.model || null, model_version: live.modelVersion || null,
    format: live.format, hop_s: live.hopS, duration_s: s.duration_s,
    summary: Object.fromEntries(Object.entries(s).filter(([k]) => k !== "scores" && k !== "events")),
    scores: s.scores, events: live.all };
  if (state.file) return;  // a file chosen since Stop keeps the card; the session stays downloadable by script
  showResult({ label: s.label, confidence: s.confidence, scores: s.scores, reason: s.reason, speech_s: s.speech_s },
    { source: `Live session · ${secs(s.duration_s)} · ${live.all.length} updates`, summary: s });
  $("result-card").dataset.via = "session";
  $("summary").dataset.kind = "session";
  $("session-downloads").hidden = false;
  revealResult();
}

// The live session as a Blob: JSON (summary and events) or CSV (one row per event).
function exportSession(format) {
  const s = state.session;
  if (!s) throw new Error("no live session to download");
  if (format === "json") return new Blob([JSON.stringify(s, null, 2)], { type: "application/json" });
  const labels = state.labels.length ? state.labels : Object.keys(s.scores || {});
  const columns = ["t", "start_s", "end_s", "speech", "label", "confidence", "speech_s", "reason", "flags",
    ...labels.map((k) => "score_" + k), "model", "model_version"];
  const lines = [columns.join(",")];
  for (const e of s.events) {
    const out = { ...e, speech: e.speech ? "true" : "false", flags: ((e.quality && e.quality.flags) || []).join(";"),
      model: s.model, model_version: s.model_version };
    for (const k of labels) out["score_" + k] = e.scores && k in e.scores ? e.scores[k] : null;
    lines.push(columns.map((c) => csvCell(c, out[c])).join(","));
  }
  return new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
}

async function download(format, button) {
  const session = format.startsWith("session-");
  const f = state.file;
  if (!session && !f) return;
  button.disabled = true;
  try {
    const ext = format.replace("session-", "");
    const blob = session ? exportSession(ext) : await exportBlob(format);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = session ? `emovox-live-session.${ext}` : `${f.stem}.${format}`;
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
  const live = { stream, events: [], all: [], count: 0, hopS: state.hopS, format, ended: false };
  state.live = live;
  state.session = null;
  if (state.batch) state.batch.pinned = true;  // a file finishing meanwhile does not replace the live card
  state.file = null;
  if (state.batch) for (const e of state.batch.entries) updateEntry(e);
  $("session-downloads").hidden = true;
  $("summary").hidden = true;
  delete $("summary").dataset.kind;
  delete $("result-card").dataset.via;
  $("result-main").setAttribute("aria-live", "off");  // an update every hop would drown a screen reader
  state.fileTimeline = null;
  $("player").pause();  // the live answer replaces the file's: no player, segments or downloads of it
  $("player-wrap").hidden = true;
  $("downloads").hidden = true;
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
    live.model = msg.model;
    live.modelVersion = msg.model_version;
    setStatus("live-status", "Listening… speak now.");
    beginCapture(live).catch((e) => {
      setStatus("live-status", "Audio capture failed: " + e.message, true);
      stopLive();
    });
  } else if (msg.type === "event") {
    live.count += 1;
    live.events.push(msg);
    live.all.push(msg);  // the whole session, for its summary after Stop
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
    if (live.all.length) showSession(live, msg);
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
  $("file-input").addEventListener("change", (e) => {
    analyseFiles(e.target.files);
    e.target.value = "";  // the next choice starts afresh (and the same file can be chosen again)
  });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => analyseFiles(e.dataTransfer.files));
  $("live-start").addEventListener("click", startLive);
  $("live-stop").addEventListener("click", stopLive);
  for (const b of document.querySelectorAll("#downloads button[data-format], #session-downloads button[data-format]")) {
    b.addEventListener("click", () => download(b.dataset.format, b));
  }
  const player = $("player");
  for (const ev of ["timeupdate", "seeked"]) {
    player.addEventListener(ev, () => {
      if (state.live || !state.file || !state.file.result) return;
      followCursor();
      drawFileTimeline();
    });
  }
  $("zoom-in").addEventListener("click", () => zoom(0.5));
  $("zoom-out").addEventListener("click", () => zoom(2));
  $("zoom-reset").addEventListener("click", () => setView(0, Infinity));
  $("timeline-pan").addEventListener("input", (e) => panTo(e.target.value));
  // a zoomed timeline also pans by dragging it sideways
  const canvas = $("timeline");
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    if (state.live || !state.view || !state.fileTimeline) return;
    drag = { x: e.clientX, t0: state.view.t0, span: state.view.t1 - state.view.t0 };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) {  // hover: the segment under the pointer, in words
      const s = segmentAt(canvas, e.clientX);
      canvas.title = s ? segmentText(s) : "";
      return;
    }
    const pw = Math.max(1, canvas.clientWidth - 44);
    if (Math.abs(e.clientX - drag.x) > 3) drag.moved = true;
    setView(drag.t0 - ((e.clientX - drag.x) / pw) * drag.span, drag.span);
  });
  canvas.addEventListener("click", (e) => {  // a tap (not a drag): say what the segment is and play from it
    if (state.live || !state.fileTimeline || (drag && drag.moved)) return;
    const s = segmentAt(canvas, e.clientX);
    if (!s) return;
    $("timeline-detail").textContent = segmentText(s);
    const player = $("player");
    if (player.currentSrc) {
      player.currentTime = s.start_s;
      const played = player.play();
      if (played && played.catch) played.catch(() => {});
      drawFileTimeline();
    }
  });
  for (const ev of ["pointerup", "pointercancel"]) canvas.addEventListener(ev, () => { setTimeout(() => { drag = null; }, 0); });
  localStorage.removeItem("emovox.apiKey");  // older versions kept a key here; the cookie replaced it
  window.addEventListener("resize", () => (state.live ? drawLiveTimeline() : drawFileTimeline()));
  if (!navigator.mediaDevices || !window.WebSocket) {
    $("live-start").disabled = true;
    setStatus("live-status", "Live capture needs a browser with microphone access over http://localhost or https.", true);
  }
  loadModel();
}

window.emovox = {  // for scripts and the browser tests
  exportBlob, resultCsv, exportSession, zoom, setView,
  view: () => (state.fileTimeline ? viewOf(state.fileTimeline) : null),
  ticks: () => state.ticks.map((t) => ({ ...t })),
  files: () => (state.batch ? state.batch.entries.map((e) => ({ name: e.file.name, status: e.status,
    label: e.result ? e.result.label : null, error: e.error })) : []),
};  // for scripts and the browser tests
init();
