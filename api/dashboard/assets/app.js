// dd0c/cost dashboard: plain JS over the public API. No framework, no build step, nothing from outside this server.
// Everything that comes from CloudTrail (actors, ids, reasons) is attacker-controllable text: it is only ever put
// into the page with textContent (the el() helper), never as HTML.

const ROUTES = Object.freeze({
  login: "/v1/auth/login",
  summary: "/v1/summary",
  accounts: "/v1/accounts",
  anomalies: "/v1/anomalies",
  resources: "/v1/resources",
  zombies: "/v1/zombies",
  feed: "/v1/feed",
});

const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const RANK = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };
const TOKEN_KEY = "dd0c.cost.token";
const PAGE = 50;
const FEED_KEEP = 100;
const HOURS_PER_MONTH = 730; // the usual FinOps convention (8760 h / 12)

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------------------------------------ formatting

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "title") node.title = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function usd(value, { perHour = true } = {}) {
  if (value === null || value === undefined) return null;
  const digits = Math.abs(value) > 0 && Math.abs(value) < 0.1 ? 4 : 2;
  // Half-up from the decimal form, as the digest and the CLI round: 102.925 is $102.93 everywhere (the binary
  // double is a hair below it, and toLocaleString alone would print $102.92).
  const scale = 10 ** digits;
  const rounded = Math.round(Number((value * scale).toFixed(6))) / scale;
  const text = "$" + rounded.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return perHour ? text + "/h" : text;
}

// A dollar cell: null means "price unknown", shown as such (never as $0).
function money(value, opts) {
  const text = usd(value, opts);
  return text === null ? el("span", { class: "unpriced", text: "unpriced", title: "price unknown" }) : text;
}

function count(n) {
  return (n ?? 0).toLocaleString("en-US");
}

function utc(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 16).replace("T", " ");
}

function ago(iso) {
  const d = new Date(iso);
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (!Number.isFinite(s)) return "";
  if (s < 60) return "just now";
  const units = [[86400, "d"], [3600, "h"], [60, "m"]];
  for (const [size, unit] of units) if (s >= size) return `${Math.floor(s / size)}${unit} ago`;
  return "";
}

function sevBadge(severity) {
  return el("span", { class: `sev sev-${severity}`, text: severity });
}

function typeLabel(type) {
  return String(type ?? "").replaceAll("_", " ");
}

function shortActor(actor) {
  // arn:aws:iam::111122223333:user/alice -> user/alice (the full ARN stays in the tooltip)
  const text = String(actor ?? "");
  const tail = text.split(":").pop();
  return tail && tail !== text ? tail : text;
}

// ------------------------------------------------------------------------------------------------ API access

const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  claims: null,
};

