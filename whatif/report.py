"""The what-if's three outputs: a terminal table, a JSON document and a self-contained HTML report whose
map (inline SVG, no scripts, no network) draws the differences over the ICD geography: sectors, the
border line and the crossing points."""
from __future__ import annotations

import collections
import html
import json
from pathlib import Path

import attrs

from borderfuse.whatif.compare import Diff, IncidentView, Score

MARKS = {"lost": "#c62828", "gained": "#2e7d32", "changed": "#ef6c00"}


@attrs.frozen(slots=True)
class Side:
    rules_file: str
    incidents: list[IncidentView]
    stats: dict
    elapsed_s: float
    score: Score | None = None

    def to_json(self) -> dict:
        per = collections.Counter(f"{x.type}/{x.sector}" for x in self.incidents)
        return {"rules": self.rules_file, "incidents": len(self.incidents), "per_type_sector": dict(sorted(per.items())),
                "score": self.score.to_json() if self.score else None, "elapsed_s": round(self.elapsed_s, 1),
                "records": sum(self.stats.get("records", {}).values()),
                "dead_letters": sum(self.stats.get("dead_letters", {}).values())}


def rule_changes(rules_a, rules_b) -> list[dict]:
    """[{"key": "loitering.enabled", "a": true, "b": false}, ...] between two RuleSets."""
    a, b = attrs.asdict(rules_a), attrs.asdict(rules_b)
    out = []
    for section in a:
        for key in a[section]:
            va, vb = a[section][key], b[section][key]
            if va != vb:
                out.append({"key": f"{section}.{key}", "a": list(va) if isinstance(va, (tuple, list)) else va,
                            "b": list(vb) if isinstance(vb, (tuple, list)) else vb})
    return out


def _verdict(score: Score | None, view: IncidentView) -> str | None:
    return None if score is None else score.verdict.get(view.incident_id)


def to_json(diff: Diff, a: Side, b: Side, changes: list[dict], capture: str) -> dict:
    def item(view: IncidentView, score: Score | None) -> dict:
        doc = view.to_json()
        if score is not None:
            doc["verdict"] = _verdict(score, view)
        return doc

    changed = []
    for c in diff.changed:
        doc = c.to_json()
        if a.score is not None:
            doc["verdict"] = {"a": _verdict(a.score, c.a), "b": _verdict(b.score, c.b)}
        changed.append(doc)
    return {"capture": capture, "rule_changes": changes,
            "gained": [item(x, b.score) for x in diff.gained], "lost": [item(x, a.score) for x in diff.lost],
            "changed": changed, "unchanged": diff.unchanged, "a": a.to_json(), "b": b.to_json()}


def _rows(diff: Diff, a: Side, b: Side) -> list[tuple]:
    rows = []
    for x in diff.lost:
        rows.append(("lost", x, "", _verdict(a.score, x)))
    for x in diff.gained:
        rows.append(("gained", x, "", _verdict(b.score, x)))
    for c in diff.changed:
        detail = []
        for w in c.what:
            if w == "time":
                detail.append(f"time {c.dt_s:+.1f}s")
            elif w == "place":
                detail.append(f"moved {c.moved_m:.0f}m")
            elif w == "sector":
                detail.append(f"sector {c.a.sector}->{c.b.sector}")
            elif w == "class":
                detail.append(f"class {c.a.cls}->{c.b.cls}")
            elif w == "severity":
                detail.append(f"severity {c.a.severity}->{c.b.severity}")
            else:
                added = sorted(set(c.b.sources) - set(c.a.sources))
                removed = sorted(set(c.a.sources) - set(c.b.sources))
                detail.append("sources" + "".join(f" +{s}" for s in added) + "".join(f" -{s}" for s in removed))
        verdict = None
        if a.score is not None:
            verdict = f"{_verdict(a.score, c.a)} -> {_verdict(b.score, c.b)}"
        rows.append(("changed", c.b, ", ".join(detail), verdict))
    rows.sort(key=lambda r: (r[1].type, r[1].sector, r[1].t))
    return rows


