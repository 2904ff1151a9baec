// Shared helpers of the console: session, API calls, safe DOM building,
// names, times and the top bar. User text only ever reaches the page as
// text nodes (textContent / append(string)), never as HTML.
"use strict";

const TL = (() => {
  const SESSION_KEY = "ticketlog.session";
  const USERS_KEY = "ticketlog.users";

  const STATUS_LABELS = { open: "Open", assigned: "Assigned", in_progress: "In progress", resolved: "Resolved", closed: "Closed" };
  const PRIORITY_LABELS = { critical: "Critical", high: "High", medium: "Medium", low: "Low" };
  const KIND_LABELS = { incident: "Incident", maintenance: "Maintenance", change_request: "Change request", question: "Question" };
  // The contract's workflow; the server decides, this only avoids offering the impossible.
  const TRANSITIONS = {
    open: ["assigned"], assigned: ["in_progress"], in_progress: ["resolved"],
    resolved: ["closed", "open"], closed: ["open"],
  };

  function session() {
    try {
      const s = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
      if (s && s.token && s.user && new Date(s.expires_at).getTime() > Date.now()) return s;
    } catch (_) { /* corrupt: treat as logged out */ }
    return null;
  }
  function saveSession(s) { localStorage.setItem(SESSION_KEY, JSON.stringify(s)); }
  // Forgets the session here (the token is already refused, or was revoked).
  function logout() {
    localStorage.removeItem(SESSION_KEY);
    location.href = "/app/login";
  }
  // The Sign out button: revoke the token on the server, then forget it.
  // Decision (issue 15): the token stays in localStorage. An HttpOnly
  // SameSite=Strict cookie would keep it from injected script, but it needs
  // CSRF tokens on every unsafe request and cookie auth on /ws, a change to
  // every flow the browser tests drive; until then the console's CSP allows
  // only its own scripts, user text only ever becomes text nodes, Sign out
  // revokes the token server-side and its lifetime is --token-ttl-secs.
  async function signOut() {
    const s = session();
    if (s) {
      try {
        await fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + s.token }, cache: "no-store" });
      } catch (_) { /* offline: the token still expires on its own */ }
    }
    logout();
  }
  function requireSession() {
    const s = session();
    if (!s) {
      location.replace("/app/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("not signed in");
    }
    return s;
  }
  function me() { const s = session(); return s ? s.user : null; }
  function can(permission) { const u = me(); return !!u && Array.isArray(u.permissions) && u.permissions.includes(permission); }
  function homeFor(user) {
    const p = user.permissions || [];
    return p.includes("tickets.view") ? "/app/tickets" : p.includes("stats.read") ? "/app/stats" : "/app/tickets";
  }

  class ApiError extends Error {
    constructor(status, body) {
      const e = body && body.error;
      super((e && e.message) || ("HTTP " + status));
      this.status = status;
      this.code = (e && e.code) || "http_" + status;
      this.details = (e && e.details) || {};
    }
  }

  async function api(method, path, body, headers) {
    const s = session();
    const h = Object.assign({ Accept: "application/json" }, headers || {});
    if (s) h.Authorization = "Bearer " + s.token;
    const init = { method, headers: h, cache: "no-store" };
    if (body !== undefined) { h["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let res;
    try { res = await fetch(path, init); } catch (e) { throw new ApiError(0, { error: { code: "network", message: "The server cannot be reached." } }); }
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
    if (res.status === 401 && s && !path.endsWith("/auth/token")) { logout(); }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // DOM: attributes and text only; children strings become text nodes.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    setProps(e, props);
    appendAll(e, children);
    return e;
  }
  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, props, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    setProps(e, props);
    appendAll(e, children);
    return e;
  }
  function setProps(e, props) {
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.setAttribute("class", v);
      else if (k === "text") e.textContent = String(v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
  }
  function appendAll(e, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function $(id) { return document.getElementById(id); }

  // People: ids are all the API gives; names come from the directory
  // (when the server offers one), presence frames and our own token.
  const users = new Map();
  try {
    for (const u of JSON.parse(sessionStorage.getItem(USERS_KEY) || "[]")) users.set(u.id, u);
  } catch (_) { /* ignore */ }
  function learnUser(u) {
    if (!u || !u.id) return;
    const old = users.get(u.id) || {};
    users.set(u.id, Object.assign({}, old, u));
    try { sessionStorage.setItem(USERS_KEY, JSON.stringify(Array.from(users.values()))); } catch (_) { /* full */ }
  }
  let directoryLoaded = null;
  function loadDirectory() {
    if (!directoryLoaded) {
      directoryLoaded = api("GET", "/api/v1/users").then((r) => {
        const list = Array.isArray(r) ? r : (r && r.items) || [];
        for (const u of list) learnUser({ id: u.id, name: u.name || u.username, role: u.role });
        return list.length > 0;
      }).catch(() => false);
    }
    return directoryLoaded;
  }
  function userName(id, role) {
    if (!id) return "Unassigned";
    const m = me();
    const u = users.get(id);
    if (u && u.name) return u.name + (m && m.id === id ? " (you)" : "");
    if (m && m.id === id) return m.name + " (you)";
    const r = role || (u && u.role);
    return (r ? cap(r) : "User") + " " + String(id).slice(-4);
  }
  function initials(name) {
    const parts = String(name || "?").replace(/\(you\)/, "").trim().split(/[\s._-]+/).filter(Boolean);
    const s = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || "?").slice(0, 2);
    return s.toUpperCase();
  }
  function hue(id) {
    let h = 0;
    for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) % 360;
    return h;
  }
  function avatar(id, name, small) {
    const a = el("span", { class: small ? "avatar sm" : "avatar", title: name, "aria-hidden": "true" }, initials(name));
    a.style.setProperty("--hue", String(hue(id)));
    return a;
  }
  function cap(s) { s = String(s || ""); return s.charAt(0).toUpperCase() + s.slice(1); }

  // Times.
  function relTime(iso) {
    const t = new Date(iso).getTime();
    if (!isFinite(t)) return "";
    const s = Math.round((Date.now() - t) / 1000);
    if (s < 45) return "just now";
    if (s < 90) return "1 min ago";
    const m = Math.round(s / 60);
    if (m < 60) return m + " min ago";
    const h = Math.round(m / 60);
    if (h < 24) return h + " h ago";
    const d = Math.round(h / 24);
    if (d === 1) return "yesterday";
    if (d < 7) return d + " days ago";
    return new Date(t).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
  }
  function absTime(iso) { const d = new Date(iso); return isFinite(d.getTime()) ? d.toLocaleString() : ""; }
  function timeEl(iso, cls) {
    return el("time", { class: cls || null, datetime: iso, title: absTime(iso), dataset: { rel: "1" } }, relTime(iso));
  }
  setInterval(() => {
    for (const t of document.querySelectorAll("time[data-rel]")) t.textContent = relTime(t.getAttribute("datetime"));
  }, 30000);
  function duration(sec) {
    if (sec === null || sec === undefined || !isFinite(sec)) return "–";
    if (sec < 10) return (Math.round(sec * 10) / 10) + " s";
    if (sec < 60) return Math.round(sec) + " s";
    if (sec < 3600) return (sec / 60).toFixed(sec < 600 ? 1 : 0) + " min";
    if (sec < 86400) return (sec / 3600).toFixed(1) + " h";
    return (sec / 86400).toFixed(1) + " d";
  }

  function statusPill(s) { return el("span", { class: "pill st-" + s }, STATUS_LABELS[s] || s); }
  function priorityPill(p) { return el("span", { class: "pill pr-" + p }, PRIORITY_LABELS[p] || p); }

  function toast(message, isError) {
    const box = $("toasts");
    if (!box) return;
    const t = el("div", { class: isError ? "toast error" : "toast" }, message);
    box.append(t);
    setTimeout(() => t.remove(), isError ? 5000 : 2500);
  }

  // Top bar: navigation by permission, who is signed in, connection state.
  function topbar(active) {
    const bar = $("topbar");
    const u = me();
    if (!bar || !u) return;
    const links = [];
    if (can("tickets.view")) links.push(["tickets", "/app/tickets", "Tickets"]);
    if (can("tickets.create")) links.push(["new", "/app/new", "New ticket"]);
    if (can("stats.read")) links.push(["stats", "/app/stats", "Statistics"]);
    const nav = el("nav", { class: "nav" }, links.map(([k, href, label]) =>
      el("a", { href, class: k === active ? "active" : null }, label)));
    const conn = el("span", { id: "conn", class: "conn", hidden: true }, "");
    const who = el("div", { class: "me" },
      conn,
      el("div", { class: "who" }, el("b", {}, u.name), el("small", {}, cap(u.role))),
      avatar(u.id, u.name),
      el("button", { class: "btn small", type: "button", id: "logout", onclick: signOut }, "Sign out"));
    bar.append(nav, who);
  }
  function setConnection(state) {
    const c = $("conn");
    if (!c) return;
    c.hidden = false;
    c.className = "conn " + state;
    c.dataset.state = state;
    c.textContent = state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "Offline · refreshing";
  }

  return {
    STATUS_LABELS, PRIORITY_LABELS, KIND_LABELS, TRANSITIONS,
    session, saveSession, logout, signOut, requireSession, me, can, homeFor,
    ApiError, api, uuid, el, svg, clear, $, learnUser, loadDirectory, userName, users,
    initials, avatar, cap, relTime, absTime, timeEl, duration, statusPill, priorityPill,
    toast, topbar, setConnection,
  };
})();