function decodeClaims(token) {
  // Display only (who am I, which tenant, when does it expire): the server verifies the signature.
  try {
    const part = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return null;
  }
}

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  const response = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` } });
  if (response.status === 401) {
    signOut("Your session has expired. Sign in again.");
    throw new ApiError(401, "signed out");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.detail);
  return body;
}

function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message ?? "";
  banner.hidden = !message;
}

function reportError(what, error) {
  if (error instanceof ApiError && error.status === 401) return;
  showBanner(`Could not load ${what}: ${error.message}`);
}

// ------------------------------------------------------------------------------------------------ login

async function signIn(event) {
  event.preventDefault();
  const button = $("login-submit");
  const error = $("login-error");
  error.hidden = true;
  button.disabled = true;
  const body = { username: $("login-username").value.trim(), password: $("login-password").value };
  const tenant = $("login-tenant").value.trim();
  if (tenant) body.tenant = tenant;
  try {
    const response = await fetch(ROUTES.login, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (response.status === 401) {
      throw new Error("Wrong username or password. If your username exists in several tenants, name the tenant.");
    }
    if (!response.ok) throw new Error(`Sign-in failed (HTTP ${response.status}).`);
    const { access_token: token } = await response.json();
    sessionStorage.setItem(TOKEN_KEY, token);
    session.token = token;
    $("login-password").value = "";
    start();
  } catch (exc) {
    error.textContent = exc.message;
    error.hidden = false;
    if (tenant) $("login-tenant-box").open = true;
  } finally {
    button.disabled = false;
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.claims = null;
  feed.stop();
  $("app-view").hidden = true;
  $("session").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = message ?? "";
  error.hidden = !message;
  $("login-username").focus();
}

// ------------------------------------------------------------------------------------------------ summary

const state = {
  accounts: [],
  anomalies: { items: [], cursor: null, loading: false },
  resources: { items: [], cursor: null, total: null },
  zombies: { items: [], cursor: null, total: null },
};

async function loadSummary() {
  try {
    const [summary, accounts] = await Promise.all([api(ROUTES.summary), api(ROUTES.accounts)]);
    renderSummary(summary, accounts.items);
  } catch (exc) {
    reportError("the summary", exc);
  }
}

function renderSummary(summary, accounts) {
  const t = summary.totals;
  $("kpi-burn").textContent = usd(t.running_hourly_cost);
  $("kpi-burn-month").textContent = `≈ ${usd(t.running_hourly_cost * HOURS_PER_MONTH, { perHour: false })}/month`;
  $("kpi-running").textContent = count(t.running_resources);
  $("kpi-unpriced").textContent = t.unpriced_running_resources
    ? `${count(t.unpriced_running_resources)} unpriced (not in the total)`
    : "all priced";
  $("kpi-anomalies").textContent = count(t.anomalies_total);
  $("kpi-severities").replaceChildren(
    ...SEVERITIES.filter((s) => s !== "info").map((s) =>
      el("span", { class: `chip sev-c-${s}`, title: s }, el("b", { text: count(t.anomalies[s]) }), ` ${s}`),
    ),
  );
  $("kpi-events").textContent = count(t.cost_events);
  $("kpi-events-sub").textContent = `${count(t.priced_cost_events)} priced · ${count(t.unpriced_cost_events)} unpriced`;
  // Every account the tenant has data for (the filters list the same ones); the table below shows the ones with
  // costs, anomalies or running resources, which can be fewer (an account with only read-only calls).
  $("kpi-accounts").textContent = count(accounts.length);
  $("kpi-created").textContent =
    `${count(summary.accounts.length)} with costs · ${usd(t.created_hourly_cost)} created in all`;

  state.accounts = accounts;
  fillSelect($("f-account"), accounts.map((a) => a.account_id));
  fillSelect($("r-account"), accounts.map((a) => a.account_id));
  const types = [...new Set(accounts.flatMap((a) => a.resource_types))].sort();
  fillSelect($("f-type"), types, typeLabel);
  fillSelect($("r-type"), types, typeLabel);

  const lastEvent = Object.fromEntries(accounts.map((a) => [a.account_id, a.last_event_time]));
  const rows = [...summary.accounts].sort((a, b) => b.running_hourly_cost - a.running_hourly_cost);
  $("accounts-body").replaceChildren(
    ...(rows.length
      ? rows.map((a) =>
          el(
            "tr",
            {},
            el("td", { class: "mono", text: a.account_id }),
            el("td", { class: "num" }, money(a.running_hourly_cost)),
            el("td", { class: "num", text: count(a.running_resources) }),
            el("td", { class: "num", text: count(a.unpriced_running_resources) }),
            el(
              "td",
              { class: "sev-chips" },
              SEVERITIES.filter((s) => a.anomalies[s]).map((s) =>
                el("span", { class: `chip sev-c-${s}` }, el("b", { text: count(a.anomalies[s]) }), ` ${s}`),
              ),
            ),
            el("td", { class: "num", text: count(a.cost_events) }),
            el("td", { text: utc(lastEvent[a.account_id]) }),
          ),
        )
      : [emptyRow(7, "No accounts yet: ingest CloudTrail with `dd0c-cost ingest` or the ingestion service.")]),
  );
}

function fillSelect(select, values, label = (v) => v) {
  const current = select.value;
  select.replaceChildren(el("option", { value: "", text: "all" }), ...values.map((v) => el("option", { value: v, text: label(v) })));
  if (values.includes(current)) select.value = current;
}

function emptyRow(span, text) {
  return el("tr", {}, el("td", { class: "empty-row", colspan: span, text }));
}

// ------------------------------------------------------------------------------------------------ anomalies

function anomalyFilters() {
  return {
    severity: $("f-severity").value,
    account: $("f-account").value,
    resource_type: $("f-type").value,
    // "live only": leave out the history ingested late (backfill); by default both are listed
    backfill: $("f-live").checked ? "false" : undefined,
  };
}

function matchesFilters(anomaly) {
  const f = anomalyFilters();
  if (RANK[anomaly.severity] < RANK[f.severity]) return false;
  if (f.account && anomaly.account_id !== f.account) return false;
  if (f.resource_type && anomaly.resource_type !== f.resource_type) return false;
  if (f.backfill === "false" && anomaly.backfill) return false;
  return true;
}

async function loadAnomalies({ more = false } = {}) {
  const s = state.anomalies;
  if (s.loading) return;
  s.loading = true;
  try {
    const page = await api(ROUTES.anomalies, { ...anomalyFilters(), limit: PAGE, cursor: more ? s.cursor : undefined });
    s.items = more ? s.items.concat(page.items) : page.items;
    s.cursor = page.next_cursor;
    renderAnomalies();
  } catch (exc) {
    reportError("anomalies", exc);
  } finally {
    s.loading = false;
  }
}

function reasonsList(reasons, limit) {
  const shown = limit ? reasons.slice(0, limit) : reasons;
  const list = el(
    "ul",
    { class: "reasons" },
    shown.map((r) => el("li", {}, el("span", { class: "reason-signal", text: r.signal }), r.text)),
  );
  if (limit && reasons.length > limit) list.append(el("li", { class: "muted", text: `+${reasons.length - limit} more` }));
  return list;
}

function anomalyRow(a, { flash = false } = {}) {
  const tags = [];
  if (a.learning) tags.push(el("span", { class: "tag", text: "learning", title: "account still in its cold start" }));
  if (a.backfill) tags.push(el("span", { class: "tag", text: "history", title: "an old event ingested late" }));
  const versus = [];
  if (a.expected_hourly_cost !== null && a.expected_hourly_cost !== undefined) versus.push(`vs ${usd(a.expected_hourly_cost)}`);
  if (a.z !== null && a.z !== undefined) versus.push(`z ${a.z.toFixed(1)}`);
  const row = el(
    "tr",
    { class: flash ? "clickable flash" : "clickable", "data-id": a.id, title: "click for details" },
    el(
      "td",
      { title: ago(a.event_time) },
      utc(a.event_time).slice(0, 10),
      el("div", { class: "muted small", text: utc(a.event_time).slice(11) }),
    ),
    el("td", {}, sevBadge(a.severity), tags.length ? el("div", {}, tags) : null),
    el("td", { class: "mono", text: a.account_id }),
    el(
      "td",
      {},
      typeLabel(a.resource_type),
      el("div", { class: "muted small", text: [a.instance_type, a.region].filter(Boolean).join(" · ") }),
    ),
    el(
      "td",
      { class: "num" },
      el("div", { class: "cost" }, money(a.hourly_cost)),
      el("div", { class: "muted small", text: versus.join(" · ") }),
    ),
    el("td", { class: "clip", title: a.actor, text: shortActor(a.actor) }),
    el("td", { class: "wrap" }, reasonsList(a.reasons, 2)),
  );
  row.addEventListener("click", () => toggleDetail(row, a));
  return row;
}

function toggleDetail(row, a) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("detail")) {
    next.remove();
    return;
  }
  const facts = [
    ["Anomaly", a.id],
    ["Detected", `${utc(a.detected_at)} UTC (event at ${utc(a.event_time)} UTC)`],
    ["Actor", a.actor],
    ["Cost", `${usd(a.hourly_cost) ?? "unpriced"} against ${usd(a.expected_hourly_cost) ?? "no baseline yet"}`],
    ["Baseline", `${a.baseline_n} priced events, σ ${usd(a.baseline_stddev) ?? "–"}`],
    ["CloudTrail eventID", a.event_ids.join(", ")],
    ["Policy", a.policy],
    ["Feed position", String(a.feed_id)],
  ];
  const detail = el(
    "tr",
    { class: "detail" },
    el(
      "td",
      { colspan: 7, class: "wrap" },
      el("dl", { class: "detail-grid" }, facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { class: "mono", text: v })])),
      el("h3", { class: "small muted", text: "Why" }),
      reasonsList(a.reasons),
    ),
  );
  row.after(detail);
}

function renderAnomalies() {
  const s = state.anomalies;
  $("anomalies-body").replaceChildren(
    ...(s.items.length ? s.items.map((a) => anomalyRow(a)) : [emptyRow(7, "No anomalies at this severity. Lower the severity to see more.")]),
  );
  $("anomalies-count").textContent = `${count(s.items.length)} shown${s.cursor ? " (more available)" : ""}`;
  $("anomalies-more").hidden = !s.cursor;
}

function addLiveAnomaly(a) {
  if (!matchesFilters(a)) return;
  const s = state.anomalies;
  if (s.items.some((x) => x.id === a.id)) return;
  if (!s.items.length) $("anomalies-body").replaceChildren();
  s.items.unshift(a);
  $("anomalies-body").prepend(anomalyRow(a, { flash: true }));
  $("anomalies-count").textContent = `${count(s.items.length)} shown${s.cursor ? " (more available)" : ""}`;
}

// ------------------------------------------------------------------------------------------------ resources

// A cursor-paged list kept in state[name]: the first page, or the next one appended ("Load more").
async function loadPaged(name, route, params, more, render) {
  const s = state[name];
  try {
    const page = await api(route, { ...params, cursor: more ? s.cursor : undefined });
    s.items = more ? s.items.concat(page.items) : page.items;
    s.cursor = page.next_cursor;
    s.total = page;
    render();
  } catch (exc) {
    reportError(name, exc);
  }
}

function loadResources({ more = false } = {}) {
  const filters = { state: "running", account: $("r-account").value, resource_type: $("r-type").value, limit: 500 };
  return loadPaged("resources", ROUTES.resources, filters, more, renderResources);
}

function renderResources() {
  const s = state.resources;
  // The API pages by account and id; what a person wants first is what burns the most.
  const rows = [...s.items].sort((a, b) => (b.hourly_cost ?? -1) - (a.hourly_cost ?? -1));
  $("resources-body").replaceChildren(
    ...(rows.length
      ? rows.map((r) =>
          el(
            "tr",
            {},
            el("td", { class: "mono", text: r.account_id }),
            el("td", { class: "mono clip", title: r.resource_id, text: r.resource_id }),
            el("td", { text: typeLabel(r.resource_type) }),
            el("td", { text: r.instance_type ?? "–" }),
            el("td", { text: r.region }),
            el("td", { class: "num" }, money(r.hourly_cost)),
            el("td", { class: "num" }, r.hourly_cost === null ? "–" : usd(r.hourly_cost * HOURS_PER_MONTH, { perHour: false })),
            el("td", { title: ago(r.opened_at), text: utc(r.opened_at) }),
            el("td", { class: "mono small clip", title: r.opened_by_event, text: r.opened_by_event }),
          ),
        )
      : [emptyRow(9, "Nothing running that dd0c/cost has seen start.")]),
  );
  const t = s.total;
  $("resources-total").textContent = t
    ? `${count(t.resource_count)} running · ${usd(t.total_hourly_cost)}` +
      (t.unpriced_running ? ` + ${count(t.unpriced_running)} unpriced` : "")
    : "";
  $("resources-count").textContent = t ? `${count(s.items.length)} of ${count(t.resource_count)} shown, most expensive first` : "";
  $("resources-more").hidden = !s.cursor;
}

// ------------------------------------------------------------------------------------------------ zombies

const CHECKS = Object.freeze({
  unattached_ebs_volume: "Unattached volume",
  stopped_instance_volume: "Volume of a stopped instance",
  stopped_instance: "Long-stopped instance",
  orphaned_ebs_snapshot: "Orphaned snapshot",
  unassociated_eip: "Unused Elastic IP",
  idle_nat_gateway: "Idle NAT gateway",
  idle_load_balancer: "Idle load balancer",
  idle_ec2_instance: "Idle EC2 instance",
  idle_rds_instance: "Idle RDS instance",
});

function days(m) {
  return Math.round((Date.parse(m.window_end) - Date.parse(m.window_start)) / 86400000);
}

// One line a person can check against the console; the whole evidence is in GET /v1/zombies/{id}.
function zombieEvidence(z) {
  const e = z.evidence ?? {};
  const parts = [];
  if (e.size_gib) parts.push(`${count(e.size_gib)} GiB${e.volume_type ? " " + e.volume_type : ""}`);
  if (e.age_days !== undefined && e.age_days !== null) parts.push(`${count(Math.round(e.age_days))} days old`);
  if (e.source_volume_exists === false) parts.push("its volume is gone, no AMI uses it");
  if (e.public_ip !== undefined) parts.push(`${e.public_ip ?? "address"} associated with nothing`);
  for (const m of [e.metric, ...(Array.isArray(e.metrics) ? e.metrics : [])]) {
    if (m && m.name) parts.push(`${m.name} ${String(m.statistic).toLowerCase()} ${count(m.total)} over ${days(m)} days`);
  }
  return parts.join(" · ") || (CHECKS[z.check] ?? z.check);
}

function loadZombies({ more = false } = {}) {
  return loadPaged("zombies", ROUTES.zombies, { status: "open", limit: 200 }, more, renderZombies);
}

function renderZombies() {
  const s = state.zombies;
  const rows = [...s.items].sort((a, b) => (b.monthly_waste_usd ?? -1) - (a.monthly_waste_usd ?? -1));
  $("zombies-body").replaceChildren(
    ...(rows.length
      ? rows.map((z) =>
          el(
            "tr",
            {},
            el("td", { class: "mono", text: z.account_id }),
            el("td", { title: z.check, text: CHECKS[z.check] ?? z.check }),
            el("td", { class: "mono clip", title: z.resource_id, text: z.resource_id }),
            el("td", { text: z.region }),
            el("td", { class: "num" }, money(z.monthly_waste_usd, { perHour: false })),
            el("td", { class: "small", title: z.evidence?.synthetic ?? "", text: zombieEvidence(z) }),
            el("td", { title: ago(z.first_seen), text: utc(z.first_seen) }),
          ),
        )
      : [emptyRow(7, "No open zombies. The hunter scans registered accounts daily (`dd0c-cost zombies scan`).")]),
  );
  const t = s.total;
  $("zombies-total").textContent = t
    ? `${count(t.count)} open · ${usd(t.monthly_waste_usd, { perHour: false })}/month` +
      (t.unpriced ? ` + ${count(t.unpriced)} unpriced` : "")
    : "";
  $("zombies-count").textContent = t ? `${count(s.items.length)} of ${count(t.count)} shown, most wasteful first` : "";
  $("zombies-more").hidden = !s.cursor;
}

// ------------------------------------------------------------------------------------------------ live feed

// WS /v1/feed: first message {"type":"auth","token":...,"after":<last feed_id>} (the token stays out of URLs), then
// {"type":"anomaly","feed_id":N,"anomaly":{...}} in feed_id order. Close 1008: token bad or expired; 1013: we fell
// behind; anything else: reconnect with backoff. Reconnecting with `after` misses nothing.
const feed = {
  socket: null,
  last: null,
  retry: 0,
  timer: null,
  stopped: true,
  refreshTimer: null,

  start() {
    this.stopped = false;
    this.connect();
  },

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.last = null;
    $("feed-list").replaceChildren();
    $("feed-empty").hidden = false;
    pill("off", "feed off");
  },

  connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${ROUTES.feed}`);
    this.socket = socket;
    pill("connecting", "connecting…");
    socket.addEventListener("open", () => {
      const hello = { type: "auth", token: session.token };
      if (this.last !== null) hello.after = this.last;
      socket.send(JSON.stringify(hello));
      this.retry = 0;
      pill("live", "live");
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  },

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type !== "anomaly") return;
    this.last = message.feed_id;
    $("feed-position").textContent = `feed_id ${message.feed_id}`;
    showFeedItem(message.anomaly);
    addLiveAnomaly(message.anomaly);
    // A new anomaly usually comes with new cost events and resources: refresh the numbers once things settle.
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      loadSummary();
      loadResources();
    }, 1500);
  },

  closed(socket, event) {
    if (socket !== this.socket || this.stopped) return;
    if (event.code === 1008) {
      signOut(`The live feed closed: ${event.reason || "token rejected"}. Sign in again.`);
      return;
    }
    const delay = event.code === 1013 ? 0 : Math.min(30000, 1000 * 2 ** this.retry++);
    pill("down", delay ? `reconnecting in ${Math.round(delay / 1000)}s` : "catching up…");
    this.timer = setTimeout(() => this.connect(), delay);
  },
};

