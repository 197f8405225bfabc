// The scenetalk page: every view calls the REST API of the same server (no build step, no CDN).
"use strict";

const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#f032e6",
                 "#9a6324", "#800000", "#000075", "#808000", "#46f0f0", "#bcf60c", "#fabebe",
                 "#e6beff", "#aaffc3", "#ffd8b1", "#808080", "#ffe119", "#000000"];
const $ = (id) => document.getElementById(id);
const state = { indexes: [], photo: null, name: "", indexPhoto: null, alignment: null, browseOffset: 0 };
const PAGE = 48;

function say(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `${response.status} ${response.statusText}`;
    throw new Error(detail);
  }
  return data;
}

function form(fields) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null) continue;
    if (v instanceof Blob) f.append(k, v, state.name || "photo"); else f.append(k, String(v));
  }
  return f;
}

function photoUrl(index, id, size = 512) {
  return `/v1/indexes/${encodeURIComponent(index)}/photos/${id.split("/").map(encodeURIComponent).join("/")}?size=${size}`;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// ---- views ----
function show(view) {
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${view}`;
  if (view === "browse" && !$("browse").children.length) browse(0);
}

// ---- a photo: captions, regions, alignment, best sentences ----
async function describePhoto(blob, name, indexPhoto = null) {
  state.photo = blob; state.name = name; state.indexPhoto = indexPhoto; state.alignment = null;
  show("photo");
  $("detail").hidden = false;
  const img = $("photo");
  img.src = URL.createObjectURL(blob);
  await img.decode().catch(() => {});
  $("photo-name").textContent = name;
  $("captions").replaceChildren(); $("regions").replaceChildren(); $("aligned").replaceChildren();
  drawBoxes([]);
  say("Describing…");
  try {
    const [captioned, regions] = await Promise.all([
      captionsOf(blob),
      api("/v1/regions", { method: "POST", body: form({ image: blob, top: 5 }) }),
    ]);
    renderCaptions(captioned.captions);
    renderRegions(regions.regions);
    // the alignment model reads English: prefill the sentence from an English caption only
    if (!$("sentence").value && captioned.captions.length && $("caption-lang").value === "en") {
      $("sentence").value = captioned.captions[0].text;
    }
    await sentencesFor(blob, indexPhoto);
    say("Done.");
  } catch (e) { say(e.message, true); }
}

function captionsOf(blob) {
  const lang = $("caption-lang").value;
  return api("/v1/caption", { method: "POST", body: form({ image: blob, beam_size: 7, n_best: 3, lang }) });
}

async function recaption() {
  if (!state.photo) return;
  say("Captioning…");
  try {
    renderCaptions((await captionsOf(state.photo)).captions);
    say("Done.");
  } catch (e) { say(e.message, true); }
}

function renderCaptions(captions) {
  const lang = $("caption-lang").value;
  $("captions").replaceChildren(...captions.map((c) =>
    el("li", { lang }, el("span", { text: c.text }), " ", el("span", { class: "score", text: `log p ${c.log_prob.toFixed(2)}` }))));
}

function renderRegions(regions) {
  const list = $("regions");
  list.replaceChildren(...regions.map((r, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const li = el("li", { tabindex: "0", style: `border-left-color:${colour}` },
      el("strong", { text: r.phrase }), " ",
      el("span", { class: "score", text: `${r.class} ${r.detector_score.toFixed(2)}` }));
    const hot = () => drawBoxes(regions.map((q, j) => ({ box: q.box, colour: COLOURS[j % COLOURS.length], hot: j === i, dim: j !== i })));
    li.addEventListener("mouseenter", hot); li.addEventListener("focus", hot);
    li.addEventListener("mouseleave", () => drawBoxes(allBoxes(regions)));
    li.addEventListener("blur", () => drawBoxes(allBoxes(regions)));
    return li;
  }));
  drawBoxes(allBoxes(regions));
}

const allBoxes = (regions) => regions.map((r, j) => ({ box: r.box, colour: COLOURS[j % COLOURS.length] }));

function drawBoxes(boxes) {
  const img = $("photo"), svg = $("boxes");
  svg.setAttribute("viewBox", `0 0 ${img.naturalWidth || 1} ${img.naturalHeight || 1}`);
  svg.replaceChildren(...boxes.map((b) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const [x0, y0, x1, y1] = b.box;
    r.setAttribute("x", x0); r.setAttribute("y", y0); r.setAttribute("width", x1 - x0); r.setAttribute("height", y1 - y0);
    r.setAttribute("stroke", b.colour);
    if (b.hot) r.classList.add("hot"); if (b.dim) r.classList.add("dim");
    return r;
  }));
}

async function sentencesFor(blob, indexPhoto) {
  const withSentences = state.indexes.filter((i) => i.sentences);
  const index = indexPhoto ? state.indexes.find((i) => i.name === indexPhoto.index) : withSentences[0];
  $("sentences-section").hidden = !(index && index.sentences);
  if (!index || !index.sentences) return;
  const fields = indexPhoto ? { photo: indexPhoto.id, index: index.name, k: 5 } : { image: blob, index: index.name, k: 5 };
  const described = await api("/v1/describe", { method: "POST", body: form(fields) });
  $("sentences").replaceChildren(...described.hits.map((h) => {
    const b = el("button", { type: "button", text: h.sentence, title: "align this sentence" });
    b.addEventListener("click", () => { $("sentence").value = h.sentence; align(); });
    return el("li", {}, b, " ", el("span", { class: "score", text: h.score.toFixed(2) }));
  }));
  if (indexPhoto && described.hits.length) { $("sentence").value = described.hits[0].sentence; await align(); }
}

async function align(event) {
  if (event) event.preventDefault();
  const sentence = $("sentence").value.trim();
  if (!state.photo || !sentence) { say("Choose a photo and type a sentence.", true); return; }
  say("Aligning…");
  try {
    state.alignment = await api("/v1/align", { method: "POST", body: form({ image: state.photo, sentence }) });
    renderAlignment();
    say("Done.");
  } catch (e) { say(e.message, true); }
}

function renderAlignment() {
  const a = state.alignment;
  if (!a) return;
  const mrf = document.querySelector("input[name=mode]:checked").value === "mrf";
  const regions = new Map(a.regions.map((r) => [r.region, r]));
  const colourOf = new Map();
  const spans = mrf
    ? a.segments.map((s) => ({ text: s.words, region: s.region, shown: s.shown, score: s.score }))
    : a.words.map((w) => ({ text: w.word, region: w.best_region, shown: w.shown, score: w.best_score }));
  for (const s of spans) if (s.shown && !colourOf.has(s.region)) colourOf.set(s.region, COLOURS[colourOf.size % COLOURS.length]);
  $("aligned").replaceChildren(...spans.map((s) => {
    const r = regions.get(s.region);
    const label = s.shown && r ? `${r.class} (region ${s.region}), score ${s.score.toFixed(2)}` : "not linked";
    const span = el("span", { class: s.shown ? "seg" : "seg none", tabindex: "0", title: label, "aria-label": `${s.text}: ${label}` },
      s.text);
    if (s.shown) {
      span.style.borderBottomColor = colourOf.get(s.region);
      const hot = () => drawBoxes([...colourOf].map(([k, c]) => ({ box: regions.get(k).box, colour: c, hot: k === s.region, dim: k !== s.region })));
      span.addEventListener("mouseenter", hot); span.addEventListener("focus", hot);
    }
    return span;
  }));
  drawBoxes([...colourOf].map(([k, c]) => ({ box: regions.get(k).box, colour: c })));
}

// ---- search and browse ----
function photoButton(index, id, label) {
  const b = el("button", { type: "button", "aria-label": `open ${id}` },
    el("img", { src: photoUrl(index, id, 256), alt: id, loading: "lazy" }), el("span", { class: "label", text: label }));
  b.addEventListener("click", () => openIndexPhoto(index, id));
  return el("li", {}, b);
}

async function openIndexPhoto(index, id) {
  try {
    const blob = await api(photoUrl(index, id, 1024));
    $("sentence").value = "";
    await describePhoto(blob, id, { index, id });
  } catch (e) { say(e.message, true); }
}

async function search(event) {
  event.preventDefault();
  const q = $("query").value.trim(), index = $("search-index").value;
  if (!q) { say("Type a sentence to search for.", true); return; }
  say("Searching…");
  try {
    const r = await api(`/v1/search?${new URLSearchParams({ q, index, k: 24 })}`);
    const notes = [];
    if (r.unknown_words.length) notes.push(`left out, unknown: ${r.unknown_words.join(", ")}`);
    for (const p of r.placed_words || []) notes.push(`“${p.word}” placed near ${p.near.join(", ")}`);
    $("search-note").textContent = notes.join("; ");
    $("hits").replaceChildren(...r.hits.map((h, i) => photoButton(index, h.name, `${i + 1}. ${h.score.toFixed(2)}  ${h.name}`)));
    say(`${r.hits.length} photos.`);
  } catch (e) { say(e.message, true); }
}

async function browse(delta) {
  const index = $("browse-index").value;
  if (!index) return;
  state.browseOffset = Math.max(0, state.browseOffset + delta);
  try {
    const page = await api(`/v1/indexes/${encodeURIComponent(index)}/photos?offset=${state.browseOffset}&limit=${PAGE}`);
    $("browse").replaceChildren(...page.photos.map((id) => photoButton(index, id, id)));
    $("page-note").textContent = `${page.offset + 1}–${page.offset + page.photos.length} of ${page.total}`;
    $("prev").disabled = page.offset === 0; $("next").disabled = page.offset + page.photos.length >= page.total;
  } catch (e) { say(e.message, true); }
}

// ---- start ----
async function waitUntilReady() {
  for (;;) {
    try {
      const r = await fetch("/readyz");
      if (r.ok) return;
      const data = await r.json();
      say(data.detail, data.detail.includes("could not"));
      if (data.detail.includes("could not")) return;
    } catch (e) { say("The server does not answer.", true); }
    await new Promise((ok) => setTimeout(ok, 1500));
  }
}

function takeFile(file) {
  if (file) { $("sentence").value = ""; describePhoto(file, file.name || "pasted photo"); }
}

async function start() {
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.view));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); takeFile(e.dataTransfer.files[0]); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
  $("file").addEventListener("change", (e) => takeFile(e.target.files[0]));
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData || {}).items || []].find((i) => i.type.startsWith("image/"));
    if (item) takeFile(item.getAsFile());
  });
  $("align-form").addEventListener("submit", align);
  for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", renderAlignment);
  $("caption-lang").addEventListener("change", recaption);
  $("search-form").addEventListener("submit", search);
  $("prev").addEventListener("click", () => browse(-PAGE));
  $("next").addEventListener("click", () => browse(PAGE));
  $("browse-index").addEventListener("change", () => { state.browseOffset = 0; browse(0); });
  await waitUntilReady();
  try { state.indexes = await api("/v1/indexes"); } catch (e) { say(e.message, true); return; }
  for (const select of [$("search-index"), $("browse-index")]) {
    select.replaceChildren(...state.indexes.map((i) => el("option", { value: i.name, text: `${i.name} (${i.photos} photos)` })));
  }
  if (!state.indexes.length) {
    for (const v of ["search", "browse"]) document.querySelector(`.tab[data-view=${v}]`).hidden = true;
  }
  say("Ready. Drop a photo" + (state.indexes.length ? ", or search the index." : "."));
}

start();
