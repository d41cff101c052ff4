// quorumha web view: polls this controller's read API every 2 s and renders
// the controller group, each cluster's topology and assessment, each
// cluster's masters over time, and the failover/switchover history with a
// timeline per record (the SVG drawing is in timeline.js). Every value from
// the API goes into the page as text (textContent / createTextNode), never
// as markup.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "quorumha.read_token";

const $ = (id) => document.getElementById(id);

// ---- DOM helpers -----------------------------------------------------------

// el builds an element. attrs: class, title, href, or on<event> handlers;
// children: nodes, strings (as text), numbers, null/false (skipped), arrays.
function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") n.className = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? "" : String(v));
  }
  append(n, children);
  return n;
}

function append(n, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(n, c);
    else if (c instanceof Node) n.appendChild(c);
    else n.appendChild(document.createTextNode(String(c)));
  }
}

function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

// badge is a coloured label for a state name.
function badge(state, label) {
  const s = String(state || "unknown");
  return el("span", { class: "badge " + tone(s) }, label || s.replaceAll("_", " "));
}

// tone maps every state word the API uses to a colour class.
function tone(s) {
  switch (s) {
    case "healthy": case "up": case "alive": case "ok": case "success": case "leader":
    case "Yes": case "yes": case "chosen": case "master":
      return "good";
    case "suspect": case "isolated": case "replicas_still_connected": case "warning":
    case "refused": case "detected": case "Connecting": case "Preparing": case "aborted":
    case "maintenance": case "lagging": case "awaiting_fence":
      return "warn";
    case "dead": case "down": case "dead_confirmed": case "failed": case "rolled_back":
    case "No": case "no": case "unreachable": case "error":
      return "bad";
    case "running": case "open": case "Candidate":
      return "info";
    default:
      return "neutral";
  }
}

function mono(text) { return el("span", { class: "mono" }, text); }

function dash() { return el("span", { class: "muted" }, "—"); }

function table(headers, rows, cls) {
  return el("div", { class: "table-wrap" },
    el("table", { class: cls || "" },
      el("thead", null, el("tr", null, headers.map((h) => el("th", null, h)))),
      el("tbody", null, rows)));
}

function facts(pairs) {
  return el("dl", { class: "facts" },
    pairs.filter((p) => p).map(([k, v]) => el("div", null, el("dt", null, k), el("dd", null, v))));
}

// ---- formatting ------------------------------------------------------------

function isTime(t) { return typeof t === "string" && t !== "" && !t.startsWith("0001-"); }

// fmtTime shows an RFC 3339 time in UTC, to the millisecond.
function fmtTime(t) {
  if (!isTime(t)) return "—";
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace("T", " ").replace("Z", "");
}

function fmtClock(t) {
  if (!isTime(t)) return "—";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().slice(11, 23);
}

function fmtDuration(ms) {
  if (!isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const m = Math.floor(ms / 60000);
  return m + " min " + Math.round((ms % 60000) / 1000) + " s";
}

// splitPos splits a replica's read_pos ("file:pos gtid=D-S-N,...") into the
// binlog position and the GTID IO position.
function splitPos(p) {
  const s = String(p || "");
  const i = s.indexOf(" gtid=");
  return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 6)];
}

function between(a, b) {
  if (!isTime(a) || !isTime(b)) return NaN;
  return new Date(b) - new Date(a);
}


// ---- API access ------------------------------------------------------------

class AuthError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// getJSON fetches a read endpoint. 401/403 throw AuthError; another non-2xx
// answer resolves with ok=false and the error body, so a 503 (no leader)
// can be shown rather than thrown.
async function getJSON(path) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const resp = await fetch(path, { headers, cache: "no-store", credentials: "same-origin" });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (resp.status === 401 || resp.status === 403) {
    throw new AuthError(resp.status, (body && body.error) || resp.statusText);
  }
  return { ok: resp.ok, status: resp.status, body };
}

// ---- state -----------------------------------------------------------------

