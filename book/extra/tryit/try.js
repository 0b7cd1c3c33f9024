/* gpwave book, "Try it on your own audio": the detectors run in the reader's browser.
 *
 * The same rule as `gpwave detect` (gpwave/detect.py): decode, mix to mono, resample to
 * the model's rate, cut non-overlapping windows of the model's frame length (the
 * incomplete tail dropped), mark silent windows (RMS in dBFS below the floor, or more
 * than the relative margin below the loudest window), score the others with the ONNX
 * graph written by `gpwave export` (frames -> fake log-odds), probability =
 * sigmoid(a * log-odds + b) with the model's calibration (a, b) (sidecar; none: a = 1, b = 0),
 * file score = mean probability of the scored windows, fake if score >= threshold.
 * Nothing is sent anywhere: onnxruntime-web (WebAssembly) and the models are files of
 * the book. window.gpwaveTry holds the last result (the browser test reads it).
 */
(function () {
  "use strict";
  const root = document.getElementById("gpwave-try");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const base = new URL("..", document.currentScript.src).href;
  const MODELS = base + "models/";
  const BATCH = 16;
  const sessions = new Map();
  const state = { index: null, sidecars: new Map() };
  window.gpwaveTry = { ready: false, busy: false, result: null, error: null };

  function status(text, isError) {
    const el = $("gpwave-try-status");
    el.textContent = text;
    el.classList.toggle("gpwave-try-error", !!isError);
  }

  async function fetchJson(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  async function sidecar(name) {
    if (!state.sidecars.has(name)) state.sidecars.set(name, await fetchJson(MODELS + name + ".json"));
    return state.sidecars.get(name);
  }

  async function session(name) {
    if (!sessions.has(name)) {
      const meta = await sidecar(name);
      sessions.set(name, ort.InferenceSession.create(MODELS + meta.onnx, {
        executionProviders: ["wasm"], graphOptimizationLevel: "all",
      }));
    }
    return sessions.get(name);
  }

  // --- the detection rule -------------------------------------------------------------
  function mono(buffer) {
    const n = buffer.length, k = buffer.numberOfChannels;
    if (k === 1) return buffer.getChannelData(0).slice();
    const out = new Float32Array(n);
    for (let c = 0; c < k; c++) {
      const x = buffer.getChannelData(c);
      for (let i = 0; i < n; i++) out[i] += x[i];
    }
    for (let i = 0; i < n; i++) out[i] /= k;
    return out;
  }

  function windowLevels(x, length) {
    const count = Math.floor(x.length / length), dbfs = new Array(count);
    for (let w = 0; w < count; w++) {
      let s = 0;
      for (let i = w * length; i < (w + 1) * length; i++) s += x[i] * x[i];
      const rms = Math.sqrt(s / length);
      dbfs[w] = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
    }
    return dbfs;
  }

  function silentWindows(dbfs, meta) {
    const loudest = Math.max(...dbfs);
    return dbfs.map((d) => d < meta.silence_floor_dbfs || d < loudest - meta.silence_relative_db);
  }

  async function logOdds(sess, meta, x, which) {
    const L = meta.frame_length, out = new Map();
    for (let b = 0; b < which.length; b += BATCH) {
      const part = which.slice(b, b + BATCH), data = new Float32Array(part.length * L);
      part.forEach((w, j) => data.set(x.subarray(w * L, (w + 1) * L), j * L));
      const feeds = { [meta.input]: new ort.Tensor("float32", data, [part.length, L]) };
      const res = (await sess.run(feeds))[meta.output].data;
      part.forEach((w, j) => out.set(w, res[j]));
      status("Scoring… " + Math.min(b + BATCH, which.length) + " of " + which.length + " seconds");
    }
    return out;
  }

  // WAV files are read here exactly as libsndfile reads them (integer / 2**(bits - 1)):
  // Chromium's decoder scales 16-bit samples slightly differently, enough to move scores.
  function parseWav(bytes) {
    const v = new DataView(bytes), tag = (o) => String.fromCharCode(
      v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
    if (bytes.byteLength < 44 || tag(0) !== "RIFF" || tag(8) !== "WAVE") return null;
    let fmt = null, data = null;
    for (let o = 12; o + 8 <= bytes.byteLength; ) {
      const id = tag(o), size = v.getUint32(o + 4, true);
      if (id === "fmt ") {
        let format = v.getUint16(o + 8, true);
        if (format === 0xfffe && size >= 26) format = v.getUint16(o + 32, true);
        fmt = { format, channels: v.getUint16(o + 10, true), rate: v.getUint32(o + 12, true),
          bits: v.getUint16(o + 22, true) };
      } else if (id === "data") {
        data = { offset: o + 8, size: Math.min(size, bytes.byteLength - o - 8) };
        break;
      }
      o += 8 + size + (size % 2);
    }
    if (!fmt || !data || !fmt.channels) return null;
    const { format, channels: k, bits } = fmt, step = bits / 8;
    const read = format === 3 && bits === 32 ? (o) => v.getFloat32(o, true)
      : format === 3 && bits === 64 ? (o) => v.getFloat64(o, true)
      : format !== 1 ? null
      : bits === 16 ? (o) => v.getInt16(o, true) / 32768
      : bits === 24 ? (o) => ((v.getUint8(o + 2) << 24 | v.getUint8(o + 1) << 16 |
          v.getUint8(o) << 8) >> 8) / 8388608
      : bits === 32 ? (o) => v.getInt32(o, true) / 2147483648
      : bits === 8 ? (o) => (v.getUint8(o) - 128) / 128 : null;
    if (!read) return null;  // e.g. A-law, ADPCM: leave it to the browser's decoder
    const n = Math.floor(data.size / (step * k));
    const out = Array.from({ length: k }, () => new Float32Array(n));
    for (let i = 0, o = data.offset; i < n; i++) {
      for (let c = 0; c < k; c++, o += step) out[c][i] = read(o);
    }
    return { rate: fmt.rate, channels: out };
  }

  async function decode(file, rate) {
    const bytes = await file.arrayBuffer(), wav = parseWav(bytes);
    if (wav && wav.rate < rate) {
      throw new Error(`${file.name}: sample rate ${wav.rate} Hz is below ${rate} Hz; ` +
        "upsampling is refused (as gpwave detect does).");
    }
    if (wav && wav.rate === rate) {
      const x = mono({ length: wav.channels[0].length, numberOfChannels: wav.channels.length,
        getChannelData: (c) => wav.channels[c] });
      return { samples: x, rate: wav.rate, decoder: "wav" };
    }
    // Anything else: the browser decodes and resamples (its sinc resampler; an
    // AudioBufferSourceNode would interpolate linearly and alias) to the model's rate.
    const ctx = new OfflineAudioContext(1, 1, rate);
    try {
      const audio = await ctx.decodeAudioData(bytes);
      return { samples: mono(audio), rate: wav ? wav.rate : null, decoder: "browser" };
    } catch (err) {
      throw new Error(file.name + " could not be decoded as audio by this browser (" +
        (err && err.message ? err.message : err) + "). Try a WAV, FLAC, MP3 or OGG file.");
    }
  }

  async function analyse(file) {
    const t0 = performance.now(), name = $("gpwave-try-model").value;
    const meta = await sidecar(name), sess = await session(name);
    status("Decoding " + file.name + "…");
    const audio = await decode(file, meta.sample_rate);
    const x = audio.samples, L = meta.frame_length;
    window.gpwaveTry.samples = x;
    const seconds = L / meta.sample_rate;
    if (x.length < L) {
      throw new Error(file.name + " is shorter than one " + seconds + " s window: nothing to score.");
    }
    const dbfs = windowLevels(x, L), silent = silentWindows(dbfs, meta);
    const scored = dbfs.map((_, w) => w).filter((w) => !silent[w]);
    const lo = await logOdds(sess, meta, x, scored);
    const [a, b] = meta.calibration || [1, 0];
    const windows = dbfs.map((d, w) => ({
      start: w * seconds, dbfs: Number.isFinite(d) ? d : null, silent: silent[w],
      log_odds: lo.has(w) ? lo.get(w) : null,
      probability: lo.has(w) ? 1 / (1 + Math.exp(-(a * lo.get(w) + b))) : null,
    }));
    const probs = windows.filter((w) => w.probability !== null).map((w) => w.probability);
    const score = probs.length ? probs.reduce((a, b) => a + b, 0) / probs.length : null;
    const verdict = score === null ? "no verdict" : score >= meta.threshold ? "fake" : "real";
    return { file: file.name, model: name, sample_rate: meta.sample_rate, threshold: meta.threshold,
      windows, score, verdict, file_rate: audio.rate, decoder: audio.decoder, ms: performance.now() - t0 };
  }

  // --- showing the result -----------------------------------------------------------
  function plot(result) {
    const W = 640, H = 180, pad = 32, n = result.windows.length;
    const bw = (W - 2 * pad) / n, y = (p) => H - pad - p * (H - 2 * pad);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "fake probability of each second");
    const add = (tag, attrs, text) => {
      const el = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      if (text !== undefined) el.textContent = text;
      svg.appendChild(el);
      return el;
    };
    result.windows.forEach((w, i) => {
      const p = w.probability === null ? 1 : w.probability;
      const bar = add("rect", { x: pad + i * bw + 0.5, y: y(p), width: Math.max(bw - 1, 0.5),
        height: y(0) - y(p), class: w.silent ? "silent" : p >= result.threshold ? "fake" : "real" });
      const t = document.createElementNS(ns, "title");
      t.textContent = w.silent ? `${w.start.toFixed(0)} s: silent` :
        `${w.start.toFixed(0)} s: ${p.toFixed(3)}`;
      bar.appendChild(t);
    });
    add("line", { x1: pad, x2: W - pad, y1: y(result.threshold), y2: y(result.threshold),
      class: "threshold" });
    add("line", { x1: pad, x2: pad, y1: y(0), y2: y(1), class: "axis" });
    add("line", { x1: pad, x2: W - pad, y1: y(0), y2: y(0), class: "axis" });
    for (const p of [0, 0.5, 1]) add("text", { x: pad - 4, y: y(p) + 4, "text-anchor": "end" }, String(p));
    add("text", { x: W / 2, y: H - 6, "text-anchor": "middle" }, `seconds (0 to ${n})`);
    add("text", { x: pad, y: 12 }, "fake probability per second (grey: silent, not scored)");
    return svg;
  }

  function show(result) {
    const v = $("gpwave-try-verdict");
    const n = result.windows.length, k = result.windows.filter((w) => !w.silent).length;
    v.className = "gpwave-try-verdict " + result.verdict.replace(" ", "-");
    v.textContent = result.score === null
      ? `No verdict: all ${n} seconds of ${result.file} are silent.`
      : `${result.verdict.toUpperCase()}: mean fake probability ${result.score.toFixed(3)} ` +
        `(threshold ${result.threshold}) over ${k} of ${n} seconds of ${result.file}, ` +
        `detector ${result.model}.`;
    const box = $("gpwave-try-plot");
    box.replaceChildren(plot(result));
    const body = $("gpwave-try-table").querySelector("tbody");
    body.replaceChildren(...result.windows.map((w) => {
      const tr = document.createElement("tr");
      if (w.silent) tr.className = "silent";
      for (const text of [w.start.toFixed(0), w.dbfs === null ? "−∞" : w.dbfs.toFixed(1),
        w.silent ? "silent (not scored)" : w.probability.toFixed(4)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    }));
    $("gpwave-try-result").hidden = false;
    status(`Done in ${(result.ms / 1000).toFixed(2)} s, in this browser.`);
  }

  async function run(file) {
    if (!file) return;
    window.gpwaveTry.busy = true;
    window.gpwaveTry.result = null;
    window.gpwaveTry.error = null;
    $("gpwave-try-result").hidden = true;
    try {
      const result = await analyse(file);
      window.gpwaveTry.result = result;
      show(result);
    } catch (err) {
      window.gpwaveTry.error = String(err && err.message ? err.message : err);
      status(window.gpwaveTry.error, true);
    } finally {
      window.gpwaveTry.busy = false;
    }
  }

  // For checks (tests/test_try_page.py): log-odds of given frames, bypassing decoding.
  window.gpwaveTry.logOddsOf = async (name, flat) => {
    const meta = await sidecar(name), sess = await session(name);
    const x = Float32Array.from(flat), n = Math.floor(x.length / meta.frame_length);
    const lo = await logOdds(sess, meta, x, [...Array(n).keys()]);
    return [...Array(n).keys()].map((w) => lo.get(w));
  };

  // --- set-up -------------------------------------------------------------------------
  async function init() {
    if (typeof ort === "undefined") throw new Error("onnxruntime-web did not load");
    ort.env.wasm.wasmPaths = base + "vendor/onnxruntime-web/";
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    state.index = await fetchJson(MODELS + "index.json");
    const select = $("gpwave-try-model");
    for (const m of state.index.models) {
      const opt = document.createElement("option");
      opt.value = m.name;
      opt.textContent = m.name + (m.released ? " (released with the paper)" : " (gpwave's own)");
      select.appendChild(opt);
    }
    const info = () => {
      const m = state.index.models.find((x) => x.name === select.value);
      $("gpwave-try-model-info").textContent = m ? m.description : "";
    };
    select.addEventListener("change", info);
    info();
    $("gpwave-try-published").textContent = state.index.published_note || "";
    const input = $("gpwave-try-file");
    input.addEventListener("change", () => run(input.files[0]));
    const drop = $("gpwave-try-drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      run(e.dataTransfer.files[0]);
    });
    $("gpwave-try-loading").hidden = true;
    $("gpwave-try-form").hidden = false;
    window.gpwaveTry.ready = true;
  }

  init().catch((err) => {
    window.gpwaveTry.error = String(err && err.message ? err.message : err);
    $("gpwave-try-loading").textContent = "The detectors could not be loaded: " + window.gpwaveTry.error;
    $("gpwave-try-loading").classList.add("gpwave-try-error");
  });
})();
