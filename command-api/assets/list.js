// The ticket list: filters in the address, rows that open the ticket, and
// live updates from the `tickets` room (every change reloads the visible
// page from the API, so filters and visibility stay the server's).
"use strict";

(() => {
  const { $, el, api, clear } = TL;
  TL.requireSession();
  TL.topbar("tickets");
  const me = TL.me();
  if (!TL.can("tickets.view")) { location.replace(TL.homeFor(me)); return; }
  if (TL.can("tickets.create")) $("new-ticket").hidden = false;

  const rows = $("ticket-rows");
  const filters = { q: $("f-q"), status: $("f-status"), priority: $("f-priority"), assignee: $("f-assignee") };
  let shown = 50; // how many rows the user asked to see (grows with "Load more")
  let nextCursor = null;
  let loading = null;
  let again = false;
  const flashes = new Set();

  // Assignee options: "me" for staff, then the directory when available.
  function fillAssignees() {
    const sel = filters.assignee;
    const keep = sel.value;
    clear(sel).append(el("option", { value: "" }, "Anyone"));
    if (me.role !== "customer") sel.append(el("option", { value: me.id }, "Me"));
    for (const u of TL.users.values()) {
      if (u.id === me.id || !["agent", "admin", "technician"].includes(u.role)) continue;
      sel.append(el("option", { value: u.id }, `${u.name} (${u.role})`));
    }
    const want = keep || new URLSearchParams(location.search).get("assignee") || "";
    sel.value = want;
    if (sel.value !== want) sel.append(el("option", { value: want, selected: true }, TL.userName(want)));
  }

  function readUrl() {
    const p = new URLSearchParams(location.search);
    filters.q.value = p.get("q") || "";
    filters.status.value = p.get("status") || "";
    filters.priority.value = p.get("priority") || "";
  }
  function query(limit, cursor) {
    const p = new URLSearchParams();
    for (const [k, input] of Object.entries(filters)) if (input.value.trim()) p.set(k, input.value.trim());
    const url = new URLSearchParams(p);
    history.replaceState(null, "", url.toString() ? "?" + url : location.pathname);
    p.set("limit", String(limit));
    if (cursor) p.set("cursor", cursor);
    return "/api/v1/tickets?" + p;
  }

  function row(t) {
    const open = () => { location.href = "/app/tickets/" + t.id; };
    const tr = el("tr", {
      tabindex: "0", role: "link", dataset: { id: t.id, status: t.status, priority: t.priority }, class: flashes.has(t.id) ? "flash" : null,
      onclick: (e) => { if (!e.target.closest("a")) open(); },
      onkeydown: (e) => { if (e.key === "Enter") open(); },
    },
    el("td", { class: "c-num" }, "#" + t.number),
    el("td", { class: "c-title" }, el("div", { class: "t-title" }, el("a", { href: "/app/tickets/" + t.id }, t.title)),
      (t.tags || []).slice(0, 3).map((g) => el("span", { class: "tag" }, g))),
    el("td", { class: "c-status" }, TL.statusPill(t.status)),
    el("td", { class: "c-priority" }, TL.priorityPill(t.priority)),
    el("td", { class: "c-assignee" }, t.assignee
      ? el("span", { class: "assignee" }, TL.avatar(t.assignee, TL.userName(t.assignee), true), TL.userName(t.assignee))
      : el("span", { class: "muted" }, "Unassigned")),
    el("td", { class: "c-time" }, TL.timeEl(t.updated_at)));
    return tr;
  }

  // Reloads the first `shown` rows; calls that arrive meanwhile coalesce.
  async function reload() {
    if (loading) { again = true; return loading; }
    loading = (async () => {
      try {
        const items = [];
        let cursor = null;
        do {
          const page = await api("GET", query(Math.min(500, shown - items.length), cursor));
          items.push(...page.items);
          cursor = page.next_cursor;
        } while (cursor && items.length < shown);
        nextCursor = cursor;
        clear(rows).append(...items.map(row));
        flashes.clear();
        $("list-empty").hidden = items.length > 0;
        $("load-more").hidden = !nextCursor;
        $("list-summary").textContent = items.length === 0 ? "No tickets"
          : `${items.length}${nextCursor ? "+" : ""} ticket${items.length === 1 ? "" : "s"}` + (me.role === "customer" ? " you reported" : "");
      } catch (e) {
        if (e.status !== 401) TL.toast("Could not load tickets: " + e.message, true);
      }
    })();
    await loading;
    loading = null;
    if (again) { again = false; return reload(); }
  }

  let debounce = null;
  function reloadSoon(ms) { clearTimeout(debounce); debounce = setTimeout(reload, ms); }

  readUrl();
  fillAssignees();
  TL.loadDirectory().then((ok) => { if (ok) { fillAssignees(); reload(); } });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); reload(); });
  filters.q.addEventListener("input", () => reloadSoon(250));
  for (const k of ["status", "priority", "assignee"]) filters[k].addEventListener("change", () => reload());
  $("load-more").addEventListener("click", () => { shown += 50; reload(); });
  reload();

  const feed = new Feed();
  feed.join("tickets", {
    onEvent: (ev) => {
      if (ev && ev.stream_id) flashes.add(ev.stream_id);
      reloadSoon(120);
    },
    // (Re)joined: whatever happened while we were away is in a fresh load.
    onSubscribed: () => reloadSoon(0),
  });
  feed.poll(reload);
})();