def terminal(diff: Diff, a: Side, b: Side, changes: list[dict]) -> str:
    out = [f"A: {a.rules_file} ({len(a.incidents)} incidents)", f"B: {b.rules_file} ({len(b.incidents)} incidents)"]
    if changes:
        out.append("rule changes B vs A: " + ", ".join(f"{c['key']} {c['a']!r} -> {c['b']!r}" for c in changes))
    else:
        out.append("rule changes B vs A: none")
    out.append(f"lost {len(diff.lost)}, gained {len(diff.gained)}, changed {len(diff.changed)}, "
               f"unchanged {diff.unchanged}")
    counts: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for what, x, _, _ in _rows(diff, a, b):
        counts[(x.type, x.sector)][what] += 1
    if counts:
        out.append("")
        out.append(f"{'type':<16} {'sector':<6} {'lost':>5} {'gained':>6} {'changed':>7}")
        for (t, s), c in sorted(counts.items()):
            out.append(f"{t:<16} {s:<6} {c['lost']:>5} {c['gained']:>6} {c['changed']:>7}")
        out.append("")
        head = f"{'':<8} {'type':<16} {'sector':<6} {'incident':<30} {'time':<27} {'lat':>10} {'lon':>10} {'track':<10}"
        with_truth = a.score is not None
        out.append(head + (" verdict" if with_truth else "") + "  detail")
        for what, x, detail, verdict in _rows(diff, a, b):
            line = (f"{what:<8} {x.type:<16} {x.sector:<6} {x.incident_id:<30} {x.time:<27} {x.lat:>10.5f} "
                    f"{x.lon:>10.5f} {str(x.track_id):<10}")
            if with_truth:
                line += f" {verdict or '':<12}"
            out.append(line + ("  " + detail if detail else ""))
    if a.score is not None and b.score is not None:
        out.append("")
        out.append(f"score  A: F1={a.score.f1:.3f} P={a.score.precision:.3f} R={a.score.recall:.3f}   "
                   f"B: F1={b.score.f1:.3f} P={b.score.precision:.3f} R={b.score.recall:.3f}")
        for t in sorted(set(a.score.per_type) | set(b.score.per_type)):
            pa, pb = a.score.per_type.get(t, {}), b.score.per_type.get(t, {})
            out.append(f"  {t:<16} A tp={pa.get('tp', 0)} fn={pa.get('fn', 0)} fp={pa.get('fp', 0)} "
                       f"dup={pa.get('dup', 0)}   B tp={pb.get('tp', 0)} fn={pb.get('fn', 0)} fp={pb.get('fp', 0)} "
                       f"dup={pb.get('dup', 0)}")
    return "\n".join(out)


# --- HTML ---

def _geometry_lines(feature: dict) -> list[list[tuple[float, float]]]:
    g = feature["geometry"]
    if g["type"] == "LineString":
        return [g["coordinates"]]
    if g["type"] == "MultiLineString":
        return g["coordinates"]
    if g["type"] == "Polygon":
        return g["coordinates"][:1]
    if g["type"] == "MultiPolygon":
        return [p[0] for p in g["coordinates"]]
    return []


class _Map:
    """lon/lat -> SVG pixels, equirectangular at the area's mid latitude (the area is ~30 km across)."""

    def __init__(self, layers: dict[str, list[dict]], points: list[tuple[float, float]], width: int = 900):
        import math
        lons = [p[0] for feats in layers.values() for f in feats for line in _geometry_lines(f) for p in line]
        lats = [p[1] for feats in layers.values() for f in feats for line in _geometry_lines(f) for p in line]
        lons += [p[1] for p in points]
        lats += [p[0] for p in points]
        self.lon0, self.lon1 = (min(lons), max(lons)) if lons else (0.0, 1.0)
        self.lat0, self.lat1 = (min(lats), max(lats)) if lats else (0.0, 1.0)
        self.kx = math.cos(math.radians((self.lat0 + self.lat1) / 2))
        span_x = max((self.lon1 - self.lon0) * self.kx, 1e-9)
        span_y = max(self.lat1 - self.lat0, 1e-9)
        self.width = width
        self.scale = (width - 40) / span_x
        self.height = int(span_y * self.scale + 40)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (20 + (lon - self.lon0) * self.kx * self.scale, self.height - 20 - (lat - self.lat0) * self.scale)


def _load_layers(geo_dir: Path | str) -> dict[str, list[dict]]:
    layers = {}
    for name in ("sectors", "border", "crossings"):
        path = Path(geo_dir) / f"{name}.geojson"
        if path.is_file():
            layers[name] = json.loads(path.read_text(encoding="utf-8")).get("features", [])
    return layers


