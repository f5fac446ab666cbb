// The page: the library (a timeline by date taken, paged as you scroll), search with
// filters, a viewer, the clusters. Plain script, no build step. Everything the page shows
// is in the URL (?q, filters, ?open=KEY&t=S, ?view=clusters): reload, Back and a shared
// link give the same screen.
// When the server wants a token, a 401 shows the login form; POST /login sets an HttpOnly
// session cookie, which every request (images too) then carries. The token itself is never
// put in a URL or kept by the page.
"use strict";
localStorage.removeItem("media_assets_token");  // an older page kept it here: forget it
const $ = (s) => document.querySelector(s);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
};

// -- talking to the server: every failure becomes words ------------------------------------
class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}
let loggedIn = null;  // a promise while the login form is shown
function login() {
  if (!loggedIn) {
    loggedIn = new Promise((resolve, reject) => {
      const form = $("#login-form");
      $("#login-error").textContent = "";
      $("#login").onclose = () => {  // Esc, or closed after success
        if (loggedIn) { loggedIn = null; reject(new ApiError("Not logged in: this server wants its token.", 401)); }
      };
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        const r = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify({ token: $("#login-token").value }) });
        if (r.ok) {
          $("#login-token").value = "";
          loggedIn = null;
          $("#login").close();
          resolve();
        } else {
          const body = await r.json().catch(() => ({}));
          $("#login-error").textContent = words(body, r);
        }
      };
      $("#login").showModal();
      $("#login-token").focus();
    });
  }
  return loggedIn;
}
// The server's message in words: `detail` when it is text; the validation messages when a
// framework answered; never the raw body.
function words(body, r) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) return body.detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  return `${r.status} ${r.statusText || "error"}`;
}
async function api(url) {
  let r;
  const get = () => fetch(url, { credentials: "same-origin" });
  try {
    r = await get();
    if (r.status === 401) { await login(); r = await get(); }
    // A busy server (its model queue full) says when to come back: wait and ask again.
    for (let i = 0; i < 3 && r.status === 503 && r.headers.get("Retry-After"); i += 1) {
      const wait = Math.min(5, Number(r.headers.get("Retry-After")) || 1);
      await new Promise((done) => setTimeout(done, wait * 1000));
      r = await get();
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(`Cannot reach the server at ${location.host}. Is "media-assets serve" still running? (${e.message})`, 0);
  }
  const body = await r.json().catch(() => null);
  if (r.ok && body) return body;
  const what = words(body, r);
  if (r.status >= 500) throw new ApiError(`The server failed (${r.status}): ${what}`, r.status);
  if (r.status === 410) throw new ApiError(`Moved or deleted since cataloguing: ${what}`, r.status);
  if (r.status === 404) throw new ApiError(`Not found: ${what}`, r.status);
  throw new ApiError(`The server refused this (${r.status}): ${what}`, r.status);
}

// -- small formatting ----------------------------------------------------------------------
const clock = (s) => {
  if (s === null || s === undefined) return "";
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
};
const fileName = (p) => (p || "").split("/").pop();
function humanSize(n) {
  if (n === null || n === undefined) return "";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}
const longDate = (iso) => {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
};
const monthOf = (iso) => {
  const d = new Date(iso);
  return isNaN(d) ? "Undated" : d.toLocaleDateString(undefined, { year: "numeric", month: "long" });
};
const KIND_LABEL = { image: "Photos", video: "Videos", audio: "Audio", json: "JSON", text: "Notes", other: "Other", unknown: "Unknown" };
const KIND_ICON = { audio: "♪", json: "{ }", text: "¶", video: "▶", image: "▦", other: "?", unknown: "?" };

// -- URL state ----------------------------------------------------------------------------
const FILTERS = ["kind", "after", "before", "under", "cluster", "lang", "min_duration", "max_duration"];
const FILTER_LABEL = { kind: "Kind", after: "Taken from", before: "Taken before", under: "Folder", cluster: "Cluster",
                       lang: "Language", min_duration: "Min duration", max_duration: "Max duration" };
const params = () => new URLSearchParams(location.search);
function go(changes, { replace = false } = {}) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || String(v).trim() === "") p.delete(k); else p.set(k, v);
  }
  const url = location.pathname + (p.toString() ? "?" + p : "");
  if (replace) history.replaceState(history.state, "", url); else history.pushState({ app: true }, "", url);
  render();
}