const view = {
  cluster: "",          // the cluster filter, from the URL hash (#cluster=NAME)
  open: new Map(),      // record id -> expanded, as the operator left it
  newest: 0,            // newest record id seen: expanded by default
  lastHistory: "",      // the history JSON last rendered
  timer: 0,
  waitingForToken: false,
  scrolled: false,      // the URL fragment's element was scrolled to
};

// readHash reads the URL fragment: #cluster=NAME filters by cluster;
// #pictures shows only the masters strip and the history with its
// timelines (for a wall display, and the documentation's screenshot).
function readHash() {
  const m = /^#cluster=(.+)$/.exec(location.hash);
  view.cluster = m ? decodeURIComponent(m[1]) : "";
  document.body.classList.toggle("pictures", location.hash === "#pictures");
}

// ---- polling ---------------------------------------------------------------

async function poll() {
  clearTimeout(view.timer);
  if (view.waitingForToken) return;
  const enc = encodeURIComponent(view.cluster);
  try {
    const [status, leader, clusters, history] = await Promise.all([
      getJSON("/v1/status"),
      getJSON("/v1/leader"),
      view.cluster ? getJSON("/v1/clusters/" + enc) : getJSON("/v1/clusters"),
      getJSON("/v1/history" + (view.cluster ? "?cluster=" + enc : "")),
    ]);
    hideBanner();
    $("token-panel").hidden = true;
    renderGroup(status, leader);
    renderClusters(clusters);
    renderMasters(clusters, history);
    renderHistory(history);
    scrollToHash();
    $("updated").textContent = "updated " + fmtClock(new Date().toISOString()) + " UTC";
    $("updated").className = "muted";
  } catch (e) {
    if (e instanceof AuthError) {
      askToken(e);
      return;
    }
    showBanner("Cannot reach this controller: " + e.message + " (retrying)");
    $("updated").className = "stale";
  }
  $("forget-token").hidden = !token();
  view.timer = setTimeout(poll, POLL_MS);
}

// scrollToHash brings the element the URL's fragment names (#masters,
// #record-12) into view once it exists: the browser's own jump happens at
// load, before the data is rendered and the sections above it have grown.
function scrollToHash() {
  if (view.scrolled || location.hash.length < 2 || location.hash.startsWith("#cluster=")) return;
  const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (!target) return;
  if (target.tagName === "DETAILS") target.open = true;
  target.scrollIntoView();
  view.scrolled = true;
}

function showBanner(text) {
  const b = $("banner");
  b.textContent = text;
  b.hidden = false;
}

function hideBanner() { $("banner").hidden = true; }

function askToken(e) {
  view.waitingForToken = true;
  $("token-panel").hidden = false;
  $("token-error").textContent = token()
    ? (e.status === 403 ? "The token was refused." : "The token was not accepted: " + e.message)
    : "";
  $("viewing").textContent = "waiting for a read token";
  $("updated").className = "stale";
  $("token-input").focus();
}

function setupToken() {
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("token-input").value.trim();
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    $("token-input").value = "";
    view.waitingForToken = false;
    poll();
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("forget-token").hidden = true;
    poll();
  });
}

// ---- the group -------------------------------------------------------------