def _svg(diff: Diff, geo_dir: Path | str) -> str:
    layers = _load_layers(geo_dir)
    points = [(x.lat, x.lon) for x in diff.lost + diff.gained] + [(c.a.lat, c.a.lon) for c in diff.changed] + \
        [(c.b.lat, c.b.lon) for c in diff.changed]
    m = _Map(layers, points)
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{m.width}" height="{m.height}" '
             f'viewBox="0 0 {m.width} {m.height}" role="img" aria-label="map of the differences">',
             f'<rect width="{m.width}" height="{m.height}" fill="#f7f7f4"/>']
    style = {"sectors": 'fill="#e3ecf7" stroke="#7a99c2" stroke-width="1"',
             "crossings": 'fill="#d6d6d6" stroke="#555" stroke-width="1"',
             "border": 'fill="none" stroke="#222" stroke-width="2.5" stroke-dasharray="8 4"'}
    for name in ("sectors", "crossings", "border"):
        for f in layers.get(name, []):
            label = e(str(f.get("properties", {}).get("id", name)))
            for line in _geometry_lines(f):
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (m.xy(lon, lat) for lon, lat in line))
                tag = "polyline" if name == "border" else "polygon"
                parts.append(f'<{tag} points="{pts}" {style[name]}><title>{label}</title></{tag}>')
            if name == "sectors" and _geometry_lines(f):
                ring = _geometry_lines(f)[0]
                cx = sum(p[0] for p in ring) / len(ring)
                cy = sum(p[1] for p in ring) / len(ring)
                x, y = m.xy(cx, cy)
                parts.append(f'<text x="{x:.0f}" y="{y:.0f}" font-size="18" fill="#7a99c2" '
                             f'text-anchor="middle">{label}</text>')

    def tip(kind: str, v: IncidentView, extra: str = "") -> str:
        return e(f"{kind}: {v.type} {v.sector} {v.incident_id} {v.time} track {v.track_id}{extra}")

    for v in diff.lost:
        x, y = m.xy(v.lon, v.lat)
        parts.append(f'<g stroke="{MARKS["lost"]}" stroke-width="3"><title>{tip("lost", v)}</title>'
                     f'<line x1="{x - 6:.1f}" y1="{y - 6:.1f}" x2="{x + 6:.1f}" y2="{y + 6:.1f}"/>'
                     f'<line x1="{x - 6:.1f}" y1="{y + 6:.1f}" x2="{x + 6:.1f}" y2="{y - 6:.1f}"/></g>')
    for v in diff.gained:
        x, y = m.xy(v.lon, v.lat)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{MARKS["gained"]}" fill-opacity="0.8">'
                     f'<title>{tip("gained", v)}</title></circle>')
    for c in diff.changed:
        xa, ya = m.xy(c.a.lon, c.a.lat)
        xb, yb = m.xy(c.b.lon, c.b.lat)
        parts.append(f'<g stroke="{MARKS["changed"]}" fill="{MARKS["changed"]}"><title>'
                     f'{tip("changed", c.b, " (" + ", ".join(c.what) + ")")}</title>'
                     f'<line x1="{xa:.1f}" y1="{ya:.1f}" x2="{xb:.1f}" y2="{yb:.1f}" stroke-width="2"/>'
                     f'<rect x="{xb - 5:.1f}" y="{yb - 5:.1f}" width="10" height="10"/></g>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(diff: Diff, a: Side, b: Side, changes: list[dict], capture: str, geo_dir: Path | str) -> str:
    e = html.escape
    rows = []
    for what, x, detail, verdict in _rows(diff, a, b):
        rows.append(f'<tr class="{what}"><td style="color:{MARKS[what]}">{what}</td><td>{e(x.type)}</td>'
                    f'<td>{e(x.sector)}</td><td>{e(x.incident_id)}</td><td>{e(x.time)}</td><td>{x.lat:.5f}</td>'
                    f'<td>{x.lon:.5f}</td><td>{e(str(x.track_id))}</td><td>{e(verdict or "")}</td>'
                    f'<td>{e(detail)}</td></tr>')
    scores = ""
    if a.score is not None and b.score is not None:
        scores = (f"<p>Score against the truth: A F1 {a.score.f1:.3f} (P {a.score.precision:.3f}, R {a.score.recall:.3f}),"
                  f" B F1 {b.score.f1:.3f} (P {b.score.precision:.3f}, R {b.score.recall:.3f}).</p>")
    rule_list = "".join(f"<li><code>{e(c['key'])}</code>: {e(json.dumps(c['a']))} &rarr; {e(json.dumps(c['b']))}</li>"
                        for c in changes) or "<li>none</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>borderfuse diff</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
.legend span {{ margin-right: 1.5em; }}
</style></head><body>
<h1>Rule what-if</h1>
<p>Capture <code>{e(capture)}</code><br>A <code>{e(a.rules_file)}</code>: {len(a.incidents)} incidents<br>
B <code>{e(b.rules_file)}</code>: {len(b.incidents)} incidents</p>
<h2>Rule changes (B vs A)</h2><ul>{rule_list}</ul>
<p><b>{len(diff.lost)}</b> lost, <b>{len(diff.gained)}</b> gained, <b>{len(diff.changed)}</b> changed,
{diff.unchanged} unchanged.</p>
{scores}
<p class="legend"><span style="color:{MARKS['lost']}">&#10005; lost (A only)</span>
<span style="color:{MARKS['gained']}">&#9679; gained (B only)</span>
<span style="color:{MARKS['changed']}">&#9632; changed (line from A's place to B's)</span></p>
{_svg(diff, geo_dir)}
<h2>Differences</h2>
<table><tr><th></th><th>type</th><th>sector</th><th>incident</th><th>time</th><th>lat</th><th>lon</th><th>track</th>
<th>verdict</th><th>detail</th></tr>
{''.join(rows)}
</table>
</body></html>
"""
