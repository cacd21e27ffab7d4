// borderfuse console: map (ICD geography, vector layers), live tracks, incidents per sector, workflow.
// Everything comes from the console's own JSON API (/api/...) and its push stream (/api/events).
"use strict";

const TYPE_LETTER = { border_crossing: "B", drone_crossing: "D", hotlist_vehicle: "H", loitering: "L" };
// Track class -> MIL-STD-2525C symbol id (affiliation "unknown": these are not own forces).
const CLASS_SIDC = {
  person: "SUGPUCI--------",   // ground unit, dismounted
  vehicle: "SUGPEVC--------",  // ground equipment, civilian vehicle
  drone: "SUAPMFQ--------",    // air, drone (UAV)
  boat: "SUSP-----------",     // sea surface
  animal: "SUGP-----------",
  unknown: "SUGP-----------",
};
const TRACK_STALE_US = 30e6;
const LAG_KEEP = 50000;

// Figures for the browser tests and benchmarks/bench_console.py.
// lags: push -> drawn (ms) of track updates; clockLags: the same for the tiny clock events (the baseline)
const stats = window.__console = { ready: false, events: 0, lags: [], clockLags: [], alarms: 0, drawnTracks: 0,
                                   trackUpdates: 0, errors: [] };

const state = { incidents: new Map(), tracks: new Map(), clockUs: 0, sectors: [], filter: new Set(), layers: null };
let map, incidentLayer, trackLayer, trailLayer;
const incidentMarkers = new Map();
const trackMarkers = new Map();
const iconCache = new Map();
let listDirty = false;
// for tests: ids of the incident markers drawn on the map, and of the tracks drawn
stats.incidentMarkerIds = () => [...incidentMarkers].filter(([, m]) => incidentLayer.hasLayer(m) && m._icon).map(([id]) => id);
stats.trackIds = () => [...trackMarkers].filter(([, m]) => m.shown).map(([id]) => id);
let audioCtx = null;

function $(id) { return document.getElementById(id); }
function esc(s) { return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
function fmtAge(us) { if (us == null || !isFinite(us)) return "–"; const s = Math.max(0, us / 1e6); return s < 120 ? `${s.toFixed(0)} s` : `${(s / 60).toFixed(1)} min`; }
function hhmmss(us) { return new Date(us / 1000).toISOString().slice(11, 19) + "Z"; }
function toast(text) { const t = $("toast"); t.textContent = text; t.hidden = false; clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 5000); }
function withdrawn(inc) { return inc.status === "withdrawn" || inc.withdrawn === true; }
function visible(sector) { return state.filter.size === 0 || state.filter.has(sector); }

// ---------------------------------------------------------------- map
function drawGeography(geo) {
  map = L.map("map", { preferCanvas: true, zoomSnap: 0.25, attributionControl: false });
  const bounds = L.latLngBounds(geo.bounds);
  map.fitBounds(bounds, { padding: [10, 10] });
  const overlays = {};
  if (geo.basemap_url) L.tileLayer(geo.basemap_url, { maxZoom: 18 }).addTo(map);
  overlays["Sectors"] = L.geoJSON(geo.sectors, {
    style: { color: "#456", weight: 1.5, fillColor: "#cfd8e3", fillOpacity: 0.35 },
    onEachFeature: (f, layer) => layer.bindTooltip(f.properties.id, { permanent: true, direction: "center", className: "sector-label" }),
  }).addTo(map);
  overlays["Sensor coverage"] = L.geoJSON({ type: "FeatureCollection", features: geo.sensors.features.filter(f => f.properties.layer === "coverage") }, {
    style: f => ({ color: f.properties.side === "DE" ? "#3949ab" : "#c62828", weight: 0.8, opacity: 0.45, dashArray: "4 4", fill: false }),
  }).addTo(map);
  overlays["Border"] = L.geoJSON(geo.border, { style: { color: "#b71c1c", weight: 3.5 } }).addTo(map);
  overlays["Crossing points"] = L.geoJSON(geo.crossings, {
    style: { color: "#ef6c00", weight: 2, fillOpacity: 0.5 },
    onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.id} (${f.properties.kind || "crossing point"})`),
  }).addTo(map);
  overlays["Sensor sites"] = L.geoJSON({ type: "FeatureCollection", features: geo.sensors.features.filter(f => f.properties.layer === "site") }, {
    pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 4, color: "#000", weight: 1, fillColor: f.properties.side === "DE" ? "#3949ab" : "#c62828", fillOpacity: 1 }),
    onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.id} ${f.properties.kind}`),
  }).addTo(map);
  trailLayer = L.layerGroup().addTo(map);
  trackLayer = L.layerGroup().addTo(map);
  incidentLayer = L.layerGroup().addTo(map);
  overlays["Track trails"] = trailLayer;
  overlays["Tracks"] = trackLayer;
  overlays["Incidents"] = incidentLayer;
  L.control.layers(null, overlays, { collapsed: true }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
}