// -- the current list (library tiles or search results), for prev/next -------------------
let list = [];  // [{key, at_s}]
let clusterNames = {};

function showProblem(message) {
  const p = $("#problem");
  p.textContent = message || "";
  p.hidden = !message;
}

// -- the library ----------------------------------------------------------------------------
let libraryState = { sig: null, cursor: null, loading: false, lastMonth: null, done: false };
function libraryQuery(extra = {}) {
  const p = params(), out = new URLSearchParams();
  for (const k of ["kind", "after", "before", "under", "cluster"]) if (p.get(k)) out.set(k, p.get(k));
  for (const [k, v] of Object.entries(extra)) if (v) out.set(k, v);
  return out;
}
function tile(item) {
  const label = `${item.name}, ${item.kind}, ${item.taken_from === "exif" ? "taken" : "file time"} ${longDate(item.taken)}` +
    (item.status !== "ok" ? `, ${item.status}` : "") + (item.on_disk ? "" : ", gone from disk");
  const icon = () => el("span", { class: "icon", "aria-hidden": "true" }, KIND_ICON[item.kind] || "?");
  const pic = item.thumbnail ? el("img", { src: item.thumbnail, alt: "", loading: "lazy" }) : icon();
  // A picture that cannot be made (the file changed or went since the last scan): the icon.
  if (item.thumbnail) pic.addEventListener("error", () => pic.replaceWith(icon()), { once: true });
  const badges = [];
  if (item.status !== "ok") badges.push(el("span", { class: "badge bad" }, item.status));
  if (!item.on_disk) badges.push(el("span", { class: "badge bad" }, "gone"));
  if (item.duration_s) badges.push(el("span", { class: "badge" }, clock(item.duration_s)));
  const a = el("a", { class: `tile kind-${item.kind}`, href: "?" + openParams(item.key), "data-key": item.key, "aria-label": label },
    pic, el("span", { class: "tname" }, item.name), ...badges);
  a.addEventListener("click", (ev) => { ev.preventDefault(); openItem(item.key, null); });
  return a;
}
function openParams(key, at) {
  const p = params();
  p.set("open", key);
  if (at !== null && at !== undefined) p.set("t", at); else p.delete("t");
  return p.toString();
}
async function loadFacets() {
  const f = await api("/library/facets?" + libraryQuery());
  const current = params().get("kind") || "";
  const kinds = Object.entries(f.kinds).sort((a, b) => b[1] - a[1]);
  const all = Object.values(f.kinds).reduce((a, b) => a + b, 0);
  // The library's counts; a search counts its own results, so there the kinds are names only.
  const count = (n) => params().get("q") ? "" : ` ${n}`;
  $("#kinds").replaceChildren(
    el("button", { type: "button", class: "kind", "aria-pressed": String(!current), onclick: () => go({ kind: null }) }, `All${count(all)}`),
    ...kinds.filter(([k]) => !params().get("q") || ["image", "video", "audio", "json", "text"].includes(k))
      .map(([k, n]) => el("button", { type: "button", class: "kind", "aria-pressed": String(current === k),
      onclick: () => go({ kind: current === k ? null : k }) }, `${KIND_LABEL[k] || k}${count(n)}`)));
  const under = params().get("under") || "";
  $("#f-under").replaceChildren(el("option", { value: "" }, "any folder"),
    ...f.folders.map((x) => el("option", { value: x.folder, selected: x.folder === under }, `${x.folder} (${x.count})`)));
  if (under && !f.folders.some((x) => x.folder === under)) $("#f-under").append(el("option", { value: under, selected: true }, under));
  const cluster = params().get("cluster") || "";
  clusterNames = Object.fromEntries(f.clusters.map((c) => [String(c.id), c.name || `#${c.id}`]));
  $("#f-cluster").replaceChildren(el("option", { value: "" }, "any cluster"),
    ...f.clusters.map((c) => el("option", { value: String(c.id), selected: String(c.id) === cluster }, `${c.name || "#" + c.id} (${c.size})`)));
  return f;
}
async function showLibrary() {
  const sig = libraryQuery().toString();
  if (libraryState.sig === sig && $("#timeline").childElementCount) return;  // already shown
  libraryState = { sig, cursor: null, loading: false, lastMonth: null, done: false };
  list = [];
  $("#timeline").replaceChildren();
  $("#empty").hidden = true;
  $("#status").textContent = "Loading the library…";
  try {
    const f = await loadFacets();
    const everything = Object.values(f.kinds).reduce((a, b) => a + b, 0);
    const filtered = FILTERS.some((k) => params().get(k));
    if (!everything && !filtered) {
      $("#empty").hidden = false;
      $("#status").textContent = "The catalogue is empty.";
      return;
    }
    $("#status").textContent = f.total === 1 ? "1 file" : `${f.total} files` + (filtered ? " match the filters" : "") + ", newest first";
    await morePage();
  } catch (e) {
    $("#status").textContent = "";
    showProblem(`Could not load the library. ${e.message}`);
  }
}
async function morePage() {
  const st = libraryState;
  if (st.loading || st.done) return;
  st.loading = true;
  $("#more").hidden = true;
  try {
    const per = Math.min(200, Math.max(1, +params().get("per_page") || 60));
    const page = await api("/library?" + libraryQuery({ cursor: st.cursor, limit: String(per) }));
    if (st !== libraryState) return;  // the filters changed meanwhile
    const box = $("#timeline");
    for (const item of page.items) {
      const month = monthOf(item.taken);
      if (month !== st.lastMonth) {
        st.lastMonth = month;
        box.append(el("h2", { class: "month" }, month), el("div", { class: "grid tiles" }));
      }
      box.lastElementChild.append(tile(item));
      list.push({ key: item.key, at_s: null });
    }
    updateSteps();
    st.cursor = page.next_cursor;
    st.done = !page.next_cursor;
    $("#more").hidden = st.done;
    if (!page.items.length && !box.childElementCount) $("#status").textContent = "No files match these filters.";
  } catch (e) {
    showProblem(`Could not load more of the library. ${e.message}`);
    $("#more").hidden = false;
  } finally {
    st.loading = false;
  }
  // A tall screen: keep filling until the sentinel is out of view.
  if (!st.done && st === libraryState && $("#sentinel").getBoundingClientRect().top < innerHeight + 400) morePage();
}
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && !$("#library-view").hidden) morePage();
}, { rootMargin: "400px" }).observe($("#sentinel"));
$("#more").addEventListener("click", morePage);

