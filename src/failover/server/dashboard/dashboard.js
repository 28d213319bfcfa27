/* The failover dashboard: polls the gateway's admin API and draws routes, breakers, health,
   trends and recent events. Plain DOM with keyed updates and inline SVG: no framework, no
   build step, nothing loaded from anywhere but the gateway. */
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const INTERVAL_MS = clamp(Number(params.get("interval")) || 1500, 500, 10000);
  const FETCH_TIMEOUT_MS = Math.max(4000, 2 * INTERVAL_MS);
  const TREND_WINDOW_S = 300; // sparklines show at most the last five minutes...
  const TREND_MIN_SPAN_S = 60; // ...and at least one, so a fresh page does not zoom in on noise
  const SHOWN_EVENTS = 60;
  const KEPT_EVENTS = 300;
  const SUCCESS_WARN = 0.98;
  const SUCCESS_BAD = 0.9;
  const KEY_STORE = "failover.dashboard.key";
  const SVG_NS = "http://www.w3.org/2000/svg";

  const BREAKER = {
    closed: { label: "CLOSED", tone: "ok", text: "closed: taking traffic" },
    half_open: { label: "HALF-OPEN", tone: "warn", text: "half-open: admitting probe calls" },
    open: { label: "OPEN", tone: "bad", text: "open: skipped until it is probed again" },
    forced_open: { label: "FORCED OPEN", tone: "forced", text: "forced open: drained by hand" },
    disabled: { label: "DISABLED", tone: "off", text: "disabled: always admits, never trips" },
  };
  const LEVEL = {
    ok: { title: "All healthy", colour: "#2f9e66" },
    degraded: { title: "Degraded", colour: "#d18b00" },
    outage: { title: "Outage", colour: "#d64545" },
    unknown: { title: "Unknown", colour: "#8a94a3" },
  };

  const state = {
    key: readKey(),
    keyFromUrl: Boolean(params.get("key")),
    routes: null, // the last good status, normalised
    skew: 0, // server wall clock minus ours, in seconds, when the server tells its time
    events: new Map(), // event key -> event
    trends: new Map(), // deployment key -> [{t, ok, p50, p95}]
    lastOk: 0, // Date.now() of the last good poll
    lastOkAt: 0, // the same moment on the gateway's clock, for display
    polls: 0,
    eventsFeed: true, // false once the gateway said it has no /admin/events
    problem: null, // {kind, title, detail} while the last poll failed
    timer: 0,
    admission: null, // the gateway's own load (status.gateway.admission), if it reports one
  };
  const ui = {};

  document.addEventListener("DOMContentLoaded", start);

  function start() {
    for (const id of [
      "overall", "overall-title", "overall-detail", "live", "updated", "banner", "banner-title",
      "banner-detail", "key-form", "key-input", "routes", "routes-placeholder", "events",
      "events-empty", "favicon", "interval", "sum-routes", "sum-deployments", "sum-open",
      "sum-inflight", "sum-events", "sum-shed",
    ]) {
      ui[id] = document.getElementById(id);
    }
    ui.cards = new Map(); // route name -> card
    ui.eventItems = new Map(); // group key -> <li>
    ui.interval.textContent = seconds(INTERVAL_MS / 1000);
    ui["key-form"].addEventListener("submit", onKeySubmit);
    poll();
  }

  // -- polling ----------------------------------------------------------------------------

  async function poll() {
    clearTimeout(state.timer);
    try {
      const [status, events] = await Promise.all([
        getJSON("status"),
        state.eventsFeed ? getJSON("events").catch(eventsFailed) : null,
      ]);
      accept(status, events);
      state.problem = null;
    } catch (err) {
      state.problem = describe(err);
    } finally {
      state.timer = setTimeout(poll, INTERVAL_MS);
    }
    render();
    // a counter tests (and the curious) can wait on: "the next refresh has happened"
    document.documentElement.dataset.polls = String((state.polls += 1));
  }

  function eventsFailed(err) {
    if (err.kind === "auth") throw err;
    // the feed is a bonus (status carries recent events too): a gateway without it is not
    // asked again, so the console does not fill with 404s
    if (err.reason === 404) state.eventsFeed = false;
    return null;
  }

  async function getJSON(path) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    const headers = { Accept: "application/json" };
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    const url = new URL(`../admin/${path}`, location.href);
    try {
      const res = await fetch(url, { headers, cache: "no-store", signal: controller.signal });
      if (res.status === 401 || res.status === 403) throw failure("auth", res.status);
      if (res.status >= 502 && res.status <= 504) throw failure("unreachable", res.status);
      if (!res.ok) throw failure("http", res.status, url.pathname);
      try {
        return await res.json();
      } catch {
        throw failure("http", "not JSON", url.pathname);
      }
    } catch (err) {
      if (err.kind) throw err;
      throw failure("unreachable", controller.signal.aborted ? "timeout" : "network");
    } finally {
      clearTimeout(timer);
    }
  }

  function failure(kind, reason, path = "") {
    return Object.assign(new Error(`${kind}: ${reason}`), { kind, reason, path });
  }

  function describe(err) {
    const retry = `Retrying every ${seconds(INTERVAL_MS / 1000)}.`;
    const since = state.lastOk
      ? ` Showing the state as of ${clockTime(state.lastOkAt)} (${ago(state.lastOk / 1000, Date.now() / 1000)}).`
      : "";
    if (err.kind === "auth") {
      const refused = state.key ? "refused" : "required";
      const origin = state.key && state.keyFromUrl ? "The key from the page address was not accepted. " : "";
      return {
        kind: "auth",
        title: `Admin key ${refused}`,
        detail:
          `${origin}The gateway answered ${err.reason} to /admin/status. ` +
          "Enter the admin key (kept in this tab only) or open the page with ?key=….",
      };
    }
    if (err.kind === "unreachable") {
      const why = {
        network: "the connection failed",
        timeout: `no answer within ${seconds(FETCH_TIMEOUT_MS / 1000)}`,
      }[err.reason] || `a proxy answered HTTP ${err.reason}`;
      return {
        kind: "unreachable",
        title: "Gateway unreachable",
        detail: `Cannot reach the gateway at ${location.host}: ${why}.${since} ${retry}`,
      };
    }
    if (err.kind === "http") {
      const answer = typeof err.reason === "number" ? `HTTP ${err.reason}` : err.reason;
      return {
        kind: "error",
        title: "Unexpected answer from the gateway",
        detail: `GET ${err.path} answered ${answer}.${since} ${retry}`,
      };
    }
    // a bug in this page, or an answer it cannot read: say so, and let it reach the console
    window.reportError(err);
    return {
      kind: "error",
      title: "The dashboard could not read the gateway's answer",
      detail: `${err.message}. ${retry}`,
    };
  }

  function onKeySubmit(event) {
    event.preventDefault();
    const key = ui["key-input"].value.trim();
    if (!key) return;
    state.key = key;
    state.keyFromUrl = false;
    ui["key-input"].value = "";
    try {
      sessionStorage.setItem(KEY_STORE, key);
    } catch {
      // storage disabled: the key lives as long as the page
    }
    poll();
  }

  function readKey() {
    const fromUrl = params.get("key");
    try {
      if (fromUrl) sessionStorage.setItem(KEY_STORE, fromUrl);
      return fromUrl || sessionStorage.getItem(KEY_STORE) || "";
    } catch {
      return fromUrl || "";
    }
  }

  // -- turning answers into state -------------------------------------------------------------

  function accept(status, events) {
    const serverNow = num(status.at ?? status.now ?? status.generated_at);
    if (serverNow !== null) state.skew = serverNow - Date.now() / 1000;
    state.routes = normaliseRoutes(status);
    state.draining = status.status === "draining";
    state.admission = (status.gateway && status.gateway.admission) || null;
    state.lastOk = Date.now();
    state.lastOkAt = now();
    recordTrends(state.routes, now());
    mergeEvents(status.events);
    mergeEvents(events && (Array.isArray(events) ? events : events.events));
  }

  /* The shape is observability/status.py's snapshot(); the older flat shapes (breaker as a
     string, latency_ms {p50, p95}, deployments listed by name beside a top-level
     "deployments" map) are read too, so the page survives either side changing first. */
  function normaliseRoutes(raw) {
    const source = (raw && raw.routes) || {};
    const shared = (raw && !Array.isArray(raw.deployments) && raw.deployments) || {};
    const entries = Array.isArray(source) ? source.map((r) => [r.name, r]) : Object.entries(source);
    return entries.map(([name, route]) => {
      const listed = Array.isArray(route.deployments) ? route.deployments : [];
      const deployments = listed.filter((d) => typeof d === "string" || (d && typeof d === "object")).map((d) =>
        normaliseDeployment(name, typeof d === "string" ? { name: d, ...(shared[d] || {}) } : d),
      );
      const r = {
        name: String(name),
        strategy: route.strategy ? String(route.strategy) : "",
        fallbacks: (route.fallbacks || []).map(String),
        hedged: Boolean(route.hedge ?? route.hedging),
        deployments,
      };
      return Object.assign(r, routeLevel(r, route.state));
    });
  }

  function normaliseDeployment(route, d) {
    const b = d.breaker && typeof d.breaker === "object" ? d.breaker : { state: d.breaker ?? d.state };
    const latency = d.latency_ms && typeof d.latency_ms === "object" ? d.latency_ms : {};
    const probe = d.health && typeof d.health === "object" ? d.health : null;
    const dep = {
      key: `${route}\u0000${d.name}`,
      name: String(d.name ?? "?"),
      model: d.model ? String(d.model) : "",
      breaker: String(b.state || "closed").toLowerCase().replace(/[- ]/g, "_"),
      openRemaining: num(b.open_remaining_s ?? d.open_for_s),
      windowFailures: num(b.window_failures),
      windowCalls: num(b.window_calls),
      healthy: typeof d.healthy === "boolean" ? d.healthy : null,
      probed: "health" in d ? probe !== null : d.healthy !== undefined,
      probe,
      cooling: num(d.cooldown_remaining_s ?? d.cooling_down_s ?? d.cooldown_s) || 0,
      available: typeof d.available === "boolean" ? d.available : null,
      successRate: num(d.success_rate),
      samples: num(d.samples),
      p50: num(d.p50_ms ?? latency.p50),
      p95: num(d.p95_ms ?? latency.p95),
      ttft: num(d.ttft_ms ?? d.ttft_ewma_ms),
      inFlight: num(d.in_flight) || 0,
      lastError: d.last_error ? String(d.last_error) : "",
    };
    if (d.cooling_down === true && !dep.cooling) dep.cooling = 0.001;
    dep.availability = availability(dep);
    return dep;
  }

  /** How usable a deployment is right now, in the router's eyes. */
  function availability(d) {
    if (d.breaker === "open" || d.breaker === "forced_open") return "down";
    if (d.healthy === false) return "down";
    if (d.cooling > 0) return "cooling";
    if (d.breaker === "half_open") return "probing";
    if (d.successRate !== null && d.successRate < SUCCESS_BAD) return "shaky";
    return "up";
  }

  function usable(d) {
    if (d.available !== null) return d.available; // the gateway knows best (e.g. half-open, probe slot taken)
    return d.availability === "up" || d.availability === "shaky" || d.availability === "probing";
  }

  function routeLevel(route, given) {
    const available = route.deployments.filter(usable).length;
    const total = route.deployments.length;
    let level = "ok";
    if (total && !available) level = "down";
    else if (route.deployments.some((d) => d.availability !== "up")) level = "degraded";
    if (given === "down" || (given === "degraded" && level === "ok")) level = given;
    return { level, available, total };
  }

  function overall(routes) {
    if (!routes.length) {
      return { level: "unknown", title: "No routes", detail: "The gateway has no routes configured" };
    }
    const byName = new Map(routes.map((r) => [r.name, r]));
    const down = routes.filter((r) => r.level === "down");
    const stranded = down.filter((r) => !covered(r, byName, new Set()));
    const deps = routes.flatMap((r) => r.deployments);
    if (stranded.length) {
      const names = stranded.map((r) => r.name).join(", ");
      const verb = stranded.length === 1 ? "has" : "have";
      return { level: "outage", title: "Outage", detail: `${names} ${verb} no deployment or fallback left` };
    }
    const problems = [];
    const counted = uniqueByName(deps);
    const count = (pred, one, many) => {
      const n = counted.filter(pred).length;
      if (n) problems.push(`${n} ${n === 1 ? one : many}`);
    };
    count((d) => d.breaker === "open", "breaker open", "breakers open");
    count((d) => d.breaker === "forced_open", "deployment drained", "deployments drained");
    count((d) => d.breaker === "half_open", "breaker half-open", "breakers half-open");
    count((d) => d.healthy === false, "deployment unhealthy", "deployments unhealthy");
    count((d) => d.cooling > 0, "deployment rate-limited", "deployments rate-limited");
    count((d) => d.availability === "shaky", "deployment failing often", "deployments failing often");
    for (const r of down) problems.push(`${r.name} falls back to ${r.fallbacks.join(", ")}`);
    if (state.draining) problems.push("gateway draining");
    if (problems.length) return { level: "degraded", title: "Degraded", detail: problems.join(" · ") };
    const n = counted.length;
    return {
      level: "ok",
      title: "All healthy",
      detail: `${plural(routes.length, "route")}, ${plural(n, "deployment")} answering normally`,
    };
  }

  function covered(route, byName, seen) {
    if (route.level !== "down") return true;
    seen.add(route.name);
    return route.fallbacks.some((f) => byName.has(f) && !seen.has(f) && covered(byName.get(f), byName, seen));
  }

  function uniqueByName(deps) {
    const seen = new Map();
    for (const d of deps) if (!seen.has(d.name)) seen.set(d.name, d);
    return [...seen.values()];
  }

  function recordTrends(routes, t) {
    const live = new Set();
    for (const route of routes) {
      for (const d of route.deployments) {
        live.add(d.key);
        const points = state.trends.get(d.key) || [];
        points.push({ t, ok: d.successRate, p50: d.p50, p95: d.p95 });
        while (points.length && points[0].t < t - TREND_WINDOW_S) points.shift();
        state.trends.set(d.key, points);
      }
    }
    for (const key of state.trends.keys()) if (!live.has(key)) state.trends.delete(key);
  }

  function mergeEvents(list) {
    if (!Array.isArray(list)) return;
    for (const e of list) {
      if (!e || typeof e !== "object") continue;
      const ev = {
        type: String(e.type || "event"),
        at: num(e.at) ?? now(),
        message: String(e.message || ""),
        route: e.route ? String(e.route) : null,
        deployment: e.deployment ? String(e.deployment) : null,
        data: e.data && typeof e.data === "object" ? e.data : {},
        count: num(e.count) || 1, // the gateway folds repeats into one entry...
      };
      ev.last = num(e.last_at) ?? ev.at; // ...and says when the latest one happened
      // ids are stable while a folded entry's count grows; old gateways send none
      ev.key = e.id !== undefined ? `#${e.id}` : [ev.at, ev.type, ev.route, ev.deployment, ev.message].join("\u0000");
      state.events.set(ev.key, ev);
    }
    if (state.events.size > KEPT_EVENTS) {
      const sorted = [...state.events.values()].sort((a, b) => b.last - a.last);
      state.events = new Map(sorted.slice(0, KEPT_EVENTS).map((e) => [e.key, e]));
    }
  }

  // -- rendering ----------------------------------------------------------------------------

  function render() {
    const t = now();
    const stale = Boolean(state.problem);
    document.body.classList.toggle("stale", stale && Boolean(state.routes));
    renderBanner();
    const summary = state.routes ? overall(state.routes) : null;
    renderHeader(summary);
    if (state.routes) {
      renderSummary(state.routes, t);
      renderRoutes(state.routes, t);
    } else {
      ui["routes-placeholder"].textContent = state.problem
        ? "No data yet: see the message above."
        : "Loading routes…";
    }
    renderEvents(t);
  }

  function renderBanner() {
    const p = state.problem;
    const banner = ui.banner;
    const wasAuth = banner.dataset.kind === "auth" && !banner.hidden;
    banner.hidden = !p;
    banner.dataset.kind = p ? p.kind : "";
    if (!p) return;
    setText(ui["banner-title"], p.title);
    setText(ui["banner-detail"], p.detail);
    ui["key-form"].hidden = p.kind !== "auth";
    if (p.kind === "auth" && !wasAuth) ui["key-input"].focus();
  }

  function renderHeader(summary) {
    let view = summary || { level: "unknown", title: "Connecting…", detail: "Waiting for the gateway" };
    if (state.problem) {
      const titles = { auth: "Not signed in", unreachable: "Gateway unreachable", error: "Unknown" };
      view = { level: "unknown", title: titles[state.problem.kind], detail: "State unknown: see the message below" };
    }
    ui.overall.dataset.status = view.level;
    setText(ui["overall-title"], view.title);
    setText(ui["overall-detail"], view.detail);
    document.title = `${view.title} · failover`;
    const icon = faviconFor(view.level);
    if (ui.favicon.getAttribute("href") !== icon) ui.favicon.setAttribute("href", icon);

    if (state.lastOk) {
      const when = clockTime(state.lastOkAt);
      const lag = state.problem ? ` · ${ago(state.lastOk / 1000, Date.now() / 1000)}` : "";
      setText(ui.updated, `Updated ${when}${lag}`);
    }
    ui.live.dataset.live = state.problem ? "down" : state.lastOk ? "ok" : "waiting";
    if (!state.problem && state.lastOk && !reducedMotion()) {
      ui.live.animate(
        [{ transform: "scale(1.9)", opacity: 0.35 }, { transform: "scale(1)", opacity: 1 }],
        { duration: 700, easing: "ease-out" },
      );
    }
  }

  function faviconFor(level) {
    const fill = LEVEL[level].colour;
    const svg = `<svg xmlns='${SVG_NS}' viewBox='0 0 16 16'><circle cx='8' cy='8' r='6' fill='${fill}'/></svg>`;
    return `data:image/svg+xml,${encodeURIComponent(svg)}`;
  }

  function renderSummary(routes, t) {
    const deps = uniqueByName(routes.flatMap((r) => r.deployments));
    const serving = routes.filter((r) => r.level !== "down").length;
    const available = deps.filter(usable).length;
    const open = deps.filter((d) => d.breaker === "open" || d.breaker === "forced_open").length;
    const inFlight = deps.reduce((sum, d) => sum + d.inFlight, 0);
    let recent = 0;
    for (const e of state.events.values()) if (e.last >= t - 300) recent += e.at >= t - 300 ? e.count : 1;
    tile(ui["sum-routes"], `${serving} / ${routes.length}`, serving < routes.length ? "bad" : "ok");
    tile(ui["sum-deployments"], `${available} / ${deps.length}`, available < deps.length ? "warn" : "ok");
    tile(ui["sum-open"], String(open), open ? "bad" : "ok");
    tile(ui["sum-inflight"], String(inFlight), "");
    tile(ui["sum-events"], String(recent), "");
    renderShed(state.admission);
  }

  /* The gateway's own load (its /admin/status "gateway.admission"): requests it answered with
     503 and Retry-After instead of queueing them, whether it is shedding now, and why. A
     router without a gateway in front reports none: the tile stays hidden. */
  function renderShed(admission) {
    const node = ui["sum-shed"];
    node.parentElement.hidden = !admission;
    if (!admission) return;
    const total = num(admission.shed && admission.shed.total) ?? 0;
    tile(node, total.toLocaleString("en-US"), admission.shedding ? "warn" : "ok");
    const lag = num(admission.smoothed_lag_ms);
    const parts = [admission.shedding ? "Shedding now" : "Not shedding"];
    const since = num(admission.shedding_for_s);
    if (admission.shedding && since !== null) parts[0] += ` for ${seconds(since)}`;
    if (lag !== null) parts.push(`event loop ${ms(lag)} late`);
    for (const [key, what] of [["line", "whole requests"], ["stream_line", "streams"]]) {
      const line = admission[key];
      if (line) parts.push(`${num(line.in_flight) ?? 0} of at most ${num(line.limit) ?? 0} ${what} taken on`);
    }
    const wait = num(admission.retry_after_s);
    if (admission.shedding && wait !== null) parts.push(`clients told to retry after ${seconds(wait)} or more`);
    const pending = num(admission.told_to_retry);
    if (admission.shedding && pending) parts.push(`${pending.toLocaleString("en-US")} of them not due back yet`);
    node.parentElement.title = parts.join("; ");
  }

  function tile(node, text, tone) {
    setText(node, text);
    node.parentElement.dataset.tone = tone;
  }

  function renderRoutes(routes, t) {
    const container = ui.routes;
    ui["routes-placeholder"].hidden = routes.length > 0;
    if (!routes.length) ui["routes-placeholder"].textContent = "The gateway has no routes configured.";
    const seen = new Set();
    let anchor = ui["routes-placeholder"].nextSibling;
    for (const route of routes) {
      seen.add(route.name);
      let card = ui.cards.get(route.name);
      if (!card) {
        card = routeCard(route.name);
        ui.cards.set(route.name, card);
      }
      updateRouteCard(card, route, t);
      if (anchor !== card.root) container.insertBefore(card.root, anchor);
      anchor = card.root.nextSibling;
    }
    for (const [name, card] of ui.cards) {
      if (!seen.has(name)) {
        card.root.remove();
        ui.cards.delete(name);
      }
    }
  }

  function routeCard(name) {
    const refs = {
      strategy: h("span", { class: "chip" }),
      hedged: h("span", { class: "chip", title: "Slow calls are raced against the next deployment" }, "hedged"),
      fallbacks: h("span", { class: "route-fallbacks" }),
      status: h("span", { class: "route-status" }),
      rows: new Map(),
    };
    refs.body = h(
      "div",
      { class: "table", role: "table", "aria-label": `Deployments of ${name}` },
      h(
        "div",
        { class: "row row-head", role: "row" },
        [
          ["Deployment", ""], ["Breaker", ""], ["Health", ""], ["Success", "num"],
          ["Latency p50 / p95", "num"], ["In flight", "num"], ["Success · latency trend", "trends"],
        ].map(([label, extra]) => h("span", { class: `cell ${extra}`, role: "columnheader" }, label)),
      ),
    );
    refs.root = h(
      "article",
      { class: "card route", "data-route": name },
      h(
        "header",
        { class: "card-head route-head" },
        h("h2", { class: "route-name" }, name),
        refs.strategy,
        refs.hedged,
        refs.fallbacks,
        refs.status,
      ),
      refs.body,
    );
    return refs;
  }

  function updateRouteCard(card, route, t) {
    card.root.dataset.level = route.level;
    setText(card.strategy, route.strategy);
    card.strategy.hidden = !route.strategy;
    card.hedged.hidden = !route.hedged;
    card.fallbacks.replaceChildren(
      ...(route.fallbacks.length ? ["falls back to ", ...joinNodes(route.fallbacks.map((f) => h("b", {}, f)))] : []),
    );
    const statusText = route.level === "down"
      ? "no deployment available"
      : `${route.available} of ${plural(route.total, "deployment")} available`;
    setText(card.status, statusText);
    card.status.dataset.level = route.level;

    const seen = new Set();
    let anchor = card.body.firstChild.nextSibling;
    for (const dep of route.deployments) {
      seen.add(dep.key);
      let row = card.rows.get(dep.key);
      if (!row) {
        row = deploymentRow(dep.name);
        card.rows.set(dep.key, row);
      }
      updateRow(row, dep, t);
      if (anchor !== row.root) card.body.insertBefore(row.root, anchor);
      anchor = row.root.nextSibling;
    }
    for (const [key, row] of card.rows) {
      if (!seen.has(key)) {
        row.root.remove();
        card.rows.delete(key);
      }
    }
  }

  function deploymentRow(name) {
    const r = {
      badge: h("span", { class: "badge" }),
      breakerSub: h("span", { class: "sub" }),
      health: h("span", { class: "health" }, h("i", { class: "dot", "aria-hidden": "true" }), h("span")),
      healthSub: h("span", { class: "sub" }),
      success: h("span", { class: "val" }),
      latency: h("span", { class: "val" }),
      ttft: h("span", { class: "sub" }),
      inFlight: h("span", { class: "val" }),
      sparkOk: sparkline("success"),
      sparkLatency: sparkline("latency"),
      errorText: h("code"),
      model: h("span", { class: "sub model" }),
    };
    const lastError = h("span", { class: "lbl-inline" }, "last error");
    r.error = h("div", { class: "row-error", role: "note" }, lastError, r.errorText);
    const cell = (label, extra, ...kids) =>
      h("div", { class: `cell ${extra}`, role: "cell" }, h("span", { class: "lbl" }, label), ...kids);
    r.root = h(
      "div",
      { class: "row dep", role: "row", "data-deployment": name },
      h(
        "div",
        { class: "cell name", role: "cell" },
        h("span", { class: "dep-name", title: name }, breakable(name)),
        r.model,
      ),
      cell("Breaker", "breaker", r.badge, r.breakerSub),
      cell("Health", "health-cell", r.health, r.healthSub),
      cell("Success", "num", r.success),
      cell("Latency p50 / p95", "num", r.latency, r.ttft),
      cell("In flight", "num", r.inFlight),
      h(
        "div",
        { class: "cell trends", role: "cell" },
        h("figure", { class: "trend" }, r.sparkOk.svg, h("figcaption", {}, "success")),
        h("figure", { class: "trend" }, r.sparkLatency.svg, h("figcaption", {}, "latency")),
      ),
      r.error,
    );
    return r;
  }

  function updateRow(r, d, t) {
    const info = BREAKER[d.breaker] || { label: d.breaker.toUpperCase(), tone: "off", text: d.breaker };
    r.root.dataset.state = d.breaker;
    r.root.dataset.availability = d.availability;
    // "openai/gpt-4o" already says "gpt-4o"; show the model only when the name hides it
    setText(r.model, d.model && !d.name.endsWith(d.model) ? d.model : "");
    setText(r.badge, info.label);
    r.badge.dataset.state = d.breaker;
    r.badge.dataset.tone = info.tone;
    const recent = d.windowCalls ? `; ${d.windowFailures} of the last ${d.windowCalls} calls failed` : "";
    r.badge.title = `Breaker ${info.text}${recent}`;
    let breakerSub = "";
    if (d.breaker === "open" && d.openRemaining !== null) breakerSub = `probe in ${seconds(d.openRemaining)}`;
    else if (d.breaker === "closed" && d.windowFailures) breakerSub = `${d.windowFailures}/${d.windowCalls} failed`;
    setText(r.breakerSub, breakerSub);

    let health = ["up", "healthy"];
    if (d.healthy === false) health = ["down", "unhealthy"];
    else if (d.healthy === null || !d.probed) health = ["unknown", "not probed"];
    r.health.dataset.health = health[0];
    setText(r.health.lastChild, health[1]);
    r.health.title = probeText(d);
    setText(r.healthSub, d.cooling > 0 ? `cooling ${seconds(d.cooling)}` : "");
    r.healthSub.dataset.tone = d.cooling > 0 ? "warn" : "";
    r.healthSub.title = d.cooling > 0 ? "Rate-limited: skipped until its Retry-After has passed" : "";

    setText(r.success, d.successRate === null ? "–" : percent(d.successRate));
    r.success.dataset.tone = successTone(d.successRate);
    setText(r.latency, latencyPair(d.p50, d.p95));
    setText(r.ttft, d.ttft === null ? "" : `first token ${ms(d.ttft)}`);
    setText(r.inFlight, String(d.inFlight));
    r.inFlight.dataset.tone = d.inFlight ? "" : "idle";

    const points = state.trends.get(d.key) || [];
    drawSuccess(r.sparkOk, points, t);
    drawLatency(r.sparkLatency, points, t);

    r.error.hidden = !d.lastError;
    setText(r.errorText, d.lastError);
    r.errorText.title = d.lastError;
  }

  function probeText(d) {
    const p = d.probe;
    if (!p) return d.probed ? "" : "No active health checks for this deployment: only real calls are watched";
    const last = p.last
      ? `last probe ${p.last.ok ? "passed" : `failed (${p.last.outcome})`} ${ago(p.last.at, now())}`
      : "not probed yet";
    return `${p.probe || "probe"}: ${last}; ${p.probes ?? 0} probes`;
  }

  // -- sparklines ---------------------------------------------------------------------------

  function sparkline(kind) {
    const svg = svg_("svg", {
      class: `spark spark-${kind}`,
      viewBox: "0 0 100 30",
      preserveAspectRatio: "none",
      role: "img",
    });
    const title = svg_("title");
    const area = svg_("path", { class: "area", "vector-effect": "non-scaling-stroke" });
    const line = svg_("path", { class: "line", "vector-effect": "non-scaling-stroke" });
    const base = svg_("line", { class: "base", x1: 0, x2: 100, y1: 29, y2: 29, "vector-effect": "non-scaling-stroke" });
    svg.append(title, base, area, line);
    return { svg, title, area, line };
  }

  function xScale(points, t) {
    const span = clamp(t - (points.length ? points[0].t : t), TREND_MIN_SPAN_S, TREND_WINDOW_S);
    return (at) => 100 - ((t - at) / span) * 100;
  }

  function drawSuccess(spark, points, t) {
    const values = points.map((p) => p.ok).filter((v) => v !== null);
    const low = values.length ? Math.min(0.5, Math.floor(Math.min(...values) * 10) / 10) : 0.5;
    const x = xScale(points, t);
    const y = (v) => 28 - ((v - low) / (1 - low || 1)) * 26;
    const series = points.map((p) => ({ t: p.t, v: p.ok }));
    spark.line.setAttribute("d", linePath(series, x, y));
    spark.area.setAttribute("d", areaPath(series, x, y, () => 29));
    const latest = values.length ? values[values.length - 1] : null;
    spark.svg.dataset.tone = successTone(latest);
    spark.title.textContent = values.length
      ? `Success rate, last ${seconds(t - points[0].t)}: now ${percent(latest)}, lowest ${percent(Math.min(...values))}`
      : "Success rate: no calls yet";
  }

  function drawLatency(spark, points, t) {
    const p95s = points.map((p) => p.p95).filter((v) => v !== null);
    const p50s = points.map((p) => p.p50).filter((v) => v !== null);
    const top = Math.max(1, ...p95s, ...p50s) * 1.15;
    const x = xScale(points, t);
    const y = (v) => 28 - (v / top) * 26;
    const p50 = points.map((p) => ({ t: p.t, v: p.p50 }));
    const p95 = points.map((p) => ({ t: p.t, v: p.p95 ?? p.p50 }));
    spark.line.setAttribute("d", linePath(p50, x, y));
    spark.area.setAttribute("d", bandPath(p95, p50, x, y));
    spark.title.textContent = p50s.length
      ? `Latency, last ${seconds(t - points[0].t)}: p50 now ${ms(p50s[p50s.length - 1])} (line), ` +
        `p95 up to ${ms(Math.max(...p95s, 0))} (band)`
      : "Latency: no successful calls yet";
  }

  /** Runs of consecutive points with a value; a missing value breaks the line. */
  function segments(series) {
    const runs = [];
    let run = [];
    for (const p of series) {
      if (p.v === null || p.v === undefined) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push(p);
      }
    }
    if (run.length) runs.push(run);
    return runs;
  }

  function linePath(series, x, y) {
    return segments(series)
      .filter((run) => run.length > 1)
      .map((run) => `M${run.map((p) => `${fx(x(p.t))} ${fx(y(p.v))}`).join("L")}`)
      .join("");
  }

  function areaPath(series, x, y, floor) {
    return segments(series)
      .filter((run) => run.length > 1)
      .map((run) => {
        const first = run[0];
        const last = run[run.length - 1];
        const top = run.map((p) => `${fx(x(p.t))} ${fx(y(p.v))}`).join("L");
        return `M${fx(x(first.t))} ${fx(floor())}L${top}L${fx(x(last.t))} ${fx(floor())}Z`;
      })
      .join("");
  }

  function bandPath(upper, lower, x, y) {
    const merged = upper.map((p, i) => ({ t: p.t, v: p.v, w: lower[i].v }));
    return segments(merged.map((p) => ({ ...p, v: p.v === null || p.w === null ? null : p.v })))
      .filter((run) => run.length > 1)
      .map((run) => {
        const top = run.map((p) => `${fx(x(p.t))} ${fx(y(p.v))}`).join("L");
        const bottom = [...run].reverse().map((p) => `${fx(x(p.t))} ${fx(y(p.w))}`).join("L");
        return `M${top}L${bottom}Z`;
      })
      .join("");
  }

  // -- the timeline -------------------------------------------------------------------------

  function renderEvents(t) {
    const groups = groupEvents();
    ui["events-empty"].hidden = groups.length > 0;
    const seen = new Set();
    let anchor = ui.events.firstChild;
    for (const g of groups) {
      seen.add(g.key);
      let item = ui.eventItems.get(g.key);
      if (!item) {
        item = eventItem(g.first);
        ui.eventItems.set(g.key, item);
      }
      updateEventItem(item, g, t);
      if (anchor !== item.root) ui.events.insertBefore(item.root, anchor);
      anchor = item.root.nextSibling;
    }
    for (const [key, item] of ui.eventItems) {
      if (!seen.has(key)) {
        item.root.remove();
        ui.eventItems.delete(key);
      }
    }
  }

  /** Newest first; a burst of identical events (say, fallbacks under load) becomes one line. */
  function groupEvents() {
    const sorted = [...state.events.values()].sort((a, b) => b.last - a.last || b.at - a.at);
    const groups = [];
    for (const e of sorted) {
      const sig = [e.type, e.route, e.deployment, e.message].join("\u0000");
      const last = groups[groups.length - 1];
      if (last && last.sig === sig) {
        last.count += e.count;
        last.first = e;
        last.key = e.key; // keyed by its oldest event, which stays put as the burst grows
        continue;
      }
      if (groups.length === SHOWN_EVENTS) break;
      groups.push({ sig, key: e.key, newest: e, first: e, count: e.count });
    }
    return groups;
  }

  function eventItem(e) {
    const look = eventLook(e);
    const where = e.deployment || e.route || "";
    const refs = {
      time: h("time", { class: "ev-time" }),
      count: h("span", { class: "ev-count" }),
    };
    refs.root = h(
      "li",
      { class: "event", "data-type": e.type, "data-tone": look.tone },
      h("span", { class: "ev-marker", "aria-hidden": "true" }),
      h(
        "div",
        { class: "ev-body" },
        h("div", { class: "ev-top" }, h("span", { class: "ev-kind" }, look.title), refs.count, refs.time),
        h(
          "div",
          { class: "ev-msg" },
          where && !e.message.includes(where) ? h("span", { class: "ev-where" }, where) : null,
          e.message ? h("span", {}, e.message.replace(/ -> /g, " → ")) : null,
        ),
      ),
    );
    return refs;
  }

  function updateEventItem(item, g, t) {
    const at = g.newest.last;
    setText(item.time, `${clockTime(at)} · ${ago(at, t)}`);
    item.time.setAttribute("datetime", new Date(at * 1000).toISOString());
    item.time.title = new Date(at * 1000).toLocaleString();
    setText(item.count, g.count > 1 ? `×${g.count}` : "");
    item.count.title = g.count > 1 ? `${g.count} times since ${clockTime(g.first.at)}` : "";
  }

  function eventLook(e) {
    if (e.type === "breaker") {
      const to = String(e.data.new || "").toLowerCase();
      const titles = {
        open: "Breaker opened",
        half_open: "Breaker half-open",
        closed: "Breaker closed",
        forced_open: "Drained (forced open)",
        disabled: "Breaker disabled",
      };
      return { title: titles[to] || "Breaker", tone: (BREAKER[to] || { tone: "off" }).tone };
    }
    if (e.type === "health") {
      if (e.data.healthy === false) return { title: "Unhealthy", tone: "bad" };
      if (e.data.healthy === true) return { title: "Healthy again", tone: "ok" };
      return { title: "Health", tone: "off" };
    }
    const other = {
      panic: { title: "Panic mode", tone: "bad" },
      fallback: { title: "Fallback", tone: "warn" },
      chaos: { title: "Fault injection", tone: "forced" },
      config: { title: "Configuration", tone: "off" },
    };
    return other[e.type] || { title: capitalise(e.type), tone: "off" };
  }

  // -- small helpers ------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function svg_(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  /** "provider/model" may wrap after its slash rather than be cut off. */
  function breakable(name) {
    const parts = name.split("/");
    return parts.map((part, i) => h("span", { class: "seg" }, i < parts.length - 1 ? `${part}/` : part));
  }

  function joinNodes(nodes) {
    return nodes.flatMap((n, i) => (i ? [", ", n] : [n]));
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function now() {
    return Date.now() / 1000 + state.skew;
  }

  function num(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }

  function clamp(v, lo, hi) {
    return Math.min(hi, Math.max(lo, v));
  }

  function fx(v) {
    return (Math.round(v * 100) / 100).toString();
  }

  function percent(v) {
    if (v >= 1) return "100%";
    return `${(Math.floor(v * 1000) / 10).toFixed(1)}%`;
  }

  function successTone(v) {
    if (v === null || v === undefined) return "";
    if (v < SUCCESS_BAD) return "bad";
    return v < SUCCESS_WARN ? "warn" : "ok";
  }

  function ms(v) {
    if (v >= 10000) return `${(v / 1000).toFixed(1)} s`;
    if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
    return `${Math.round(v)} ms`;
  }

  function latencyPair(p50, p95) {
    if (p50 === null && p95 === null) return "–";
    if (p50 === null || p95 === null) return ms(p50 ?? p95);
    if (p95 < 1000) return `${Math.round(p50)} / ${Math.round(p95)} ms`;
    return `${(p50 / 1000).toFixed(2)} / ${(p95 / 1000).toFixed(2)} s`;
  }

  function seconds(s) {
    if (s < 10) return `${Math.round(s * 10) / 10} s`;
    if (s < 120) return `${Math.round(s)} s`;
    return `${Math.round(s / 60)} min`;
  }

  function ago(at, t) {
    const d = Math.max(0, t - at);
    if (d < 3) return "just now";
    if (d < 90) return `${Math.round(d)} s ago`;
    if (d < 5400) return `${Math.round(d / 60)} min ago`;
    return `${Math.round(d / 3600)} h ago`;
  }

  function clockTime(at) {
    const options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
    return new Date(at * 1000).toLocaleTimeString([], options);
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function capitalise(s) {
    return s ? s[0].toUpperCase() + s.slice(1) : s;
  }

  function reducedMotion() {
    return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }
})();