function pill(stateName, text) {
  $("feed-pill").dataset.state = stateName;
  $("feed-pill-text").textContent = text;
}

function showFeedItem(a) {
  const list = $("feed-list");
  $("feed-empty").hidden = true;
  const first = a.reasons[0];
  list.prepend(
    el(
      "li",
      { class: "new" },
      el(
        "div",
        { class: "feed-line1" },
        el("span", {}, sevBadge(a.severity), " ", typeLabel(a.resource_type)),
        el("span", { class: "feed-cost" }, money(a.hourly_cost)),
      ),
      el("div", { class: "feed-line2" }, `${a.account_id} · ${a.region ?? "–"} · ${shortActor(a.actor)} · ${utc(a.event_time)} UTC`),
      first ? el("div", { class: "feed-reason", text: first.text }) : null,
    ),
  );
  while (list.children.length > FEED_KEEP) list.lastElementChild.remove();
}

// ------------------------------------------------------------------------------------------------ wiring

function start() {
  session.claims = decodeClaims(session.token);
  if (!session.claims || (session.claims.exp && session.claims.exp * 1000 <= Date.now())) {
    signOut(session.token ? "Your session has expired. Sign in again." : "");
    return;
  }
  $("who").textContent = `${session.claims.sub} · tenant ${session.claims.tenant}`;
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("session").hidden = false;
  showBanner("");
  loadSummary();
  loadAnomalies().then(openLinkedAnomaly);
  loadResources();
  loadZombies();
  feed.start();
}