// -- search -------------------------------------------------------------------------------
let searchSig = null;
function resultCard(r) {
  const pic = r.frame || r.thumbnail;
  const visual = pic ? el("img", { src: pic, alt: "", loading: "lazy" })
                     : el("span", { class: "icon", "aria-hidden": "true" }, KIND_ICON[r.kind] || "?");
  const at = r.at_s !== null && r.at_s !== undefined ? ` at ${clock(r.at_s)}` : "";
  const link = el("a", { class: "open", href: "?" + openParams(r.key, r.at_s), "data-key": r.key },
    visual, el("span", { class: "name" }, r.name + at));
  link.addEventListener("click", (ev) => { ev.preventDefault(); openItem(r.key, r.at_s); });
  const moments = r.moments.length > 1 ? el("div", { class: "moments" }, r.moments.map((m) =>
    el("button", { type: "button", class: "chip", onclick: () => openItem(r.key, m.at_s),
                   "aria-label": `Open at ${clock(m.at_s) || "start"}: ${m.why[0] || ""}` }, clock(m.at_s) || "start"))) : null;
  const details = el("details", { class: "scores" }, el("summary", {}, "Details"),
    el("p", {}, `Score ${r.score.toFixed(3)} · matched by ${r.legs.replaceAll("+", ", ")}`),
    ...r.moments.map((m) => el("p", {}, `${clock(m.at_s) || "whole file"}: ${m.score.toFixed(3)} (${m.legs.replaceAll("+", ", ")})`)));
  const card = el("article", { class: `card kind-${r.kind}` }, link,
    el("ul", { class: "lines" }, r.why.map((w) => el("li", {}, w))), moments, details);
  card.addEventListener("click", (ev) => {
    if (!ev.target.closest("details, button, a")) openItem(r.key, r.at_s);
  });
  return card;
}
function similarTile(h) {
  const a = el("a", { class: "tile", href: "?" + openParams(h.key, h.at_s), "data-key": h.key,
                      "aria-label": `${fileName(h.path)}, looks similar` },
    el("img", { src: h.frame || h.thumbnail, alt: "", loading: "lazy" }), el("span", { class: "tname" }, fileName(h.path)));
  a.addEventListener("click", (ev) => { ev.preventDefault(); openItem(h.key, h.at_s); });
  return a;
}
async function showSearch() {
  const p = params();
  const q = p.get("q");
  const query = new URLSearchParams({ q, k: "48" });
  for (const k of FILTERS) if (p.get(k)) query.set(k, p.get(k));
  const sig = query.toString();
  if (sig === searchSig) return;
  searchSig = sig;
  $("#status").textContent = "Searching…";
  $("#results").replaceChildren();
  $("#similar-box").hidden = true;
  list = [];
  try {
    const res = await api("/search?" + query);
    if (sig !== searchSig) return;
    const n = res.count;
    $("#status").textContent = (n === 0 ? `No results for “${res.query}”` : n === 1 ? `1 result for “${res.query}”` : `${n} results for “${res.query}”`) +
      (res.notes.length ? ` (${res.notes.join("; ")})` : "");
    $("#results").replaceChildren(...res.results.map(resultCard));
    list = res.results.map((r) => ({ key: r.key, at_s: r.at_s }));
    updateSteps();
    if (res.visually_similar.length) {
      $("#similar").replaceChildren(...res.visually_similar.map(similarTile));
      $("#similar-box").hidden = false;
      list.push(...res.visually_similar.map((h) => ({ key: h.key, at_s: h.at_s })));
    }
  } catch (e) {
    searchSig = null;
    $("#status").textContent = "";
    showProblem(e.status === 422 ? `The search was refused: ${e.message.replace(/^The server refused this \(422\): /, "")}`
                                 : `Search failed. ${e.message}`);
  }
}
$("#search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("#q").value.trim();
  go({ q: q || null, open: null, t: null, view: null });
});