function renderGroup(statusResp, leaderResp) {
  const st = statusResp.body || {};
  const ld = leaderResp.ok ? leaderResp.body : null;

  replace($("viewing"), "viewing ", el("strong", null, st.id || "?"),
    st.zone ? " · " + st.zone : "", st.http_addr ? " · " : "", st.http_addr ? mono(st.http_addr) : "",
    " ", badge(st.raft_state === "Leader" ? "leader" : st.raft_state || "unknown", (st.raft_state || "unknown").toLowerCase()));

  replace($("leader"), ld
    ? [el("span", { class: "muted" }, "leader "), el("strong", { class: "leader-id" }, ld.id),
      ld.http_addr ? [" · ", mono(ld.http_addr)] : "", " · term ", String(ld.term)]
    : badge("failed", "no leader known"));

  const members = new Map((st.gossip_members || []).map((m) => [m.name, m]));
  const ids = [];
  for (const p of st.peers || []) ids.push(p.id);
  for (const m of members.keys()) if (!ids.includes(m)) ids.push(m);
  const peers = new Map((st.peers || []).map((p) => [p.id, p]));
  const leaderID = ld ? ld.id : (st.leader && st.leader.id) || "";

  const rows = ids.map((id) => {
    const p = peers.get(id);
    const m = members.get(id);
    const self = id === st.id;
    let role;
    if (!p) role = badge("neutral", "not in raft");
    else if (id === leaderID) role = badge("leader");
    else if (self && st.raft_state) role = badge(st.raft_state, st.raft_state.toLowerCase());
    else role = badge("neutral", p.suffrage === "voter" ? "follower" : p.suffrage || "member");
    const httpAddr = (p && p.http_addr) || (self ? st.http_addr : "");
    return el("tr", { class: self ? "self" : "" },
      el("td", null, el("strong", null, id), self ? el("span", { class: "you" }, "you are here") : ""),
      el("td", null, (p && p.zone) || (m && m.zone) || (self && st.zone) || dash()),
      el("td", null, role),
      el("td", null, m ? badge(m.state) : (members.size ? badge("dead", "not heard") : dash())),
      el("td", null, httpAddr
        ? el("a", { href: (httpAddr.includes("://") ? httpAddr : location.protocol + "//" + httpAddr) + "/ui/", class: "mono" }, httpAddr)
        : el("span", { class: "muted", title: "the leader records each controller's HTTP address from gossip" }, "not recorded yet")),
      el("td", null, p ? mono(p.raft_addr) : dash()),
      el("td", null, m ? mono(m.addr) : dash()));
  });

  replace($("group"),
    facts([
      ["this controller", st.id || "?"],
      ["raft state", st.raft_state || "?"],
      ["term", String(st.term ?? "?")],
      ["commit / applied", (st.commit_index ?? "?") + " / " + (st.applied_index ?? "?")],
      ["last contact", st.raft_state === "Leader" ? "is the leader" : fmtClock(st.last_contact)],
      ["leader changes", String(st.leader_changes ?? 0)],
      ["records", String(st.record_count ?? 0)],
    ]),
    table(["controller", "zone", "raft", "gossip", "HTTP", "raft address", "gossip address"], rows, "group"));
}

// ---- clusters --------------------------------------------------------------

function renderClusters(resp) {
  const box = $("clusters");
  if (!resp.ok) {
    replace(box, el("div", { class: "card" }, badge("failed", "error"), " ", (resp.body && resp.body.error) || "status " + resp.status));
    renderFilter([]);
    return;
  }
  const list = resp.body.clusters || (resp.body.cluster ? [resp.body.cluster] : []);
  if (!view.cluster) renderFilter(list.map((c) => c.name));
  if (list.length === 0) {
    replace(box, el("div", { class: "card muted" }, "No cluster is configured."));
    return;
  }
  replace(box, list.map(clusterCard));
}

function renderFilter(names) {
  const f = $("filter");
  if (view.cluster) {
    replace(f, "showing ", el("strong", null, view.cluster), " · ", el("a", { href: "#" }, "all clusters"));
  } else if (names.length > 1) {
    replace(f, "only: ", names.map((n, i) => [i ? " · " : "", el("a", { href: "#cluster=" + encodeURIComponent(n) }, n)]));
  } else {
    replace(f);
  }
}

