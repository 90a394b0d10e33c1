// The page at /: asks POST /predict?explain=all as the user types (debounced), then decides
// on the client, from the probabilities already received, which genres pass the threshold.
"use strict";

const DEBOUNCE_MS = 150;
const WORD = /[\p{L}\p{N}\p{M}_]+/gu; // runs of word characters, as the model's words

const $ = (id) => document.getElementById(id);
const title = $("title");
const overview = $("overview");
const language = $("language");  // optional metadata: sent only when filled in
const year = $("year");
const slider = $("threshold");
const sliderValue = $("threshold-value");
const reset = $("reset");
const status = $("status");
const list = $("genres");
const why = $("why");

let answer = null;      // the last /predict answer
let globalThreshold = null;  // null: the model's own per-genre thresholds
let timer = null;
let sequence = 0;
let inFlight = null;

function setStatus(text, isError) {
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function thresholdOf(genre) {
  return globalThreshold === null ? answer.thresholds[genre] : globalThreshold;
}

// Genres at or above their thresholds, most probable first (with the model's at_least_one).
function decide() {
  const ranked = Object.keys(answer.probabilities)
    .sort((a, b) => answer.probabilities[b] - answer.probabilities[a]);
  const chosen = new Set(ranked.filter((g) => answer.probabilities[g] >= thresholdOf(g)));
  if (chosen.size === 0 && answer.at_least_one && ranked.length) chosen.add(ranked[0]);
  return { ranked, chosen };
}

function percent(p) {
  return `${(100 * p).toFixed(p >= 0.995 || p < 0.095 ? 1 : 0)}%`;
}

function render() {
  list.replaceChildren();
  why.replaceChildren();
  if (!answer) return;
  const { ranked, chosen } = decide();
  for (const genre of ranked) {
    const p = answer.probabilities[genre];
    const item = document.createElement("li");
    item.className = chosen.has(genre) ? "genre predicted" : "genre";
    item.dataset.genre = genre;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = genre;
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-label", `${genre} probability`);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "1");
    track.setAttribute("aria-valuenow", String(p));
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.display = "block";
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.style.left = `${(100 * thresholdOf(genre)).toFixed(1)}%`;
    tick.title = `threshold ${thresholdOf(genre).toFixed(2)}`;
    track.append(fill, tick);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(p);
    const words = document.createElement("span");
    words.className = "words";
    if (chosen.has(genre)) {
      words.textContent = (answer.words[genre] || []).map((w) => w.word).join(", ");
    }
    item.append(name, track, value, words);
    list.append(item);
  }
  const n = chosen.size;
  setStatus(`${n} genre${n === 1 ? "" : "s"} at or above ${globalThreshold === null
    ? "the model's thresholds" : `${globalThreshold.toFixed(2)}`}.`
    + (answer.warning ? ` (${answer.warning})` : ""));
  highlight(chosen);
}

// The text with the words that pushed a predicted genre up marked (built as DOM nodes).
function highlight(chosen) {
  const byWord = new Map();
  for (const genre of chosen) {
    for (const { word } of answer.words[genre] || []) {
      byWord.set(word, [...(byWord.get(word) || []), genre]);
    }
  }
  const text = [title.value.trim(), overview.value.trim()].filter(Boolean).join(" — ");
  let last = 0;
  for (const match of text.matchAll(WORD)) {
    const genres = byWord.get(match[0].toLowerCase());
    if (!genres) continue;
    why.append(document.createTextNode(text.slice(last, match.index)));
    const mark = document.createElement("mark");
    mark.textContent = match[0];
    mark.title = genres.join(", ");
    why.append(mark);
    last = match.index + match[0].length;
  }
  why.append(document.createTextNode(text.slice(last)));
}

async function predict() {
  const body = { title: title.value, overview: overview.value };
  if (language.value.trim()) body.original_language = language.value.trim().toLowerCase();
  if (year.value.trim()) body.release_date = year.value.trim();
  if (!body.title.trim() && !body.overview.trim()) {
    answer = null;
    render();
    setStatus("Type a title or an overview.");
    return;
  }
  const mine = ++sequence;
  if (inFlight) inFlight.abort();
  inFlight = new AbortController();
  try {
    const response = await fetch("/predict?explain=all", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: inFlight.signal,
    });
    const data = await response.json();
    if (mine !== sequence) return;  // a newer request is on its way
    if (!response.ok) {
      setStatus(data.detail || `error ${response.status}`, true);
      return;
    }
    answer = data;
    render();
  } catch (error) {
    if (error.name !== "AbortError") setStatus(`cannot reach the service: ${error}`, true);
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(predict, DEBOUNCE_MS);
}

function showSlider() {
  sliderValue.textContent = globalThreshold === null
    ? "the model's own" : globalThreshold.toFixed(2);
  reset.disabled = globalThreshold === null;
}

title.addEventListener("input", schedule);
overview.addEventListener("input", schedule);
language.addEventListener("input", schedule);
year.addEventListener("input", schedule);
slider.addEventListener("input", () => {
  globalThreshold = Number(slider.value);
  showSlider();
  render();
});
reset.addEventListener("click", () => {
  globalThreshold = null;
  slider.value = slider.dataset.model || "0.5";
  showSlider();
  render();
});

// The slider starts at the model's thresholds (their median when they differ by genre).
fetch("/genres").then((r) => r.json()).then((data) => {
  const values = data.genres.map((g) => g.threshold).sort((a, b) => a - b);
  slider.dataset.model = String(values[Math.floor(values.length / 2)] ?? 0.5);
  if (globalThreshold === null) slider.value = slider.dataset.model;
}).catch(() => {});
fetch("/health").then((r) => r.json()).then((h) => {
  const parts = [h.model === "accurate" ? "accurate (SVM + sentence embeddings; words from "
    + "the SVM)" : "fast (TF-IDF + SVM)", `${h.genres} genres`];
  if (h.snapshot) parts.push(`data ${h.snapshot}`);
  if (h.test_micro_f1 != null) parts.push(`test micro-F1 ${h.test_micro_f1.toFixed(3)}`);
  $("model-info").textContent = `Model: ${parts.join(", ")}`;
}).catch(() => {});
showSlider();
if (title.value || overview.value) schedule();