// -- filters: the form, the kind buttons, and chips for what is active --------------------
$("#filter-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const form = new FormData($("#filter-form"));
  const changes = {};
  for (const k of FILTERS) if (k !== "kind") changes[k] = form.get(k);
  go(changes);
});
function syncFilters() {
  const p = params();
  const form = $("#filter-form");
  for (const k of FILTERS) if (form.elements[k]) form.elements[k].value = p.get(k) || "";
  const active = FILTERS.filter((k) => p.get(k));
  $("#chips").replaceChildren(...active.map((k) => {
    let v = p.get(k);
    if (k === "cluster") v = clusterNames[v] || `#${v}`;
    if (k === "kind") v = KIND_LABEL[v] || v;
    return el("button", { type: "button", class: "chip on", "aria-label": `Remove filter ${FILTER_LABEL[k]}: ${v}`,
                          onclick: () => go({ [k]: null }) }, `${FILTER_LABEL[k]}: ${v} ✕`);
  }));
  if (active.length > 1) $("#chips").append(el("button", { type: "button", class: "chip", onclick: () => go(Object.fromEntries(FILTERS.map((k) => [k, null]))) }, "Clear all"));
}

// -- the viewer ---------------------------------------------------------------------------
let shown = null;  // the key in the dialog
function facts(rows) {
  return el("dl", { class: "facts" }, rows.filter(([, v]) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v instanceof Node ? v : String(v))]));
}
function seekTo(media, s) {
  if (!media) return;
  media.currentTime = s;
  media.play().catch(() => {});
}
function transcriptBox(f, media) {
  // With speakers known, the lines are their turns (a Whisper segment can hold several).
  const turns = f.speakers && f.speakers.turns && f.speakers.turns.length ? f.speakers.turns : null;
  const lines = (turns || f.transcript.segments).map((s) => el("li", {},
    el("button", { type: "button", class: "line", "data-start": s.start, "data-end": s.end,
                   onclick: () => seekTo(media, s.start) }, el("span", { class: "at" }, clock(s.start)), " ",
      turns ? el("strong", { class: "who", title: s.speaker }, `${s.name || s.speaker}: `) : null, s.text)));
  const box = el("ol", { class: "transcript", "aria-label": "Transcript; a line plays from there" }, lines);
  if (media) {
    media.addEventListener("timeupdate", () => {
      const t = media.currentTime;
      for (const b of box.querySelectorAll(".line")) {
        const on = t >= +b.dataset.start && t < +b.dataset.end;
        if (on && !b.hasAttribute("aria-current")) {
          b.setAttribute("aria-current", "true");
          const top = b.offsetTop - box.offsetTop;
          if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - b.offsetHeight) box.scrollTop = top - 8;
        } else if (!on) b.removeAttribute("aria-current");
      }
    });
  }
  const who = turns ? `, ${f.speakers.speaker_count} speakers` : "";
  return [el("h3", {}, `Transcript (${f.transcript.language || "language unknown"}${who})`), box];
}
function pictureTextBox(p) {
  const read = p.texts.map((t) => (t.frame_ms === null ? "" : `[${clock(t.frame_ms / 1000)}] `) + t.text).join("\n\n");
  return [el("h3", {}, p.is_document ? "Text (a document or screenshot)" : "Written in the picture"),
    el("pre", { class: "note" }, read)];
}
function imageViewer(f) {
  const img = el("img", { src: f.content, alt: f.analysis && f.analysis.caption ? f.analysis.caption : fileName(f.path), class: "full" });
  const frame = el("div", { class: "zoom", tabindex: "0", "aria-label": "Picture; click or press + to zoom" }, img);
  const toggle = () => {
    frame.classList.toggle("zoomed");
    zoomBtn.textContent = frame.classList.contains("zoomed") ? "Fit" : "Zoom";
    zoomBtn.setAttribute("aria-pressed", String(frame.classList.contains("zoomed")));
  };
  const zoomBtn = el("button", { type: "button", class: "tool", "aria-pressed": "false", onclick: toggle }, "Zoom");
  img.addEventListener("click", toggle);
  frame.addEventListener("keydown", (ev) => { if (ev.key === "+" || ev.key === "-") { ev.preventDefault(); toggle(); } });
  img.addEventListener("error", () => frame.replaceWith(el("p", { class: "warn" }, "The picture could not be shown (the file may have changed on disk).")));
  return [frame, el("div", { class: "tools" }, zoomBtn, el("a", { class: "tool", href: f.content, target: "_blank", rel: "noopener" }, "Open original"))];
}
async function showDetail(key, at) {
  const dialog = $("#detail");
  shown = key;
  $("#detail-title").textContent = "Loading…";
  $("#detail-body").replaceChildren(el("p", { role: "status" }, "Loading…"));
  updateSteps();
  if (!dialog.open) dialog.showModal();
  let f;
  try {
    f = await api("/files/" + key);
  } catch (e) {
    if (shown !== key) return;
    $("#detail-title").textContent = "Could not open this file";
    $("#detail-body").replaceChildren(el("p", { class: "warn", role: "alert" }, e.message));
    return;
  }
  if (shown !== key) return;
  $("#detail-title").textContent = fileName(f.path);
  const body = [];
  if (f.gone) {
    body.push(el("p", { class: "warn", role: "alert" }, `Moved or deleted since cataloguing. Last seen at ${f.gone.last_path}. `,
      el("small", {}, f.gone.why || "")));
  }
  if (f.status !== "ok") {
    body.push(el("p", { class: "warn", role: "alert" }, `This file could not be catalogued (${f.status}): ${f.error || "no reason recorded"}`));
  }
  let media = null;
  if (f.content && f.kind === "image") body.push(...imageViewer(f));
  if (f.content && (f.kind === "video" || f.kind === "audio")) {
    media = el(f.kind, { src: f.content, controls: true, preload: "metadata", class: "player" });
    if (at) media.addEventListener("loadedmetadata", () => { media.currentTime = at; }, { once: true });
    body.push(media);
  }
  if (f.frames && f.frames.length) {
    body.push(el("h3", {}, "Moments"), el("div", { class: "moments" }, f.frames.map((fr) =>
      el("button", { type: "button", class: "chip moment", title: fr.caption || "", onclick: () => seekTo(media, fr.frame_ms / 1000),
                     "aria-label": `Play from ${clock(fr.frame_ms / 1000)}` + (fr.caption ? `: ${fr.caption.slice(0, 80)}` : "") },
        f.on_disk ? el("img", { src: `/files/${key}/frame?t=${fr.frame_ms / 1000}`, alt: "", loading: "lazy" }) : null,
        clock(fr.frame_ms / 1000)))));
  }
  if (media && f.frames && f.frames.length) {
    // The moment playing is marked, as the transcript's line is.
    media.addEventListener("timeupdate", () => {
      const chips = [...$("#detail-body").querySelectorAll(".chip.moment")];
      const t = media.currentTime * 1000;
      let on = -1;
      f.frames.forEach((fr, i) => { if (fr.frame_ms <= t + 1) on = i; });
      chips.forEach((c, i) => c.classList.toggle("on", i === on));
    });
  }
  if (f.transcript && f.transcript.segments && f.transcript.segments.length) body.push(...transcriptBox(f, media));
  if (f.picture_text && f.picture_text.texts && f.picture_text.texts.length) body.push(...pictureTextBox(f.picture_text));
  if (f.text) {
    body.push(el("h3", {}, "Text"), el("pre", { class: "note" }, f.text.text + (f.text.truncated ? "\n…" : "")));
  }
  const d = f.details || {};
  const a = f.analysis || null;
  const colours = a && a.dominant_colors && a.dominant_colors.length ? el("span", { class: "swatches" }, a.dominant_colors.map((c) => {
    const hex = typeof c === "string" ? c : c.hex;
    const share = typeof c === "string" ? "" : ` ${Math.round(c.proportion * 100)}%`;
    return el("span", { class: "swatch-item" }, el("span", { class: "swatch", style: `background:${hex}`, "aria-hidden": "true" }), `${hex}${share}`);
  })) : null;
  const where = f.gps ? el("span", {}, `${f.gps.lat.toFixed(5)}, ${f.gps.lon.toFixed(5)} `,
    el("a", { href: f.map_url, target: "_blank", rel: "noopener" }, "Show on a map")) : null;
  const clusters = f.clusters && f.clusters.length ? el("span", {}, f.clusters.map((c) =>
    el("a", { href: "?cluster=" + c.id, class: "inline", onclick: (ev) => { ev.preventDefault(); $("#detail").close(); go({ cluster: c.id, q: null, open: null, t: null }); } },
      c.name || `cluster ${c.id}`))) : null;
  const dims = d.width && d.height ? `${d.width} × ${d.height}` : null;
  if (f.json_design) {
    const j = f.json_design;
    body.push(el("h3", {}, `Table design: json_data.${j.table_name} (${j.storage_type})`), el("p", {}, j.reasoning),
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["field", "type", "stored as", "description"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, j.columns.map((c) => el("tr", {}, el("td", {}, c.name), el("td", {}, c.type + (c.nullable ? ", optional" : "")),
          el("td", {}, c.column ? "column" : "jsonb"), el("td", {}, c.description || "")))))));
    if (f.json_rows && f.json_rows.rows.length) {
      const r = f.json_rows;
      body.push(el("h3", {}, `First ${r.rows.length} of ${r.row_count} rows`),
        el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, r.columns.map((c) => el("th", { scope: "col" }, c)))),
          el("tbody", {}, r.rows.map((row) => el("tr", {}, row.map((v) => el("td", {}, v === null ? "—" : String(v)))))))));
    }
  }
  body.push(facts([
    ["Taken", f.taken ? longDate(f.taken) : null], ["Camera", f.camera], ["Lens", f.lens],
    ["Where", where], ["Caption", a && a.caption ? a.caption + (a.degraded ? " (CLIP only)" : "") : null],
    ["Objects", a && a.objects ? a.objects.map((o) => `${o.name} ${(o.confidence * 100).toFixed(0)}%`).join(", ") : null],
    ["Scene", a && a.scene_type], ["Colours", colours], ["Clusters", clusters],
    ["Duration", d.duration_s ? clock(d.duration_s) : null], ["Size", humanSize(f.size_bytes) + (dims ? ` · ${dims}` : "")],
    ["Kind", `${f.kind}${f.mime_type ? " (" + f.mime_type + ")" : ""}`], ["Path", f.path],
  ]));
  $("#detail-body").replaceChildren(...body);
}
function updateSteps() {
  const i = list.findIndex((x) => x.key === shown);
  $("#prev").disabled = i <= 0;
  $("#next").disabled = i < 0 || i >= list.length - 1;
}
function openItem(key, at) {
  if (!key) return;
  history.pushState({ app: true, opened: true }, "", "?" + openParams(key, at));
  showDetail(key, at);
}
function step(delta) {
  const i = list.findIndex((x) => x.key === shown);
  const next = list[i + delta];
  if (i < 0 || !next) return;
  pauseAll();
  history.replaceState(history.state, "", "?" + openParams(next.key, next.at_s));
  showDetail(next.key, next.at_s);
}
function pauseAll() { for (const m of $("#detail").querySelectorAll("audio, video")) m.pause(); }
$("#prev").addEventListener("click", () => step(-1));
$("#next").addEventListener("click", () => step(1));
$("#close").addEventListener("click", () => $("#detail").close());
$("#detail").addEventListener("close", () => {
  pauseAll();
  shown = null;
  if (params().get("open")) {
    if (history.state && history.state.opened) history.back();
    else { const p = params(); p.delete("open"); p.delete("t"); history.replaceState(null, "", location.pathname + (p.toString() ? "?" + p : "")); }
  }
});
// A click on the backdrop (the dialog element itself, outside its content box) closes it.
$("#detail").addEventListener("click", (ev) => {
  if (ev.target !== $("#detail")) return;
  const r = $("#detail").getBoundingClientRect();
  if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) $("#detail").close();
});
// Arrows step through the list while the viewer is open, wherever the focus is (a button
// just replaced by the next item's leaves it on the page), except in a field or a player.
document.addEventListener("keydown", (ev) => {
  if (!$("#detail").open || ev.target.closest("input, textarea, select, audio, video, .zoomed")) return;
  if (ev.key === "ArrowLeft") { ev.preventDefault(); step(-1); }
  if (ev.key === "ArrowRight") { ev.preventDefault(); step(1); }
});
// Swipe left or right on the viewer: next or previous.
(() => {
  let start = null;
  const d = $("#detail");
  d.addEventListener("touchstart", (ev) => { if (ev.touches.length === 1 && !ev.target.closest(".zoomed, .scroll, audio, video")) start = [ev.touches[0].clientX, ev.touches[0].clientY]; }, { passive: true });
  d.addEventListener("touchend", (ev) => {
    if (!start) return;
    const dx = ev.changedTouches[0].clientX - start[0], dy = ev.changedTouches[0].clientY - start[1];
    start = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) step(dx < 0 ? 1 : -1);
  });
})();