function clusterCard(c) {
  const topo = c.topology || {};
  const a = topo.assessment || null;
  const st = c.state || {};
  const master = (a && a.master) || topo.watched_master || c.master || "";
  const inMaintenance = isTime(st.maintenance_until) && new Date(st.maintenance_until) > Date.now();

  const head = el("div", { class: "card-head" },
    el("h3", null, el("a", { href: "#cluster=" + encodeURIComponent(c.name), class: "plain" }, c.name)),
    el("div", { class: "head-badges" },
      a ? badge(a.state) : badge("unknown", "no assessment yet"),
      inMaintenance ? badge("maintenance", "maintenance") : "",
      c.awaiting_fence ? badge("awaiting_fence", "awaiting fence") : ""));

  const info = facts([
    ["master", master ? mono(master) : dash()],
    ["recorded master", st.master ? [mono(st.master), el("span", { class: "muted" }, " since " + fmtTime(st.master_set_at))] : dash()],
    a && ["quorum", a.down_count + " down of " + a.needed + " needed" + (a.zones && a.zones.length ? " (" + a.zones.join(", ") + ")" : "")],
    st.last_failover_id && ["last failover", "#" + st.last_failover_id + " at " + fmtTime(st.last_failover) +
      (isTime(st.acked_at) ? " · acknowledged by " + (st.acked_by || "?") : " · not acknowledged")],
    inMaintenance && ["maintenance", "until " + fmtTime(st.maintenance_until) + (st.maintenance_reason ? " — " + st.maintenance_reason : "") +
      (st.maintenance_by ? " (" + st.maintenance_by + ")" : "")],
    a && ["assessed at", fmtClock(a.at)],
  ]);

  const parts = [head, info];
  if (a && a.reason) parts.push(el("p", { class: "reason" }, a.reason));
  const af = c.awaiting_fence;
  if (af) {
    parts.push(el("p", { class: "reason warn" }, "Failover #" + af.record_id + " awaits a fence proof since " + fmtTime(af.since) +
      ": " + af.reason + ". Nothing is promoted until a proof holds or an operator runs ",
      mono("quorumha failover --cluster " + c.name + " --unfenced"), "."));
  }
  parts.push(el("h4", null, "Topology"), topologyTable(topo, master, a));
  if (a) {
    parts.push(el("h4", null, "Verdicts of each vantage point"), votesTable(a.votes || [], a.stale || []));
  }
  return el("article", { class: "card cluster" }, parts);
}