function sectorFilter(sectorIds) {
  state.sectors = sectorIds;
  const params = new URLSearchParams(location.search);
  const saved = params.get("sector") || localStorage.getItem("borderfuse.sectors") || "";
  saved.split(",").filter(s => sectorIds.includes(s)).forEach(s => state.filter.add(s));
  const box = $("sectors");
  for (const id of sectorIds) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" data-sector="${esc(id)}"${state.filter.has(id) ? " checked" : ""}> ${esc(id)}`;
    label.querySelector("input").addEventListener("change", ev => {
      if (ev.target.checked) state.filter.add(id); else state.filter.delete(id);
      localStorage.setItem("borderfuse.sectors", [...state.filter].join(","));
      refreshAllIncidents();
      renderList();
      for (const [tid, t] of state.tracks) placeTrack(tid, t);
    });
    box.appendChild(label);
  }
}

// ---------------------------------------------------------------- tracks
function trackIcon(cls) {
  const key = cls || "unknown";
  if (!iconCache.has(key)) {
    const sym = new ms.Symbol(CLASS_SIDC[key] || CLASS_SIDC.unknown, { size: 18 });
    const size = sym.getSize(), anchor = sym.getAnchor();
    iconCache.set(key, L.icon({ iconUrl: sym.asCanvas().toDataURL(), iconSize: [size.width, size.height], iconAnchor: [anchor.x, anchor.y] }));
  }
  return iconCache.get(key);
}

function placeTrack(id, t) {
  let m = trackMarkers.get(id);
  const show = visible(t.sector);
  if (!m) {
    m = { marker: L.marker([t.lat, t.lon], { icon: trackIcon(t.class), interactive: true, keyboard: false }),
          trail: L.polyline([], { color: "#37474f", weight: 1.5, opacity: 0.7, interactive: false }), cls: t.class, shown: false };
    m.marker.bindTooltip(() => { const c = state.tracks.get(id); return c ? `track ${esc(id)} · ${esc(c.class)} · ${esc((c.sources || []).join(", "))}` : id; });
    trackMarkers.set(id, m);
  }
  if (m.cls !== t.class) { m.marker.setIcon(trackIcon(t.class)); m.cls = t.class; }
  m.marker.setLatLng([t.lat, t.lon]);
  m.trail.setLatLngs(t.trail);
  if (show && !m.shown) { trackLayer.addLayer(m.marker); trailLayer.addLayer(m.trail); m.shown = true; }
  if (!show && m.shown) { trackLayer.removeLayer(m.marker); trailLayer.removeLayer(m.trail); m.shown = false; }
}

function dropTrack(id) {
  const m = trackMarkers.get(id);
  if (m) { trackLayer.removeLayer(m.marker); trailLayer.removeLayer(m.trail); trackMarkers.delete(id); }
  state.tracks.delete(id);
}

function applyTracks(list, gone) {
  for (const t of list) {
    const prev = state.tracks.get(t.track_id);
    const trail = t.trail || ((prev ? prev.trail : []).concat([[t.lat, t.lon]]).slice(-20));
    const cur = Object.assign({}, t, { trail });
    state.tracks.set(t.track_id, cur);
    placeTrack(t.track_id, cur);
  }
  for (const id of gone || []) dropTrack(id);
  stats.drawnTracks = state.tracks.size;
}

function pruneTracks() {
  // relative to the newest track, as the server does: a replayed or delayed feed keeps its tracks
  let newest = 0;
  for (const t of state.tracks.values()) newest = Math.max(newest, t.time_us);
  for (const [id, t] of state.tracks) if (t.time_us < newest - TRACK_STALE_US) dropTrack(id);
}

// ---------------------------------------------------------------- incidents
function incidentIcon(entry) {
  const inc = entry.incident;
  const cls = `inc-icon sev-${inc.severity || "medium"}${entry.status === "resolved" ? " resolved" : ""}`;
  return L.divIcon({ className: "", html: `<div class="${cls}">${TYPE_LETTER[inc.type] || "?"}</div>`, iconSize: [24, 24], iconAnchor: [12, 12] });
}

function popupHtml(entry) {
  const inc = entry.incident;
  return `<b>${esc(inc.type)}</b> · ${esc(inc.severity)} · sector ${esc(inc.sector)}<br>${esc(inc.summary)}<br>` +
    `class ${esc(inc.class || "–")} · sources ${esc((inc.sources || []).join(", "))}<br>` +
    `event ${esc(inc.time)} · age ${fmtAge(state.clockUs - inc.time_us)} · decided after ` +
    `${fmtAge(entry.decided_us != null ? entry.decided_us - inc.time_us : null)} · status <b>${esc(entry.status)}</b>`;
}