// -- clusters -------------------------------------------------------------------------------
async function showClusters() {
  $("#clusters-status").textContent = "Loading…";
  try {
    const view = await api("/clusters");
    $("#clusters-status").textContent = `${view.clusters.length} clusters, ${view.unsorted} files unsorted` +
      (view.clusters.length ? "" : ". Clusters are made at the end of “media-assets ingest” once there are enough photos that look alike.");
    list = [];
    $("#clusters").replaceChildren(...view.clusters.map((c) => el("section", { class: "cluster" },
      el("h2", {}, el("a", { href: "?cluster=" + c.id, onclick: (ev) => { ev.preventDefault(); go({ view: null, cluster: c.id }); } },
        `${c.name || "(not named yet)"}`), ` — ${c.size} files` + (c.degraded ? " (CLIP only)" : "")),
      el("p", {}, (c.hierarchy || []).join(" › ")),
      el("p", { class: "muted" }, (c.tags || []).join(", ")),
      el("div", { class: "row" }, c.representatives.map((r) => {
        const at = r.frame_ms >= 0 ? r.frame_ms / 1000 : null;
        list.push({ key: r.key, at_s: at });
        const a = el("a", { class: "tile", href: "?" + openParams(r.key, at), "data-key": r.key, "aria-label": fileName(r.path) },
          el("img", { src: r.thumbnail, alt: "", loading: "lazy" }));
        a.addEventListener("click", (ev) => { ev.preventDefault(); openItem(r.key, at); });
        return a;
      })))));
  } catch (e) {
    $("#clusters-status").textContent = "Could not load clusters. " + e.message;
  }
}