// topologyTable lists the master, then every replica the controllers
// observed, then configured instances nobody observed.
function topologyTable(topo, master, a) {
  const configured = new Map((topo.configured_instances || []).map((i) => [i.address, i]));
  const observed = new Map(((a && a.replica_view) || []).map((r) => [r.replica, r]));
  const masterVotes = (a && a.votes) || [];
  const order = [];
  if (master) order.push(master);
  for (const r of observed.keys()) if (!order.includes(r)) order.push(r);
  for (const i of configured.keys()) if (!order.includes(i)) order.push(i);

  const rows = order.map((addr) => {
    const cfg = configured.get(addr) || {};
    const flags = [cfg.candidate_master ? el("span", { class: "tag" }, "candidate_master") : "",
      cfg.no_master ? el("span", { class: "tag" }, "no_master") : "",
      cfg.zone ? el("span", { class: "tag" }, cfg.zone) : ""];
    if (addr === master) {
      const up = masterVotes.filter((v) => v.state === "up").length;
      const down = masterVotes.filter((v) => v.state === "down").length;
      const ro = masterVotes.map((v) => v.detail || "").find((d) => d.startsWith("read_only=")) || "";
      const failing = masterVotes.find((v) => v.state !== "up" && v.detail);
      // The GTID position the probes last read on the master (the newest read).
      const seen = masterVotes.filter((v) => v.last_position)
        .sort((x, y) => String(y.last_position_at).localeCompare(String(x.last_position_at)))[0];
      return el("tr", { class: "master-row" },
        el("td", null, badge(a && a.state !== "healthy" ? a.state : "master", "master")),
        el("td", null, mono(addr), flags),
        el("td", { colspan: 2 }, masterVotes.length
          ? [up + " of " + masterVotes.length + " controllers see it up", down ? ", " + down + " down" : "",
            ro ? el("span", { class: "tag" }, ro) : ""]
          : dash()),
        el("td", null, dash()),
        el("td", null, dash()),
        el("td", null, seen ? el("span", { class: "mono", title: "gtid_binlog_pos read by " + seen.controller + "'s probe" }, seen.last_position) : dash()),
        el("td", { class: "detail" }, failing ? failing.controller + ": " + failing.detail : ""));
    }
    const r = observed.get(addr);
    if (!r) {
      return el("tr", null, el("td", null, badge("neutral", "not observed")), el("td", null, mono(addr), flags),
        el("td", { colspan: 6, class: "muted" }, "no replica observation (not replicating, or not reachable)"));
    }
    if (!r.reachable) {
      return el("tr", null, el("td", null, badge("unreachable", "unreachable")), el("td", null, mono(addr), flags),
        el("td", { colspan: 6, class: "detail" }, r.error || "could not be queried"));
    }
    const from = r.master_host ? r.master_host + ":" + r.master_port : "";
    const follows = r.same_server || from === master;
    const [pos, gtid] = splitPos(r.read_pos);
    const lag = r.seconds_behind === undefined || r.seconds_behind === null ? null : Number(r.seconds_behind);
    return el("tr", null,
      el("td", null, badge(from ? (follows ? "healthy" : "warning") : "neutral", from ? "replica" : "not a replica")),
      el("td", null, mono(addr), flags),
      el("td", null, "IO ", badge(r.io_running || "No", r.io_running || "No"), " SQL ", badge(r.sql_running ? "Yes" : "No", r.sql_running ? "Yes" : "No"), seenTags(r)),
      el("td", null, lag === null ? el("span", { class: "muted" }, "unknown") : badge(lag > 0 ? "lagging" : "ok", lag + " s")),
      el("td", null, from ? mono(from) : dash(), from && !follows ? el("span", { class: "tag warn" }, "not the master") : ""),
      el("td", null, pos ? mono(pos) : dash(), r.advancing ? el("span", { class: "tag" }, "advancing") : ""),
      el("td", null, gtid ? mono(gtid) : dash()),
      el("td", { class: "detail" }, r.last_io_error ? (r.last_io_errno ? r.last_io_errno + ": " : "") + r.last_io_error : ""));
  });
  return table(["role", "instance", "replication threads", "lag", "replicates from", "received binlog position", "GTID position", "last error"],
    rows, "topology");
}

// seenTags shows the replica view's signals beyond the IO thread: the
// heartbeats received (and the period) and the replica host agent's own
// check of the master, which may say "lost" while the IO thread says Yes.
function seenTags(r) {
  const tags = [];
  if (r.heartbeats !== undefined && r.heartbeats !== null) {
    const period = r.heartbeat_period ? " every " + (r.heartbeat_period / 1e9) + " s" : "";
    tags.push(el("span", { class: "tag", title: "heartbeats received; last progress " + (r.progress_at || "?") }, r.heartbeats + " heartbeats" + period));
  }
  const a = r.agent_reach;
  if (a) {
    const text = !a.answered ? "agent silent" : a.reachable ? "agent reaches master" : "agent: master unreachable (" + a.stage + ")";
    tags.push(el("span", { class: "tag" + (a.answered && !a.reachable ? " warn" : ""), title: a.error || "" }, text));
  }
  return tags;
}

function votesTable(votes, stale) {
  const row = (v, isStale) => el("tr", { class: isStale ? "stale-row" : "" },
    el("td", null, el("strong", null, v.controller), isStale ? el("span", { class: "tag" }, "stale") : ""),
    el("td", null, v.zone || dash()),
    el("td", null, mono(v.instance)),
    el("td", null, badge(v.state)),
    el("td", { class: "num" }, String(v.failures ?? 0)),
    el("td", null, v.reason || ""),
    el("td", { class: "detail" }, v.detail || ""),
    el("td", { class: "mono nowrap" }, fmtClock(v.observed_at)));
  const rows = votes.map((v) => row(v, false)).concat(stale.map((v) => row(v, true)));
  if (rows.length === 0) return el("p", { class: "muted" }, "No verdicts yet.");
  return table(["controller", "zone", "instance", "verdict", "failures", "reason", "detail", "observed"], rows, "votes");
}