function placeIncident(entry) {
  const inc = entry.incident;
  let m = incidentMarkers.get(entry.incident_id);
  if (!m) {
    m = L.marker([inc.lat, inc.lon], { icon: incidentIcon(entry), zIndexOffset: 1000, title: entry.incident_id });
    m.bindPopup(() => popupHtml(state.incidents.get(entry.incident_id)));
    incidentMarkers.set(entry.incident_id, m);
  } else {
    m.setLatLng([inc.lat, inc.lon]);
    m.setIcon(incidentIcon(entry));
  }
  if (visible(inc.sector)) incidentLayer.addLayer(m); else incidentLayer.removeLayer(m);
}

function applyIncident(entry, live) {
  const known = state.incidents.get(entry.incident_id);
  if (known && (known.incident.seq || 1) > (entry.incident.seq || 1)) return;  // an older report: keep ours
  state.incidents.set(entry.incident_id, entry);
  placeIncident(entry);
  listDirty = true;
  if (live && !known && entry.incident.severity === "high") alarm();
}

function refreshAllIncidents() {
  for (const entry of state.incidents.values()) placeIncident(entry);
  listDirty = true;
}

function alarm() {
  stats.alarms += 1;
  if ($("mute").checked) return;
  try {
    audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
    const osc = audioCtx.createOscillator(), gain = audioCtx.createGain();
    osc.type = "square"; osc.frequency.value = 880; gain.gain.value = 0.08;
    osc.connect(gain); gain.connect(audioCtx.destination);
    osc.start(); osc.stop(audioCtx.currentTime + 0.35);
  } catch (err) { stats.errors.push(String(err)); }
}

function actionLine(a) {
  const what = a.action === "assign" ? `assigned to ${esc(a.unit)}` : a.action === "resolve" ? `resolved: ${esc(a.note)}` : "acknowledged";
  return `<div class="log">${hhmmss(a.at_us)} ${esc(a.by)}: ${what}</div>`;
}

function itemHtml(entry) {
  const inc = entry.incident;
  const age = state.clockUs ? state.clockUs - inc.time_us : null;
  const decided = entry.decided_us != null ? entry.decided_us - inc.time_us : null;
  const assigned = [...entry.actions].reverse().find(a => a.action === "assign");
  const status = entry.status === "assigned" && assigned ? `assigned: ${esc(assigned.unit)}` : esc(entry.status);
  const open = entry.status !== "resolved";
  return `<div><span class="sector-badge">${esc(inc.sector)}</span> <span class="what">${esc(inc.type)}</span> · ${esc(inc.severity)}` +
    `${inc.class ? " · " + esc(inc.class) : ""}${(inc.seq || 1) > 1 ? ` · update ${inc.seq}` : ""}${withdrawn(inc) ? " · withdrawn" : ""}` +
    ` · <span class="status ${esc(entry.status)}">${status}</span></div>` +
    `<div>${esc(inc.summary)}</div>` +
    `<div class="meta">${hhmmss(inc.time_us)} · age ${fmtAge(age)} · decided after ${fmtAge(decided)} · ${esc((inc.sources || []).join(", "))}</div>` +
    entry.actions.map(actionLine).join("") +
    (open ? `<div class="actions">` +
      (entry.status === "new" ? `<button data-act="ack">Acknowledge</button>` : "") +
      `<input data-field="unit" placeholder="unit / patrol"><button data-act="assign">Assign</button>` +
      `<input data-field="note" placeholder="note"><button data-act="resolve">Resolve</button></div>` : "");
}

function renderList() {
  listDirty = false;
  const ol = $("incidents");
  const entries = [...state.incidents.values()].filter(e => visible(e.incident.sector))
    .sort((a, b) => (b.incident.time_us - a.incident.time_us) || (a.incident_id < b.incident_id ? 1 : -1));
  const active = document.activeElement;
  const keepFocus = active && active.tagName === "INPUT" && active.closest("li.incident") ? [active.closest("li.incident").dataset.id, active.dataset.field, active.value] : null;
  const existing = new Map([...ol.children].map(li => [li.dataset.id, li]));
  const wanted = new Set(entries.map(e => e.incident_id));
  for (const [id, li] of existing) if (!wanted.has(id)) li.remove();
  let prev = null;
  for (const entry of entries) {
    let li = existing.get(entry.incident_id);
    const html = itemHtml(entry);
    if (!li) { li = document.createElement("li"); li.dataset.id = entry.incident_id; }
    const cls = `incident sev-${entry.incident.severity} ${entry.status}${withdrawn(entry.incident) ? " withdrawn" : ""}`;
    if (li.className !== cls) li.className = cls;
    li.dataset.sector = entry.incident.sector;
    li.dataset.status = entry.status;
    if (li._html !== html && !(keepFocus && keepFocus[0] === entry.incident_id)) { li.innerHTML = html; li._html = html; }
    const want = prev ? prev.nextSibling : ol.firstChild;
    if (want !== li) ol.insertBefore(li, want);
    prev = li;
  }
  $("count").textContent = `${entries.length} incident${entries.length === 1 ? "" : "s"}` +
    (state.filter.size ? ` in ${[...state.filter].sort().join(", ")}` : " (all sectors)");
}

