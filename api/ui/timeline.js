// quorumha web view: the SVG pictures. recordTimeline draws one failover,
// switchover or rejoin record on a time axis (the controllers' down votes,
// the decision commit, every step coloured by its outcome, the fence proof,
// the promotion and the repoint); masterStrip draws a cluster's masters over
// time, one band per tenure. Loaded before app.js; both functions return an
// element or null. Every value from the API is set as text (textContent) or
// as a number attribute, never as markup.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

// svg builds an SVG element; attrs are set as attributes (numbers rounded to
// a tenth of a pixel), children as in el(): nodes or strings (as text).
function svg(tag, attrs, ...children) {
  const n = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    n.setAttribute(k, typeof v === "number" ? String(Math.round(v * 10) / 10) : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    n.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

// tip is an SVG <title>: the browser's tooltip for its parent.
function tip(text) { return svg("title", null, text); }

function ms(t) {
  if (typeof t !== "string" || t === "" || t.startsWith("0001-")) return NaN;
  const v = Date.parse(t);
  return isNaN(v) ? NaN : v;
}

// fmtRel labels an offset from the timeline's origin: ms below a second,
// seconds above, minutes beyond.
function fmtRel(d) {
  const sign = d < 0 ? "−" : "";
  const a = Math.abs(d);
  if (a < 1000) return sign + Math.round(a) + " ms";
  if (a < 60000) return sign + String(Number((a / 1000).toFixed(a < 10000 ? 2 : 1))) + " s";
  return sign + Math.floor(a / 60000) + " min " + Math.round((a % 60000) / 1000) + " s";
}

// niceStep is the tick interval (1, 2 or 5 × 10^k ms) giving at most about
// n ticks over span.
function niceStep(span, n) {
  const raw = Math.max(span / n, 1);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

// outcomeClass maps a step outcome to its colour class.
function outcomeClass(o) {
  switch (o) {
    case "ok": return "ok";
    case "failed": return "failed";
    case "warning": return "warning";
    case "skipped": return "skipped";
    case "running": return "running";
    default: return "unknown";
  }
}

// The timeline's geometry, in SVG user units (the picture scales to the
// card's width).
const TL = { width: 1000, label: 190, right: 130, row: 22, top: 8, axis: 30 };

// timelineKinds are the record kinds drawn as a timeline: detection records
// have no steps.
const timelineKinds = new Set(["failover", "switchover", "rejoin"]);

// downVotes are the evidence's down votes, one per controller (the
// assessment keeps each controller's newest verdict), in time order.
function downVotes(ev) {
  const a = ev && typeof ev === "object" ? ev.assessment : null;
  if (!a || !Array.isArray(a.votes)) return [];
  return a.votes.filter((v) => v.state === "down" && !isNaN(ms(v.observed_at)))
    .sort((x, y) => ms(x.observed_at) - ms(y.observed_at));
}

// recordTimeline draws record r (null for kinds without steps). now is the
// end of a step still running.
function recordTimeline(r, now) {
  if (!timelineKinds.has(r.kind)) return null;
  const votes = downVotes(r.evidence);
  const steps = (r.steps || []).filter((s) => !isNaN(ms(s.start)));
  const opened = ms(r.opened);
  const fence = r.fence && !isNaN(ms(r.fence.at)) && r.fence.state !== "awaiting" ? r.fence : null;

  // Rows, top to bottom: votes, decision, steps, fence proof.
  const rows = [];
  for (const v of votes) {
    rows.push({ kind: "vote", label: v.controller + " votes down", at: ms(v.observed_at), v });
  }
  if (!isNaN(opened)) {
    rows.push({ kind: "decision", label: r.kind === "rejoin" ? "rejoin committed" : "decision committed", at: opened });
  }
  for (const s of steps) {
    const end = ms(s.end);
    rows.push({ kind: "step", label: s.name, start: ms(s.start), end: isNaN(end) ? now : end, running: isNaN(end), s });
  }
  if (fence) rows.push({ kind: "fence", label: "fence: " + (fence.proof || "none"), at: ms(fence.at), f: fence });
  if (rows.length === 0) return null;

  // The origin is the first down vote (the decision for a record without
  // votes); the axis spans every event.
  const origin = votes.length ? ms(votes[0].observed_at) : (!isNaN(opened) ? opened : rows[0].start);
  let lo = origin, hi = origin;
  for (const row of rows) {
    for (const t of [row.at, row.start, row.end]) {
      if (isFinite(t)) { lo = Math.min(lo, t); hi = Math.max(hi, t); }
    }
  }
  if (hi - lo < 10) hi = lo + 10;
  const plotW = TL.width - TL.label - TL.right;
  const x = (t) => TL.label + ((t - lo) / (hi - lo)) * plotW;
  const height = TL.top + rows.length * TL.row + TL.axis;

  const root = svg("svg", {
    class: "timeline", viewBox: "0 0 " + TL.width + " " + height, width: "100%",
    role: "img", "aria-label": r.kind + " #" + r.id + " timeline", "data-record": r.id,
    preserveAspectRatio: "xMinYMin meet",
  }, tip(r.kind + " #" + r.id + ": times relative to " + (votes.length ? "the first down vote" : "the decision")));

  // Alternate row bands under the grid, the grid and axis under the marks.
  rows.forEach((_, i) => {
    if (i % 2 === 0) root.appendChild(svg("rect", { class: "tl-band", x: 0, y: TL.top + i * TL.row, width: TL.width, height: TL.row }));
  });
  const axisY = TL.top + rows.length * TL.row + 4;
  const step = niceStep(hi - lo, 8);
  const axis = svg("g", { class: "tl-axis" });
  axis.appendChild(svg("line", { class: "tl-axis-line", x1: TL.label, x2: TL.label + plotW, y1: axisY, y2: axisY }));
  for (let d = Math.ceil((lo - origin) / step) * step; origin + d <= hi + 0.5; d += step) {
    const tx = x(origin + d);
    axis.appendChild(svg("line", { class: d === 0 ? "tl-grid tl-origin" : "tl-grid", x1: tx, x2: tx, y1: TL.top, y2: axisY + 4 }));
    axis.appendChild(svg("text", { class: "tl-tick", x: tx, y: axisY + 17, "text-anchor": "middle" }, fmtRel(d)));
  }
  root.appendChild(axis);

  rows.forEach((row, i) => {
    const y = TL.top + i * TL.row;
    const mid = y + TL.row / 2;
    const g = svg("g", { class: "tl-row row-" + row.kind });
    g.appendChild(svg("text", { class: "tl-label", x: TL.label - 8, y: mid + 4, "text-anchor": "end" }, row.label));
    switch (row.kind) {
      case "vote": {
        const v = row.v;
        g.setAttribute("data-controller", v.controller);
        g.appendChild(svg("circle", { class: "tl-vote", cx: x(row.at), cy: mid, r: 5 },
          tip(v.controller + (v.zone ? " (" + v.zone + ")" : "") + " down at " + fmtRel(row.at - origin) +
            " after " + (v.failures ?? "?") + " failed probes" + (v.reason ? ": " + v.reason : "") +
            (v.detail ? " · " + v.detail : ""))));
        g.appendChild(svg("text", { class: "tl-note", x: x(row.at) + 9, y: mid + 4 }, fmtRel(row.at - origin)));
        break;
      }
      case "decision": {
        const cx = x(row.at);
        g.appendChild(svg("path", { class: "tl-decision", d: "M" + cx + " " + (mid - 7) + " l7 7 l-7 7 l-7 -7 z" },
          tip("record #" + r.id + " opened by " + (r.opened_by || "?") + " at " + fmtRel(row.at - origin))));
        g.appendChild(svg("text", { class: "tl-note", x: cx + 11, y: mid + 4 }, fmtRel(row.at - origin)));
        break;
      }
      case "step": {
        const s = row.s;
        g.setAttribute("data-step", s.name);
        g.setAttribute("data-outcome", s.outcome || "");
        const x1 = x(row.start), x2 = Math.max(x(row.end), x1 + 3);
        const took = row.end - row.start;
        g.appendChild(svg("rect", {
          class: "tl-step outcome-" + (row.running ? "running" : outcomeClass(s.outcome)),
          x: x1, y: y + 4, width: x2 - x1, height: TL.row - 8, rx: 2,
        }, tip(s.seq + ". " + s.name + " " + (s.outcome || "") + (row.running ? " (running)" : "") +
          ", " + fmtRel(row.start - origin) + " → " + fmtRel(row.end - origin) + " (" + fmtRel(took) + ")" +
          (s.leader ? " on " + s.leader : "") + (s.detail ? "\n" + s.detail : ""))));
        // The promotion and the repoint end at a visible instant: mark it.
        if (s.name === "promote" || s.name === "repoint") {
          g.appendChild(svg("line", { class: "tl-milestone", x1: x2, x2, y1: y + 1, y2: y + TL.row - 1 }));
        }
        g.appendChild(svg("text", { class: "tl-note", x: x2 + 5, y: mid + 4 },
          (s.outcome || "") + " · " + fmtRel(took)));
        break;
      }
      case "fence": {
        const f = row.f;
        const cx = x(row.at);
        g.appendChild(svg("rect", { class: "tl-fence fence-" + (f.state || "unknown"), x: cx - 5, y: mid - 5, width: 10, height: 10 },
          tip("fence " + (f.state || "") + ": " + (f.proof || "none") + " at " + fmtRel(row.at - origin) +
            (f.reason ? "\n" + f.reason : "") + (f.detail ? "\n" + f.detail : ""))));
        g.appendChild(svg("text", { class: "tl-note", x: cx + 9, y: mid + 4 }, fmtRel(row.at - origin)));
        break;
      }
    }
    root.appendChild(g);
  });
  return root;
}

// masterChanges are a cluster's successful failovers and switchovers, oldest
// first, each with the instant the new master took over: the end of its
// promote step, or the record's close.
function masterChanges(records) {
  return records
    .filter((r) => (r.kind === "failover" || r.kind === "switchover") && r.result === "success" &&
      r.new_master && r.new_master !== r.old_master)
    .map((r) => {
      const p = (r.steps || []).find((s) => s.name === "promote" && !isNaN(ms(s.end)));
      const at = p ? ms(p.end) : ms(r.closed);
      return { id: r.id, kind: r.kind, from: r.old_master, to: r.new_master, at, opened: ms(r.opened) };
    })
    .filter((c) => !isNaN(c.at))
    .sort((a, b) => a.at - b.at);
}

const MS = { width: 1000, left: 10, right: 10, top: 4, band: 30, axis: 22 };

// fmtUTC shows a clock time in UTC, to the second.
function fmtUTC(t) { return new Date(t).toISOString().slice(11, 19); }

// masterStrip draws cluster's master tenures from its history records and
// its current master, up to now. The first band starts before the oldest
// recorded change (its start is not known).
function masterStrip(cluster, records, current, now) {
  const changes = masterChanges(records.filter((r) => r.cluster === cluster));
  if (changes.length === 0 && !current) return null;
  const tenures = [];
  if (changes.length === 0) {
    tenures.push({ addr: current, from: NaN, to: now, open: true });
  } else {
    tenures.push({ addr: changes[0].from || "?", from: NaN, to: changes[0].at, open: true });
    changes.forEach((c, i) => {
      tenures.push({ addr: c.to, from: c.at, to: i + 1 < changes.length ? changes[i + 1].at : now, via: c });
    });
  }
  const first = changes.length ? Math.min(changes[0].at, changes[0].opened || Infinity) : now;
  const span = Math.max(now - first, 1000);
  const lo = first - Math.max(span * 0.25, 1000);
  const hi = Math.max(now, lo + 1);
  const plotW = MS.width - MS.left - MS.right;
  const x = (t) => MS.left + ((isNaN(t) ? lo : t) - lo) / (hi - lo) * plotW;
  const height = MS.top + MS.band + MS.axis;

  const root = svg("svg", {
    class: "master-strip", viewBox: "0 0 " + MS.width + " " + height, width: "100%",
    role: "img", "aria-label": "masters of " + cluster, "data-cluster": cluster, "data-tenures": tenures.length,
    preserveAspectRatio: "xMinYMin meet",
  });
  tenures.forEach((t, i) => {
    const x1 = x(t.from), x2 = Math.max(x(t.to), x1 + 2);
    const g = svg("g", { class: "tenure" + (i === tenures.length - 1 ? " current" : ""), "data-master": t.addr });
    const since = isNaN(t.from) ? "before the first recorded change" : fmtUTC(t.from) + " UTC (" + t.via.kind + " #" + t.via.id + ")";
    g.appendChild(svg("rect", { class: "tenure-band tone-" + (i % 4), x: x1, y: MS.top, width: x2 - x1, height: MS.band, rx: 3 },
      tip(t.addr + ": master since " + since + (i === tenures.length - 1 ? ", still" : ", until " + fmtUTC(t.to) + " UTC"))));
    // The label is clipped to its band so a short tenure does not overlap
    // the next one.
    const clipID = "clip-" + cluster.replace(/[^A-Za-z0-9_-]/g, "_") + "-" + i;
    g.appendChild(svg("clipPath", { id: clipID }, svg("rect", { x: x1, y: MS.top, width: x2 - x1, height: MS.band })));
    g.appendChild(svg("text", { class: "tenure-label", x: x1 + 6, y: MS.top + MS.band / 2 + 4, "clip-path": "url(#" + clipID + ")" }, t.addr));
    root.appendChild(g);
  });
  for (const c of changes) {
    const cx = x(c.at);
    root.appendChild(svg("line", { class: "tenure-change", x1: cx, x2: cx, y1: MS.top - 2, y2: MS.top + MS.band + 4 }));
    root.appendChild(svg("text", { class: "tl-tick", x: cx, y: MS.top + MS.band + 17, "text-anchor": "middle" },
      fmtUTC(c.at) + " #" + c.id));
  }
  root.appendChild(svg("text", { class: "tl-tick", x: MS.width - MS.right, y: MS.top + MS.band + 17, "text-anchor": "end" }, "now"));
  return root;
}