// ---- masters over time -----------------------------------------------------

// renderMasters draws one strip per cluster: its masters over the recorded
// history (successful failovers and switchovers), up to now. Redrawn every
// poll, since the current tenure grows.
function renderMasters(clustersResp, historyResp) {
  const box = $("masters");
  if (!clustersResp.ok || !historyResp.ok) return; // the sections below show the error
  const list = clustersResp.body.clusters || (clustersResp.body.cluster ? [clustersResp.body.cluster] : []);
  const records = historyResp.body.records || [];
  const names = list.map((c) => c.name);
  for (const r of records) if (!names.includes(r.cluster)) names.push(r.cluster);
  const now = Date.now();
  const strips = names.map((n) => {
    const c = list.find((x) => x.name === n);
    const current = c ? c.master || (c.state && c.state.master) || "" : "";
    const pic = masterStrip(n, records, current, now);
    return pic ? el("div", { class: "strip" }, el("h5", null, n), pic) : null;
  }).filter((x) => x);
  if (strips.length === 0) {
    replace(box, el("p", { class: "muted" }, "No master is known yet."));
    return;
  }
  replace(box, strips);
}

// ---- history ---------------------------------------------------------------

function renderHistory(resp) {
  const box = $("history");
  if (!resp.ok) {
    replace(box, badge("failed", "error"), " ", (resp.body && resp.body.error) || "status " + resp.status);
    return;
  }
  const records = resp.body.records || [];
  const text = JSON.stringify(records);
  if (text === view.lastHistory) return; // nothing new: keep the DOM (and any selection) as it is
  view.lastHistory = text;
  $("history-count").textContent = records.length === 1 ? "1 record" : records.length + " records";
  if (records.length === 0) {
    replace(box, el("p", { class: "muted" }, "No failover, switchover or detection has been recorded."));
    return;
  }
  for (const r of records) view.newest = Math.max(view.newest, r.id);
  replace(box, records.map(recordView));
}

function recordView(r) {
  const open = view.open.has(r.id) ? view.open.get(r.id) : r.id === view.newest;
  const result = r.result || "open";
  const d = el("details", { class: "record", open: open, id: "record-" + r.id });
  d.addEventListener("toggle", () => view.open.set(r.id, d.open));
  const took = between(r.opened, r.closed);
  d.appendChild(el("summary", null,
    el("span", { class: "rec-id" }, "#" + r.id),
    el("span", { class: "rec-kind" }, r.kind),
    el("span", { class: "rec-cluster" }, r.cluster),
    el("span", { class: "rec-move" }, r.old_master ? mono(r.old_master) : dash(), el("span", { class: "arrow" }, " → "),
      r.new_master ? mono(r.new_master) : dash()),
    badge(result === "open" ? "running" : result, result),
    r.fence ? fenceBadge(r.fence) : "",
    el("span", { class: "rec-time muted" }, fmtTime(r.opened), isFinite(took) ? " · " + fmtDuration(took) : "")));

  const body = el("div", { class: "record-body" });
  body.appendChild(facts([
    ["trigger", r.trigger || "—"],
    ["opened by", r.opened_by || "—"],
    ["opened", fmtTime(r.opened)],
    ["closed", isTime(r.closed) ? fmtTime(r.closed) : "still open"],
    ["result", badge(result === "open" ? "running" : result, result)],
  ]));
  if (r.detail) body.appendChild(el("p", { class: "reason" }, r.detail));
  const tl = recordTimeline(r, Date.now());
  if (tl) body.appendChild(el("div", { class: "timeline-wrap" }, el("h4", null, "Timeline"), tl));
  body.appendChild(evidenceView(r.evidence));
  body.appendChild(el("h4", null, "Candidates"));
  body.appendChild((r.candidates || []).length
    ? table(["candidate", "decision", "reason"], r.candidates.map((c) => el("tr", { class: c.chosen ? "chosen" : "" },
      el("td", null, mono(c.address)),
      el("td", null, badge(c.chosen ? "chosen" : "neutral", c.chosen ? "chosen" : "not chosen")),
      el("td", { class: "detail" }, c.reason || ""))), "candidates")
    : el("p", { class: "muted" }, "No candidates were recorded."));
  if (r.fence) body.appendChild(fenceView(r.fence));
  if (r.salvage) body.appendChild(salvageView(r.salvage));
  body.appendChild(el("h4", null, "Steps"));
  body.appendChild((r.steps || []).length
    ? table(["#", "step", "outcome", "leader", "start", "end", "took", "detail"], r.steps.map((s) => el("tr", null,
      el("td", { class: "num" }, String(s.seq)),
      el("td", null, el("strong", { class: "step-name" }, s.name)),
      el("td", null, badge(s.outcome)),
      el("td", { class: "nowrap" }, s.leader, s.term ? el("span", { class: "muted" }, " term " + s.term) : ""),
      el("td", { class: "mono nowrap" }, fmtClock(s.start)),
      el("td", { class: "mono nowrap" }, isTime(s.end) ? fmtClock(s.end) : "running…"),
      el("td", { class: "num nowrap" }, fmtDuration(between(s.start, s.end))),
      el("td", { class: "detail" }, s.detail || ""))), "steps")
    : el("p", { class: "muted" }, "No step has run."));
  d.appendChild(body);
  return d;
}

