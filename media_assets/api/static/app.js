// The page: search with filters, a grid of results, a detail view, the clusters.
// Plain script, no build step. When the server wants a token, a 401 shows the login form;
// POST /login sets an HttpOnly session cookie, which every request (images too) then
// carries. The token itself is never put in a URL or kept by the page.
"use strict";
localStorage.removeItem("media_assets_token");  // an older page kept it here: forget it
const $ = (s) => document.querySelector(s);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, v);
  for (const kid of kids) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
};
let loggedIn = null;  // a promise while the login form is shown
function login() {
  if (!loggedIn) {
    loggedIn = new Promise((resolve, reject) => {
      const form = $("#login-form");
      $("#login-error").textContent = "";
      $("#login").onclose = () => {  // Esc, or closed after success
        if (loggedIn) { loggedIn = null; reject(new Error("not logged in: the server wants its token")); }
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
          $("#login-error").textContent = body.detail || r.statusText;
        }
      };
      $("#login").showModal();
      $("#login-token").focus();
    });
  }
  return loggedIn;
}
async function api(url) {
  let r = await fetch(url, { credentials: "same-origin" });
  if (r.status === 401) {
    await login();
    r = await fetch(url, { credentials: "same-origin" });
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(typeof body.detail === "string" ? body.detail : (body.detail ? JSON.stringify(body.detail) : r.statusText));
  return body;
}
const clock = (s) => s === null || s === undefined ? "" : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
const fileName = (p) => (p || "").split("/").pop();

function card(hit) {
  const pic = hit.frame || hit.thumbnail;
  const visual = pic ? el("img", { src: pic, alt: fileName(hit.path), loading: "lazy" })
                     : el("div", { class: "noimg" }, { audio: "♪", json: "{ }", text: "¶" }[hit.kind] || "?");
  const meta = el("div", { class: "meta" },
    el("div", { class: "name" }, fileName(hit.path) + (hit.at_s !== null ? " @ " + clock(hit.at_s) : "")),
    el("div", { class: "why" }, `${hit.kind} · ${hit.source} · ${hit.score.toFixed(3)}`));
  if (hit.why && hit.why.speech) {
    meta.append(el("ul", { class: "lines" }, el("li", {}, `${clock(hit.why.speech.at_s)} “${hit.why.speech.text}”`)));
  } else if (hit.text) {
    meta.append(el("div", { class: "why" }, hit.text));
  }
  const c = el("div", { class: "card", "data-key": hit.key, tabindex: "0" }, visual, meta);
  c.addEventListener("click", () => openDetail(hit.key, hit.at_s));
  return c;
}

async function runSearch(ev) {
  if (ev) ev.preventDefault();
  const form = new FormData($("#search-form"));
  const params = new URLSearchParams();
  for (const [k, v] of form.entries()) if (String(v).trim() !== "") params.set(k, v);
  $("#status").textContent = "Searching…";
  $("#results").replaceChildren();
  try {
    const res = await api("/search?" + params);
    $("#status").textContent = `${res.hits.length} results for “${res.query}”` + (res.notes.length ? " — " + res.notes.join("; ") : "");
    $("#results").replaceChildren(...res.hits.map(card));
  } catch (e) {
    $("#status").textContent = "Search failed: " + e.message;
  }
}

function table(rows) {
  return el("table", {}, ...rows.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v instanceof Node ? v : String(v)))));
}

