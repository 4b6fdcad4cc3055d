// mixbridge listening test page (written by `mixbridge listen build`; hand-written, no framework, no network
// resource). It reads config.json, shuffles the trials and each trial's conditions with a seed derived from the
// listener id (FNV-1a + Mulberry32; mixbridge.app.listen_page.listener_orders is the same shuffle in Python),
// plays every stimulus of a trial in one Web Audio AudioContext from one shared start time (looped, each through
// its own gain), so switching only moves the gains and keeps the playback position; each switch is recorded
// with that position. Ratings are 0..100 (MUSHRA: one slider per condition, ITU-R BS.1534-3; APE: all
// conditions on one axis). At the end they are offered as JSON and CSV downloads and POSTed to ./submit when
// the page is served by `mixbridge listen serve`.
"use strict";
(function () {
  const RESULTS_FORMAT = "mixbridge-listen-results";
  const RESULTS_VERSION = 1;
  const START_DELAY_S = 0.05;   // all sources of a trial start this far ahead of currentTime, at one time
  const FADE_S = 0.005;         // gain ramp of a switch (linear), short enough to keep the position audible
  const LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const $ = (id) => document.getElementById(id);

  function fnv1a(text) {  // FNV-1a, 32 bit, over UTF-16 code units
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return h >>> 0;
  }
  function mulberry32(seed) {  // Tommy Ettinger's Mulberry32 (public domain): floats in [0, 1)
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1) >>> 0;
      t = (((t + Math.imul(t ^ (t >>> 7), t | 61)) >>> 0) ^ t) >>> 0;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function shuffle(values, rand) {  // Fisher-Yates from the end
    const out = values.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = out[i]; out[i] = out[j]; out[j] = t;
    }
    return out;
  }

  // One AudioContext for the session; a trial's buffers play in sync, switching moves gains only.
  class Player {
    constructor(ctx) {
      this.ctx = ctx;
      this.master = ctx.createGain();
      this.analyser = ctx.createAnalyser();
      this.analyser.fftSize = 2048;
      this.master.connect(this.analyser);
      this.analyser.connect(ctx.destination);
      this.buffers = {}; this.sources = {}; this.gains = {};
      this.active = null; this.playing = false; this.offset = 0; this.t0 = 0; this.startWhen = 0; this.duration = 0;
      this.switches = []; this.onswitch = null;
    }
    async load(urls) {  // {key: url}
      this.stop(false);
      const entries = await Promise.all(Object.entries(urls).map(async ([key, url]) => {
        const r = await fetch(url);
        if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
        return [key, await this.ctx.decodeAudioData(await r.arrayBuffer())];
      }));
      this.buffers = Object.fromEntries(entries);
      this.duration = Math.min(...entries.map(([, b]) => b.duration));
      this.offset = 0; this.active = null; this.switches = [];
    }
    position() {  // where in the excerpt the shared timeline is (s); before the scheduled start: the start offset
      if (!this.playing || this.ctx.currentTime < this.startWhen) return this.offset;
      const p = (this.ctx.currentTime - this.t0) % this.duration;
      return p < 0 ? p + this.duration : p;
    }
    record(from, to, kind) {
      const s = { from: from, to: to, kind: kind, position_s: this.position(), context_time_s: this.ctx.currentTime,
                  wall_ms: performance.now() };
      this.switches.push(s);
      if (this.onswitch) this.onswitch(s);
      return s;
    }
    startAll(key) {  // every source from this.offset, at one shared start time
      const when = this.ctx.currentTime + START_DELAY_S;
      this.startWhen = when;
      this.t0 = when - this.offset;
      for (const [k, buf] of Object.entries(this.buffers)) {
        const src = this.ctx.createBufferSource();
        src.buffer = buf; src.loop = true; src.loopStart = 0; src.loopEnd = this.duration;
        const g = this.ctx.createGain();
        g.gain.value = k === key ? 1 : 0;
        src.connect(g); g.connect(this.master);
        src.start(when, this.offset);
        this.sources[k] = src; this.gains[k] = g;
      }
      this.playing = true;
    }
    select(key) {
      if (!(key in this.buffers)) throw new Error(`no stimulus ${key}`);
      const from = this.active;
      if (!this.playing) {
        this.startAll(key); this.active = key;
        return this.record(from, key, "start");
      }
      if (key === from) return null;
      const now = this.ctx.currentTime;
      for (const [k, g] of [[from, 0], [key, 1]]) {
        const p = this.gains[k].gain;
        p.cancelScheduledValues(now); p.setValueAtTime(p.value, now); p.linearRampToValueAtTime(g, now + FADE_S);
      }
      this.active = key;
      return this.record(from, key, "switch");
    }
    stop(log = true) {
      if (this.playing) {
        this.offset = this.position();
        if (log) this.record(this.active, null, "stop");
        for (const s of Object.values(this.sources)) { try { s.stop(); } catch (e) { /* already stopped */ } s.disconnect(); }
        this.sources = {}; this.gains = {}; this.playing = false; this.active = null;
      }
    }
    level() {
      const buf = new Float32Array(this.analyser.fftSize);
      this.analyser.getFloatTimeDomainData(buf);
      let peak = 0;
      for (const v of buf) peak = Math.max(peak, Math.abs(v));
      return peak;
    }
    probe() {  // what is playing now: position, clock and the analyser's last frames (for a meter and for tests)
      const buf = new Float32Array(this.analyser.fftSize);
      this.analyser.getFloatTimeDomainData(buf);
      return { active: this.active, playing: this.playing, position_s: this.position(),
               context_time_s: this.ctx.currentTime, sample_rate: this.ctx.sampleRate, samples: Array.from(buf) };
    }
  }

  const state = { config: null, listener: null, seed: 0, order: [], conditionOrders: {}, index: -1, trials: [],
                  training: { played: [] }, startedAt: null, player: null, current: null, submitted: null };

  function showError(message) { const e = $("error"); e.textContent = message; e.hidden = false; }
  function show(section) {
    for (const id of ["welcome", "training", "trial", "done"]) $(id).hidden = id !== section;
  }
  function stimulusUrls(item, withReference) {
    const urls = {};
    for (const [name, s] of Object.entries(item.stimuli)) urls[name] = s.file;
    if (withReference && item.reference) urls.__reference__ = item.reference.file;
    return urls;
  }
  function tick() {
    const p = state.player;
    if (p) {
      const text = `${p.position().toFixed(1)} s`;
      $("position").textContent = text; $("training-position").textContent = text;
      $("level").value = p.playing ? p.level() : 0;
    }
    requestAnimationFrame(tick);
  }
  function markActive(container, key) {
    for (const b of container.querySelectorAll("button[data-key]")) {
      b.classList.toggle("active", b.dataset.key === key);
      if (b.dataset.key === key) b.classList.add("played");
    }
  }

  async function begin() {
    const listener = $("listener").value.trim();
    if (!listener) { showError("Type a listener id first."); return; }
    state.listener = listener;
    state.seed = fnv1a(`${state.config.seed}:${listener}`);
    const rand = mulberry32(state.seed);
    state.order = shuffle(state.config.items.map((i) => i.name), rand);
    const names = state.config.conditions.map((c) => c.name);
    for (const item of state.order) state.conditionOrders[item] = shuffle(names, rand);
    state.startedAt = new Date().toISOString();
    const ctx = new AudioContext({ sampleRate: state.config.sample_rate || undefined });
    await ctx.resume();
    state.player = new Player(ctx);
    requestAnimationFrame(tick);
    await training();
  }

  async function training() {
    show("training");
    const item = state.config.items.find((i) => i.name === state.config.training_item);
    const names = shuffle(Object.keys(item.stimuli), mulberry32(state.seed ^ 0x5bd1e995));
    await state.player.load(stimulusUrls(item, true));
    const box = $("training-buttons"); box.textContent = "";
    const keys = (item.reference ? ["__reference__"] : []).concat(names);
    keys.forEach((key, k) => {
      const b = document.createElement("button");
      b.type = "button"; b.dataset.key = key;
      b.textContent = key === "__reference__" ? "Reference" : `Sample ${k + (item.reference ? 0 : 1)}`;
      b.addEventListener("click", () => {
        state.player.select(key); markActive(box, key);
        if (!state.training.played.includes(key)) state.training.played.push(key);
        if (keys.every((x) => state.training.played.includes(x))) $("start-test").disabled = false;
      });
      box.appendChild(b);
    });
  }

  async function startTrial(index) {
    state.index = index;
    const item = state.config.items.find((i) => i.name === state.order[index]);
    const order = state.conditionOrders[item.name];
    const mushra = state.config.style === "mushra";
    show("trial");
    $("trial-title").textContent = `Trial ${index + 1} of ${state.order.length}`;
    $("trial-help").textContent = mushra
      ? "Rate each version against the reference (0 bad .. 100 excellent). One of them is the reference itself."
      : "Place every version on the axis (0 worst .. 100 best); click a label to hear it.";
    $("next").disabled = true;
    $("ratings").textContent = "";
    state.current = null;
    $("next").textContent = index + 1 < state.order.length ? "Next" : "Finish";
    await state.player.load(stimulusUrls(item, mushra));
    const trial = { item: item.name, index: index, condition_order: order, ratings: {}, played: [],
                    started_at: new Date().toISOString(), switches: [] };
    state.current = trial;
    // MUSHRA sliders start at 0; APE markers start spread over the axis in the shuffled order (no overlap) and
    // must each be moved before the trial can end
    order.forEach((name, k) => { trial.ratings[name] = mushra ? 0 : Math.round(100 * (k + 1) / (order.length + 1)); });
    trial.initial_ratings = Object.assign({}, trial.ratings);
    trial.moved = [];
    const box = $("ratings"); box.textContent = "";
    const refButton = $("play-reference");
    refButton.hidden = !mushra;
    refButton.dataset.key = "__reference__";
    const update = () => {
      $("next").disabled = !order.every((n) => trial.played.includes(n) && (mushra || trial.moved.includes(n)));
    };
    const play = (name, container) => {
      state.player.select(name); markActive(container, name);
      if (name !== "__reference__" && !trial.played.includes(name)) trial.played.push(name);
      update();
    };
    refButton.onclick = () => play("__reference__", document);
    if (mushra) {
      box.className = "mushra";
      const scale = document.createElement("div"); scale.className = "scale";
      for (const w of ["Excellent", "Good", "Fair", "Poor", "Bad"]) {
        const s = document.createElement("span"); s.textContent = w; scale.appendChild(s);
      }
      box.appendChild(scale);
      order.forEach((name, k) => {
        const col = document.createElement("div"); col.className = "column";
        const slider = document.createElement("input");
        slider.type = "range"; slider.min = 0; slider.max = 100; slider.step = 1; slider.value = trial.ratings[name];
        slider.dataset.position = k; slider.setAttribute("aria-label", `rating of ${LABELS[k]}`);
        const value = document.createElement("span"); value.className = "value"; value.textContent = slider.value;
        slider.addEventListener("input", () => {
          trial.ratings[name] = Number(slider.value); value.textContent = slider.value;
          if (!trial.moved.includes(name)) trial.moved.push(name);
        });
        const b = document.createElement("button"); b.type = "button"; b.dataset.key = name; b.textContent = LABELS[k];
        b.dataset.position = k;
        b.addEventListener("click", () => play(name, document));
        col.append(value, slider, b); box.appendChild(col);
      });
    } else {
      box.className = "ape";
      const axis = document.createElement("div"); axis.className = "axis"; box.appendChild(axis);
      order.forEach((name, k) => {
        const slider = document.createElement("input");
        slider.type = "range"; slider.min = 0; slider.max = 100; slider.step = 1; slider.value = trial.ratings[name];
        slider.dataset.position = k; slider.setAttribute("aria-label", `rating of ${k + 1}`);
        const label = document.createElement("button"); label.type = "button"; label.className = "marker-label";
        label.dataset.key = name; label.dataset.position = k; label.textContent = String(k + 1);
        const place = () => { label.style.left = `calc(${slider.value}% + ${(0.5 - slider.value / 100) * 1.1}rem)`; };
        slider.addEventListener("input", () => {
          trial.ratings[name] = Number(slider.value); place();
          if (!trial.moved.includes(name)) trial.moved.push(name);
          update();
        });
        slider.addEventListener("pointerdown", () => play(name, box));
        label.addEventListener("click", () => play(name, box));
        place(); box.append(slider, label);
      });
      const ends = document.createElement("div"); ends.className = "ends";
      ends.innerHTML = "<span>0 worst</span><span>100 best</span>"; box.appendChild(ends);
    }
  }

  function finishTrial() {
    const trial = state.current;
    state.player.stop();
    trial.switches = state.player.switches.map((s) => Object.assign({}, s, {
      from: s.from === "__reference__" ? "reference_open" : s.from,
      to: s.to === "__reference__" ? "reference_open" : s.to }));
    trial.duration_s = state.player.duration;
    trial.finished_at = new Date().toISOString();
    state.trials.push(trial);
    if (state.index + 1 < state.order.length) startTrial(state.index + 1).catch((e) => showError(String(e)));
    else done();
  }

  function results() {
    const c = state.config;
    return { format: RESULTS_FORMAT, version: RESULTS_VERSION, page_id: c.page_id, style: c.style,
             listener: state.listener, seed: state.seed, trial_order: state.order, started_at: state.startedAt,
             finished_at: new Date().toISOString(), user_agent: navigator.userAgent,
             training: { item: c.training_item, played: state.training.played }, trials: state.trials };
  }
  function csv(r) {
    const q = (v) => `"${String(v).replace(/"/g, '""')}"`;
    const rows = [["listener", "trial", "item", "condition", "position", "rating"].join(",")];
    for (const t of r.trials) {
      t.condition_order.forEach((name, k) => {
        rows.push([q(r.listener), t.index, q(t.item), q(name), k, t.ratings[name]].join(","));
      });
    }
    return rows.join("\n") + "\n";
  }
  function done() {
    show("done");
    const r = results();
    state.result = r;
    $("download-json").href = URL.createObjectURL(new Blob([JSON.stringify(r, null, 1)], { type: "application/json" }));
    $("download-csv").href = URL.createObjectURL(new Blob([csv(r)], { type: "text/csv" }));
    if (!location.protocol.startsWith("http")) {
      $("submit").disabled = true;
      $("submit-status").textContent = "Opened from a file: download your ratings and send them to the experimenter.";
    }
  }
  async function submit() {
    $("submit").disabled = true;
    try {
      const r = await fetch("submit", { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify(state.result) });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
      state.submitted = body;
      $("submit-status").textContent = `Saved (submission ${body.count}). Thank you.`;
    } catch (e) {
      $("submit").disabled = false;
      $("submit-status").textContent = `Not saved (${e.message}): download your ratings and send them to the experimenter.`;
    }
  }

  async function main() {
    const r = await fetch("config.json");
    if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
    state.config = await r.json();
    document.title = state.config.title; $("title").textContent = state.config.title;
    $("style-help").textContent = state.config.style === "mushra"
      ? "Each trial has an open reference and several versions; rate each version from 0 (bad) to 100 (excellent)."
      : "Each trial has several versions; place them all on one axis from 0 (worst) to 100 (best).";
    $("listener").value = new URLSearchParams(location.search).get("listener") || "";
    $("begin").disabled = false;
    $("begin").onclick = () => begin().catch((e) => showError(String(e)));
    $("training-stop").onclick = () => state.player.stop();
    $("stop").onclick = () => state.player.stop();
    $("start-test").onclick = () => { state.player.stop(false); startTrial(0).catch((e) => showError(String(e))); };
    $("next").onclick = finishTrial;
    $("submit").onclick = submit;
  }
  window.mixbridgeListen = { state: state, probe: () => state.player && state.player.probe(), fnv1a: fnv1a,
                             mulberry32: mulberry32, shuffle: shuffle };
  main().catch((e) => showError(`cannot start: ${e.message}; serve the page folder (mixbridge listen serve)`));
})();