// fenceBadge names a record's fence: its proof, awaiting fence, or who
// accepted promoting without one.
function fenceBadge(f) {
  switch (f.state) {
    case "awaiting": return badge("awaiting_fence", "awaiting fence");
    case "accepted": return badge("warning", "unfenced: accepted by " + (f.by || "?"));
    case "unproven": return badge("warning", "fence: none");
    default: return badge("ok", "fence: " + f.proof);
  }
}

// fenceView shows how the old master (and any earlier promote target) was
// proven unable to take writes before the promotion, or why it was not.
function fenceView(f) {
  const box = el("div", { class: "fence" }, el("h4", null, "Fence"));
  box.appendChild(facts([
    ["state", fenceBadge(f)],
    ["proof", f.proof || "none"],
    isTime(f.since) && ["awaiting since", fmtTime(f.since)],
    f.by && ["accepted by", f.by + " at " + fmtTime(f.at)],
  ]));
  if (f.reason) box.appendChild(el("p", { class: "reason warn" }, f.reason));
  if ((f.targets || []).length) {
    box.appendChild(table(["target", "proof", "detail"], f.targets.map((t) => el("tr", null,
      el("td", null, mono(t.address)),
      el("td", null, t.proof ? badge("ok", t.proof) : badge("warning", "none")),
      el("td", { class: "detail" }, t.detail || ""))), "fence-targets"));
  }
  if (f.detail) box.appendChild(el("p", { class: "detail" }, f.detail));
  return box;
}

// salvageView shows what a failover recovered from the dead master's binlog
// through its agent, and what may be lost when it could not.
function salvageView(s) {
  const state = { applied: "ok", nothing: "ok", failed: "failed" }[s.outcome] || "warning";
  const box = el("div", { class: "salvage" }, el("h4", null, "Binlog salvage"));
  box.appendChild(facts([
    ["outcome", badge(state, s.outcome)],
    ["transactions applied", String(s.applied || 0)],
    ["from", s.agent ? el("span", null, mono(s.from), " via ", mono(s.agent)) : mono(s.from)],
    ["onto", s.target ? mono(s.target) : dash()],
    ["before → after", el("span", null, s.before ? mono(s.before) : dash(), " → ", s.recovered ? mono(s.recovered) : dash())],
    ["dead master's last", s.master_last ? mono(s.master_last) : dash()],
    ["last seen by probes", s.master_last_seen ? mono(s.master_last_seen) : dash()],
    ["took", fmtDuration((s.took || 0) / 1e6)],
  ]));
  if (s.loss_window) box.appendChild(el("p", { class: "reason warn" }, s.loss_window));
  if (s.error) box.appendChild(el("p", { class: "detail" }, s.error));
  if ((s.gtids || []).length) box.appendChild(el("p", { class: "detail" }, "GTIDs: ", mono(s.gtids.join(", "))));
  if ((s.skipped || []).length) {
    box.appendChild(table(["skipped", "at", "bytes", "reason"], s.skipped.map((k) => el("tr", null,
      el("td", null, k.gtid ? mono(k.gtid) : dash()),
      el("td", { class: "mono nowrap" }, k.file + ":" + k.start),
      el("td", { class: "num" }, String(k.bytes)),
      el("td", { class: "detail" }, k.reason || ""))), "skipped"));
  }
  return box;
}