async function openDetail(key, at) {
  const f = await api("/files/" + key);
  const body = [el("h2", {}, fileName(f.path))];
  if (f.kind === "video") {
    const v = el("video", { src: `/files/${key}/content` + (at ? `#t=${at}` : ""), controls: "", preload: "metadata" });
    body.push(v);
  } else if (f.kind === "audio") {
    body.push(el("audio", { src: `/files/${key}/content` + (at ? `#t=${at}` : ""), controls: "" }));
  } else if (f.thumbnail) {
    body.push(el("img", { src: f.thumbnail, alt: fileName(f.path) }));
  }
  const d = f.details || {};
  const a = f.analysis;
  const colours = a && a.dominant_colors ? el("span", {}, ...a.dominant_colors.map((c) =>
    el("span", { class: "swatch", title: `${c.hex} ${Math.round(c.proportion * 100)}%`, style: `background:${c.hex}` }))) : null;
  const gps = d.exif && (d.exif.gps || d.exif.GPS) ? JSON.stringify(d.exif.gps || d.exif.GPS) : null;
  body.push(table([
    ["Path", f.path], ["Kind", `${f.kind} (${f.mime_type || "?"})`], ["Status", f.status + (f.error ? ": " + f.error : "")],
    ["Size", `${f.size_bytes} bytes`], ["Caption", a && a.caption + (a.degraded ? " (CLIP only)" : "")],
    ["Objects", a && a.objects && a.objects.map((o) => `${o.name} ${(o.confidence * 100).toFixed(0)}%`).join(", ")],
    ["Scene", a && a.scene_type], ["Colours", colours],
    ["Taken", d.taken_at || (d.exif && d.exif.DateTimeOriginal)], ["Map coordinates", gps],
    ["Duration", d.duration_s ? `${d.duration_s.toFixed(1)} s` : null],
    ["Clusters", f.clusters.map((c) => `${c.name || "#" + c.id} (${c.folder_path || "—"})`).join(", ")],
  ]));
  if (d.exif) body.push(el("details", {}, el("summary", {}, "EXIF"), el("pre", {}, JSON.stringify(d.exif, null, 1))));
  if (f.transcript) {
    body.push(el("h3", {}, `Transcript (${f.transcript.language || "?"})`),
      el("ul", { class: "lines" }, ...f.transcript.segments.map((s) => el("li", {}, `${clock(s.start)}–${clock(s.end)} ${s.text}`))));
  }
  if (f.frames && f.frames.length) {
    body.push(el("h3", {}, "Moments"), el("ul", { class: "lines" }, ...f.frames.map((fr) => el("li", {}, `${clock(fr.frame_ms / 1000)} ${fr.caption || ""}`))));
  }
  if (f.json_design) {
    const j = f.json_design;
    body.push(el("h3", {}, `Table json_data.${j.table_name} (${j.storage_type})`), el("p", {}, j.reasoning),
      el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "column"), el("th", {}, "description")),
        ...j.columns.map((c) => el("tr", {}, el("td", {}, c.name), el("td", {}, c.type), el("td", {}, c.column ? "yes" : "jsonb"), el("td", {}, c.description || "")))));
  }
  $("#detail-body").replaceChildren(...body);
  $("#detail").showModal();
}

async function showClusters() {
  $("#clusters-status").textContent = "Loading…";
  try {
    const view = await api("/clusters");
    $("#clusters-status").textContent = `${view.clusters.length} clusters, ${view.unsorted} files unsorted`;
    $("#clusters").replaceChildren(...view.clusters.map((c) => el("div", { class: "cluster" },
      el("h3", {}, `${c.name || "(not named yet)"} — ${c.size} files` + (c.degraded ? " (CLIP only)" : "")),
      el("div", {}, (c.hierarchy || []).join(" › ") + (c.confidence !== null ? ` · confidence ${c.confidence.toFixed(2)}` : "")),
      el("div", { class: "why" }, (c.tags || []).join(", ")),
      el("div", { class: "reps" }, ...c.representatives.map((r) => {
        const img = el("img", { src: r.thumbnail, alt: fileName(r.path), title: r.path });
        img.addEventListener("click", () => openDetail(r.key, r.frame_ms >= 0 ? r.frame_ms / 1000 : null));
        return img;
      })))));
  } catch (e) {
    $("#clusters-status").textContent = "Could not load clusters: " + e.message;
  }
}

function route() {
  const clusters = location.hash === "#clusters";
  $("#search-view").hidden = clusters;
  $("#clusters-view").hidden = !clusters;
  $("#nav-search").classList.toggle("on", !clusters);
  $("#nav-clusters").classList.toggle("on", clusters);
  if (clusters) showClusters();
}
$("#search-form").addEventListener("submit", runSearch);
$("#close").addEventListener("click", () => $("#detail").close());
window.addEventListener("hashchange", route);
route();