// -- keyboard: / focuses search, arrows move between tiles, Enter opens (links) --------------
document.addEventListener("keydown", (ev) => {
  if ($("#detail").open || $("#login").open) return;
  const typing = ev.target.closest("input, textarea, select");
  if (ev.key === "/" && !typing) { ev.preventDefault(); $("#q").focus(); $("#q").select(); return; }
  if (typing || !["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(ev.key)) return;
  const items = [...document.querySelectorAll("main section:not([hidden]) a.tile, main section:not([hidden]) .card a.open")]
    .filter((x) => x.offsetParent !== null);
  const i = items.indexOf(document.activeElement);
  if (i < 0) return;
  const here = items[i].getBoundingClientRect();
  let target = null;
  if (ev.key === "ArrowRight") target = items[i + 1];
  else if (ev.key === "ArrowLeft") target = items[i - 1];
  else {
    // The nearest tile in the row above or below, by its centre.
    const down = ev.key === "ArrowDown";
    const cands = items.filter((x) => { const r = x.getBoundingClientRect(); return down ? r.top > here.bottom - 2 : r.bottom < here.top + 2; });
    const rowTop = cands.length ? (down ? Math.min(...cands.map((x) => x.getBoundingClientRect().top)) : Math.max(...cands.map((x) => x.getBoundingClientRect().top))) : null;
    const row = cands.filter((x) => Math.abs(x.getBoundingClientRect().top - rowTop) < 4);
    const cx = here.left + here.width / 2;
    target = row.sort((a, b) => Math.abs(a.getBoundingClientRect().left + a.getBoundingClientRect().width / 2 - cx) - Math.abs(b.getBoundingClientRect().left + b.getBoundingClientRect().width / 2 - cx))[0];
  }
  if (target) { ev.preventDefault(); target.focus(); target.scrollIntoView({ block: "nearest" }); }
});

// -- one render from the URL ------------------------------------------------------------------
function render() {
  const p = params();
  showProblem("");
  const view = p.get("view") === "clusters" ? "clusters" : p.get("q") ? "search" : "library";
  $("#library-view").hidden = view !== "library";
  $("#search-view").hidden = view !== "search";
  $("#clusters-view").hidden = view !== "clusters";
  $("#filters").hidden = view === "clusters";
  $("#nav-library").classList.toggle("on", view !== "clusters");
  $("#nav-clusters").classList.toggle("on", view === "clusters");
  $("#nav-library").toggleAttribute("aria-current", view !== "clusters");
  $("#nav-clusters").toggleAttribute("aria-current", view === "clusters");
  if (document.activeElement !== $("#q")) $("#q").value = p.get("q") || "";
  syncFilters();
  if (view === "library") { searchSig = null; showLibrary().then(syncFilters); }
  else if (view === "search") { libraryState.sig = null; loadFacets().catch(() => {}).then(syncFilters); showSearch(); }
  else { searchSig = null; libraryState.sig = null; $("#status").textContent = ""; showClusters(); }
  const open = p.get("open");
  if (open && open !== shown) showDetail(open, p.get("t") ? +p.get("t") : null);
  else if (!open && $("#detail").open) $("#detail").close();
}
$("#nav-library").addEventListener("click", (ev) => { ev.preventDefault(); go(Object.fromEntries(["q", "view", "open", "t", ...FILTERS].map((k) => [k, null]))); });
$("#home").addEventListener("click", (ev) => { ev.preventDefault(); go(Object.fromEntries(["q", "view", "open", "t", ...FILTERS].map((k) => [k, null]))); });
$("#nav-clusters").addEventListener("click", (ev) => { ev.preventDefault(); go({ view: "clusters", q: null, open: null, t: null }); });
window.addEventListener("popstate", render);
render();