function toLogin() { location.assign("/login"); }

async function act(id, action, body) {
  try {
    const resp = await fetch(`/api/incidents/${encodeURIComponent(id)}/${action}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (resp.status === 401) { toLogin(); return; }
    const doc = await resp.json();
    if (!resp.ok) { toast(doc.error || `HTTP ${resp.status}`); return; }
    applyIncident(doc.entry, false);
  } catch (err) { toast(`action failed: ${err}`); }
}

function onListClick(ev) {
  const li = ev.target.closest("li.incident");
  if (!li) return;
  const id = li.dataset.id;
  const button = ev.target.closest("button[data-act]");
  if (button) {
    const action = button.dataset.act;
    const body = {};  // who acts is the logged-in user (the server records it)
    if (action === "assign") body.unit = li.querySelector('input[data-field="unit"]').value;
    if (action === "resolve") body.note = li.querySelector('input[data-field="note"]').value;
    act(id, action, body);
    return;
  }
  if (ev.target.closest("input")) return;
  const entry = state.incidents.get(id);
  if (entry) { map.panTo([entry.incident.lat, entry.incident.lon]); const m = incidentMarkers.get(id); if (m) m.openPopup(); }
}

// ---------------------------------------------------------------- push stream
function measure(sentMs, into) {
  // push -> drawn: after this event's changes are applied, the next frame paints them
  requestAnimationFrame(() => {
    into.push(Date.now() - sentMs);
    if (into.length > LAG_KEEP) into.splice(0, into.length - LAG_KEEP);
  });
}

function onEvent(msg) {
  const ev = JSON.parse(msg.data);
  stats.events += 1;
  if (ev.kind === "snapshot") {
    for (const id of [...state.tracks.keys()]) dropTrack(id);
    state.incidents.clear();
    incidentLayer.clearLayers(); incidentMarkers.clear();
    state.clockUs = ev.clock_us;
    for (const entry of ev.incidents) applyIncident(entry, false);
    applyTracks(ev.tracks, []);
    stats.ready = true;
  } else if (ev.kind === "incident") {
    applyIncident(ev.entry, true);
  } else if (ev.kind === "tracks") {
    applyTracks(ev.tracks, ev.gone);
    stats.trackUpdates += ev.tracks.length;
  } else if (ev.kind === "clock") {
    state.clockUs = ev.clock_us;
    $("clock").textContent = state.clockUs ? new Date(state.clockUs / 1000).toISOString().slice(0, 19).replace("T", " ") + "Z" : "";
    pruneTracks();
    listDirty = true;
  }
  if (listDirty && ev.kind !== "tracks") renderList();
  if (ev.sent_ms && ev.kind !== "snapshot") measure(ev.sent_ms, ev.kind === "clock" ? stats.clockLags : stats.lags);
}

function connect() {
  const source = new EventSource("/api/events");
  source.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn ok"; };
  source.onerror = async () => {
    $("conn").textContent = "reconnecting…"; $("conn").className = "conn bad";
    // the stream also ends when the session does: then back to the login page
    try { if ((await fetch("/api/me")).status === 401) { source.close(); toLogin(); } } catch (err) { /* offline: EventSource retries */ }
  };
  source.onmessage = msg => { try { onEvent(msg); } catch (err) { stats.errors.push(String(err)); console.error(err); } };
}

async function main() {
  $("mute").checked = localStorage.getItem("borderfuse.mute") === "1";
  $("mute").addEventListener("change", e => localStorage.setItem("borderfuse.mute", e.target.checked ? "1" : "0"));
  $("incidents").addEventListener("click", onListClick);
  const resp = await fetch("/api/geography");
  if (resp.status === 401) { toLogin(); return; }
  const geo = await resp.json();
  state.layers = geo;
  $("mode").textContent = geo.mode;
  $("user").textContent = `${geo.user} (${geo.user_sectors.join(", ") || "no sector"})`;
  drawGeography(geo);
  sectorFilter(geo.user_sectors);  // the server sends only these sectors' incidents and tracks
  connect();
}

main().catch(err => { stats.errors.push(String(err)); toast(String(err)); });