// Slack alerts and the digest link here as /#anomaly=<id>: that anomaly goes to the top of the table, opened.
async function openLinkedAnomaly() {
  const linked = /^#anomaly=([0-9a-f-]{36})$/i.exec(window.location.hash);
  if (!linked) return;
  let a;
  try {
    a = await api(`${ROUTES.anomalies}/${linked[1]}`);
  } catch (exc) {
    reportError(`the linked anomaly ${linked[1]}`, exc);
    return;
  }
  const body = $("anomalies-body");
  for (const old of body.querySelectorAll("tr[data-id]")) {
    if (old.dataset.id === a.id) {
      const next = old.nextElementSibling;
      if (next && next.classList.contains("detail")) next.remove();
      old.remove();
    }
  }
  const row = anomalyRow(a, { flash: true });
  body.prepend(row);
  toggleDetail(row, a);
  row.scrollIntoView({ block: "center" });
}

function init() {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => signOut(""));
  for (const id of ["f-severity", "f-account", "f-type", "f-live"]) {
    $(id).addEventListener("change", () => loadAnomalies());
  }
  $("anomalies-refresh").addEventListener("click", () => {
    loadSummary();
    loadAnomalies();
    loadResources();
  });
  $("anomalies-more").addEventListener("click", () => loadAnomalies({ more: true }));
  for (const id of ["r-account", "r-type"]) $(id).addEventListener("change", () => loadResources());
  $("resources-more").addEventListener("click", () => loadResources({ more: true }));
  $("zombies-more").addEventListener("click", () => loadZombies({ more: true }));
  for (const form of ["anomaly-filters", "resource-filters"]) $(form).addEventListener("submit", (e) => e.preventDefault());
  window.addEventListener("hashchange", () => {
    if (session.token) openLinkedAnomaly();
  });
  if (session.token) start();
  else signOut("");
}

init();