// evidenceView shows a record's evidence: the detector's assessment (votes
// per controller, the replicas' view) and recheck when present, and any
// other field as a plain value.
function evidenceView(ev) {
  const box = el("div", { class: "evidence" }, el("h4", null, "Evidence"));
  if (!ev || typeof ev !== "object") {
    box.appendChild(el("p", { class: "muted" }, "No evidence recorded."));
    return box;
  }
  const a = ev.assessment;
  const other = Object.entries(ev).filter(([k]) => k !== "assessment" && k !== "recheck" && k !== "rule");
  const pairs = [];
  if (ev.rule) pairs.push(["rule", ev.rule]);
  if (ev.recheck && typeof ev.recheck === "object") {
    const rc = ev.recheck;
    pairs.push(["recheck", [badge(rc.ok ? "ok" : "failed", rc.ok ? "master answered" : "master did not answer"),
      " ", rc.instance ? mono(rc.instance) : "", rc.reason ? " · " + rc.reason : "", rc.detail ? " · " + rc.detail : ""]]);
  }
  for (const [k, v] of other) pairs.push([k.replaceAll("_", " "), plain(v)]);
  if (a) {
    pairs.push(["assessment", [badge(a.state), " ", (a.down_count ?? "?") + " down of " + (a.needed ?? "?") + " needed"]]);
  }
  if (pairs.length) box.appendChild(facts(pairs));
  if (a) {
    box.appendChild(el("h5", null, "Votes per controller"));
    box.appendChild(votesTable(a.votes || [], a.stale || []));
    box.appendChild(el("h5", null, "Replica view"));
    const rv = a.replica_view || [];
    box.appendChild(rv.length
      ? table(["replica", "reachable", "replicates from", "IO", "SQL", "binlog position", "GTID IO position", "advancing", "error"], rv.map((r) => el("tr", null,
        el("td", null, mono(r.replica)),
        el("td", null, badge(r.reachable ? "yes" : "no", r.reachable ? "yes" : "no")),
        el("td", null, r.master_host ? mono(r.master_host + ":" + r.master_port) : dash()),
        el("td", null, r.io_running ? badge(r.io_running) : dash(), seenTags(r)),
        el("td", null, badge(r.sql_running ? "Yes" : "No")),
        el("td", null, splitPos(r.read_pos)[0] ? mono(splitPos(r.read_pos)[0]) : dash()),
        el("td", null, splitPos(r.read_pos)[1] ? mono(splitPos(r.read_pos)[1]) : dash()),
        el("td", null, r.advancing ? "yes" : "no"),
        el("td", { class: "detail" }, r.error || r.last_io_error || ""))), "replicas")
      : el("p", { class: "muted" }, "No replica observations."));
  }
  return box;
}

// plain renders an arbitrary JSON value as text.
function plain(v) {
  if (v === null || v === undefined || v === "") return dash();
  if (typeof v === "object") return mono(JSON.stringify(v));
  return String(v);
}

// ---- start -----------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  setupToken();
  readHash();
  window.addEventListener("hashchange", () => {
    readHash();
    view.lastHistory = "";
    view.scrolled = false;
    poll();
  });
  poll();
});
