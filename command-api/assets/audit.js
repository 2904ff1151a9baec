// A ticket's audit trail: every event with actor, time and change, the
// hash-chain verdict, and a slider that shows the ticket as of any event
// (GET /audit?as_of=<position>).
"use strict";

(() => {
  const { $, el, api, clear } = TL;
  TL.requireSession();
  TL.topbar("");
  const id = document.body.dataset.ticketId;
  if (!TL.can("audit.read")) {
    clear($("main")).append(el("section", { class: "card empty" }, el("h1", {}, "Not available"),
      el("p", {}, "Your role cannot read audit trails.")));
    return;
  }
  $("audit-back").href = "/app/tickets/" + id;
  const slider = $("asof");
  let events = [];
  let reqSeq = 0;

  const KIND_LABELS = {
    TicketCreated: "Ticket created", TicketEdited: "Ticket edited", TicketAssigned: "Assigned",
    TicketStatusChanged: "Status changed", CommentPosted: "Comment", DispatchRequested: "Dispatch requested",
    DispatchAccepted: "Dispatch accepted", DispatchDeclined: "Dispatch declined", DispatchProgressed: "Dispatch progressed",
    DispatchCompleted: "Dispatch completed", ReadReceiptRecorded: "Read receipt",
  };

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  function show(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "string" && UUID.test(v) && TL.users.has(v)) return TL.userName(v);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function short(h) { return h ? String(h).slice(0, 12) + "…" : "—"; }

  // What the server reports about the chain, if it reports anything.
  function verdict(report) {
    const box = $("chain");
    const v = report.chain || report.verification || report.hash_chain;
    const ok = typeof report.chain_ok === "boolean" ? report.chain_ok
      : typeof report.verified === "boolean" ? report.verified
        : v && typeof v === "object" && typeof v.ok === "boolean" ? v.ok
          : v && typeof v === "object" && typeof v.valid === "boolean" ? v.valid : null;
    if (ok === true) { box.className = "verdict ok"; box.textContent = "✓ Hash chain verified"; }
    else if (ok === false) { box.className = "verdict bad"; box.textContent = "✗ Hash chain broken" + (v && v.message ? ": " + v.message : ""); }
    else {
      const hashed = report.events.every((e) => typeof e.hash === "string" && e.hash.length > 0);
      box.className = "verdict";
      box.textContent = hashed ? `${report.events.length} events, each hashed over its predecessor` : "Hashes missing";
      box.title = "Full verification of the log: `ticketlog verify`";
    }
  }

  function changeList(e) {
    const ul = el("ul", { class: "changes" });
    const ch = e.data && e.data.changes;
    if (ch && typeof ch === "object") {
      for (const [field, c] of Object.entries(ch)) {
        ul.append(el("li", {}, el("b", {}, field + ": "), el("span", { class: "old" }, show(c && c.old)), " → ", el("span", { class: "new" }, show(c && c.new))));
      }
    }
    return ul.childNodes.length ? ul : null;
  }

  function item(e, i) {
    const name = TL.userName(e.actor && e.actor.id, e.actor && e.actor.role);
    const li = el("li", { dataset: { position: String(e.position), index: String(i) } },
      el("div", { class: "ev-head" },
        el("span", { class: "ev-kind" }, KIND_LABELS[e.kind] || e.kind),
        el("span", { class: "muted small" }, "by ", name, e.actor ? ` (${e.actor.role})` : ""),
        el("span", { class: "muted small" }, TL.absTime(e.at)),
        el("span", { class: "muted small" }, `#${e.position} · v${e.version}`),
        e.data && e.data.internal ? el("span", { class: "note-badge" }, "Internal") : null),
      changeList(e),
      e.kind === "CommentPosted" && e.data && typeof e.data.body === "string" ? el("div", { class: "ev-body" }, e.data.body) : null,
      el("div", { class: "hash" }, "hash ", short(e.hash), " · prev ", short(e.prev_hash)));
    li.addEventListener("click", () => { slider.value = String(i); cut(); });
    return li;
  }

  function renderAsOf(t, e) {
    const dl = clear($("asof-ticket"));
    $("asof-label").textContent = e ? `after event ${Number(slider.value) + 1} of ${events.length} · position ${e.position} · ${TL.absTime(e.at)}` : "";
    if (!t) { dl.append(el("dt", {}, "State"), el("dd", {}, "Did not exist yet")); return; }
    const row = (k, v) => dl.append(el("dt", {}, k), el("dd", { dataset: { field: k.toLowerCase() } }, v));
    row("Title", t.title);
    row("Status", TL.statusPill(t.status));
    row("Priority", TL.priorityPill(t.priority));
    row("Assignee", TL.userName(t.assignee));
    row("Version", String(t.version));
    row("Updated", TL.absTime(t.updated_at));
    if (t.dispatch) row("Dispatch", t.dispatch.status);
  }

  let timer = null;
  function cut() {
    clearTimeout(timer);
    const i = Number(slider.value);
    for (const li of $("timeline").children) {
      const j = Number(li.dataset.index);
      li.classList.toggle("after-cut", j > i);
      li.classList.toggle("at-cut", j === i);
    }
    timer = setTimeout(async () => {
      const e = events[i];
      if (!e) return;
      const seq = ++reqSeq;
      try {
        const r = await api("GET", `/api/v1/tickets/${id}/audit?as_of=${e.position}`);
        if (seq === reqSeq) renderAsOf(r.ticket, e);
      } catch (err) { TL.toast(err.message, true); }
    }, 120);
  }

  slider.addEventListener("input", cut);
  $("asof-prev").addEventListener("click", () => { slider.value = String(Math.max(0, Number(slider.value) - 1)); cut(); });
  $("asof-next").addEventListener("click", () => { slider.value = String(Math.min(events.length - 1, Number(slider.value) + 1)); cut(); });

  (async () => {
    try {
      await TL.loadDirectory();
      const r = await api("GET", `/api/v1/tickets/${id}/audit`);
      events = r.events || [];
      const t = r.ticket;
      $("a-title").textContent = t ? `Audit · #${t.number} ${t.title}` : "Audit";
      $("a-sub").textContent = `${events.length} events`;
      verdict(r);
      clear($("timeline")).append(...events.map(item));
      slider.max = String(Math.max(0, events.length - 1));
      slider.value = slider.max;
      const last = events[events.length - 1];
      renderAsOf(t, last);
      for (const li of $("timeline").children) li.classList.toggle("at-cut", Number(li.dataset.index) === events.length - 1);
    } catch (e) {
      if (e.status === 404) { $("a-sub").textContent = "Ticket not found."; return; }
      if (e.status === 403) { $("a-sub").textContent = "Your role cannot read audit trails."; return; }
      TL.toast(e.message, true);
    }
  })();
})();
