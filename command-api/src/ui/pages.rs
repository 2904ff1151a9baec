//! Page shells: static HTML with the page's skeleton; the scripts fill it
//! from the API. Nothing here comes from a user except the ticket id, which
//! is a parsed UUID by the time it is written.

use uuid::Uuid;

use crate::demo::{DEMO_PASSWORD, DEMO_TENANT, DEMO_USERS};

/// A page of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Sign in.
    Login,
    /// The live ticket list.
    Tickets,
    /// Open a new ticket.
    NewTicket,
    /// One ticket: conversation and properties.
    Ticket(Uuid),
    /// One ticket's history (auditors).
    Audit(Uuid),
    /// Charts (analysts, agents).
    Stats,
    /// Unknown address.
    NotFound,
}

impl Page {
    fn title(&self) -> &'static str {
        match self {
            Page::Login => "Sign in",
            Page::Tickets => "Tickets",
            Page::NewTicket => "New ticket",
            Page::Ticket(_) => "Ticket",
            Page::Audit(_) => "Audit",
            Page::Stats => "Statistics",
            Page::NotFound => "Not found",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Page::Login => "login",
            Page::Tickets => "tickets",
            Page::NewTicket => "new",
            Page::Ticket(_) => "ticket",
            Page::Audit(_) => "audit",
            Page::Stats => "stats",
            Page::NotFound => "not-found",
        }
    }

    fn scripts(&self) -> &'static [&'static str] {
        match self {
            Page::Login => &["common.js", "login.js"],
            Page::Tickets => &["common.js", "feed.js", "list.js"],
            Page::NewTicket => &["common.js", "new.js"],
            Page::Ticket(_) => &["common.js", "feed.js", "ticket.js"],
            Page::Audit(_) => &["common.js", "audit.js"],
            Page::Stats => &["common.js", "charts.js", "stats.js"],
            Page::NotFound => &["common.js"],
        }
    }
}

/// The whole HTML document of a page.
pub fn render(page: &Page) -> String {
    let ticket_attr = match page {
        Page::Ticket(id) | Page::Audit(id) => format!(" data-ticket-id=\"{id}\""),
        _ => String::new(),
    };
    let scripts: String = page
        .scripts()
        .iter()
        .map(|s| format!("<script src=\"/assets/{s}\" defer></script>"))
        .collect();
    let topbar = if matches!(page, Page::Login) {
        "<header class=\"topbar\"><a class=\"brand\" href=\"/app/tickets\"><span class=\"logo\">T</span>Ticketlog</a></header>"
    } else {
        "<header class=\"topbar\" id=\"topbar\"><a class=\"brand\" href=\"/app/tickets\"><span class=\"logo\">T</span>Ticketlog</a></header>"
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Ticketlog</title>\
         <link rel=\"icon\" href=\"/assets/favicon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/assets/app.css\">{scripts}</head>\
         <body data-page=\"{name}\"{ticket_attr}>{topbar}\
         <div id=\"toasts\" class=\"toasts\" role=\"status\" aria-live=\"polite\"></div>\
         <main id=\"main\" class=\"main main-{name}\">{body}</main></body></html>\n",
        title = page.title(),
        name = page.name(),
        body = body(page),
    )
}

fn body(page: &Page) -> String {
    match page {
        Page::Login => login(),
        Page::Tickets => TICKETS.into(),
        Page::NewTicket => NEW_TICKET.into(),
        Page::Ticket(_) => TICKET.into(),
        Page::Audit(_) => AUDIT.into(),
        Page::Stats => STATS.into(),
        Page::NotFound => "<section class=\"card empty\"><h1>Not found</h1>\
             <p>There is nothing at this address.</p>\
             <p><a class=\"btn\" href=\"/app/tickets\">Back to tickets</a></p></section>"
            .into(),
    }
}

fn login() -> String {
    let hints: String = DEMO_USERS
        .iter()
        .map(|(name, role)| {
            format!(
                "<li><button type=\"button\" class=\"chip demo-user\" data-username=\"{name}\">\
                 <b>{name}</b><span>{role}</span></button></li>",
                role = role.as_str()
            )
        })
        .collect();
    format!(
        "<section class=\"login-wrap\"><form id=\"login-form\" class=\"card login\" autocomplete=\"on\">\
         <h1>Sign in</h1><p class=\"muted\">Helpdesk console</p>\
         <label>Tenant<input id=\"tenant\" name=\"tenant\" required value=\"{DEMO_TENANT}\" autocomplete=\"organization\"></label>\
         <label>Username<input id=\"username\" name=\"username\" required autocomplete=\"username\" autofocus></label>\
         <label>Password<input id=\"password\" name=\"password\" type=\"password\" required autocomplete=\"current-password\"></label>\
         <p id=\"login-error\" class=\"form-error\" hidden></p>\
         <button id=\"login-submit\" class=\"btn primary wide\" type=\"submit\">Sign in</button>\
         <details class=\"hints\" open><summary>Demo accounts (tenant <code>{DEMO_TENANT}</code>, password <code>{DEMO_PASSWORD}</code>)</summary>\
         <ul class=\"chips\">{hints}</ul><p class=\"muted small\">Available when the server runs with <code>--demo</code>.</p></details>\
         </form></section>"
    )
}

const TICKETS: &str = "<section class=\"page-head\"><div><h1>Tickets</h1>\
<p class=\"muted\" id=\"list-summary\">Loading…</p></div>\
<a id=\"new-ticket\" class=\"btn primary\" href=\"/app/new\" hidden>New ticket</a></section>\
<form id=\"filters\" class=\"filters card\" role=\"search\">\
<label class=\"grow\"><span>Search</span><input id=\"f-q\" type=\"search\" placeholder=\"Title or description\" autocomplete=\"off\"></label>\
<label><span>Status</span><select id=\"f-status\"><option value=\"\">Any</option>\
<option value=\"open\">Open</option><option value=\"assigned\">Assigned</option>\
<option value=\"in_progress\">In progress</option><option value=\"resolved\">Resolved</option>\
<option value=\"closed\">Closed</option></select></label>\
<label><span>Priority</span><select id=\"f-priority\"><option value=\"\">Any</option>\
<option value=\"critical\">Critical</option><option value=\"high\">High</option>\
<option value=\"medium\">Medium</option><option value=\"low\">Low</option></select></label>\
<label><span>Assignee</span><select id=\"f-assignee\"><option value=\"\">Anyone</option></select></label>\
</form>\
<section class=\"card list-card\"><table id=\"ticket-table\" class=\"tickets\">\
<thead><tr><th class=\"c-num\">#</th><th>Title</th><th>Status</th><th>Priority</th><th>Assignee</th><th class=\"c-time\">Updated</th></tr></thead>\
<tbody id=\"ticket-rows\"></tbody></table>\
<p id=\"list-empty\" class=\"empty\" hidden>No tickets match these filters.</p>\
<div class=\"list-foot\"><button id=\"load-more\" class=\"btn\" type=\"button\" hidden>Load more</button></div></section>";

const NEW_TICKET: &str = "<section class=\"page-head\"><div><h1>New ticket</h1>\
<p class=\"muted\">Tell us what is wrong; we answer in the conversation.</p></div></section>\
<form id=\"new-form\" class=\"card form-grid\">\
<label class=\"span2\">Title<input id=\"n-title\" required maxlength=\"200\" placeholder=\"Short summary\"></label>\
<label class=\"span2\">Description<textarea id=\"n-description\" rows=\"6\" required placeholder=\"What happened, where, since when?\"></textarea></label>\
<label>Priority<select id=\"n-priority\"><option value=\"medium\">Medium</option><option value=\"low\">Low</option>\
<option value=\"high\">High</option><option value=\"critical\">Critical</option></select></label>\
<label>Kind<select id=\"n-kind\"><option value=\"incident\">Incident</option><option value=\"question\">Question</option>\
<option value=\"maintenance\">Maintenance</option><option value=\"change_request\">Change request</option></select></label>\
<label>Site<input id=\"n-site\" placeholder=\"optional\"></label>\
<label>Building<input id=\"n-building\" placeholder=\"optional\"></label>\
<label>Floor<input id=\"n-floor\" placeholder=\"optional\"></label>\
<label>Address<input id=\"n-address\" placeholder=\"optional\"></label>\
<label>Device<input id=\"n-device\" placeholder=\"optional\"></label>\
<label>Tags<input id=\"n-tags\" placeholder=\"comma separated\"></label>\
<p id=\"new-error\" class=\"form-error span2\" hidden></p>\
<div class=\"span2 actions\"><a class=\"btn\" href=\"/app/tickets\">Cancel</a>\
<button id=\"new-submit\" class=\"btn primary\" type=\"submit\">Open ticket</button></div></form>";

const TICKET: &str = "<div class=\"ticket-layout\">\
<section class=\"conversation card\">\
<header class=\"conv-head\"><div class=\"conv-title\"><a class=\"back\" href=\"/app/tickets\" aria-label=\"Back to tickets\">←</a>\
<div><h1 id=\"t-title\">Loading…</h1><p class=\"muted small\" id=\"t-sub\"></p></div></div>\
<div class=\"presence\" id=\"presence\" aria-label=\"Who is viewing\"></div></header>\
<div id=\"messages\" class=\"messages\" aria-live=\"polite\"></div>\
<div id=\"typing\" class=\"typing\" aria-live=\"polite\"></div>\
<form id=\"composer\" class=\"composer\" hidden>\
<textarea id=\"composer-text\" rows=\"2\" placeholder=\"Write a reply…\" aria-label=\"Message\"></textarea>\
<div class=\"composer-bar\"><label id=\"internal-wrap\" class=\"switch\" hidden><input id=\"internal-toggle\" type=\"checkbox\">\
<span class=\"track\"></span><span>Internal note</span></label><span class=\"muted small hint\">Ctrl+Enter to send</span>\
<button id=\"send\" class=\"btn primary\" type=\"submit\" disabled>Send</button></div></form>\
<p id=\"readonly\" class=\"muted small readonly\" hidden>You can read this conversation but not reply.</p>\
</section>\
<aside class=\"props card\" id=\"props\"><h2>Details</h2><div id=\"props-body\"><p class=\"muted\">Loading…</p></div></aside>\
</div>";

const AUDIT: &str = "<section class=\"page-head\"><div><a class=\"back\" id=\"audit-back\" href=\"/app/tickets\">← Ticket</a>\
<h1 id=\"a-title\">Audit</h1><p class=\"muted\" id=\"a-sub\">Loading…</p></div>\
<div id=\"chain\" class=\"verdict\"></div></section>\
<section class=\"card asof\"><div class=\"asof-head\"><h2>Ticket as of</h2><span id=\"asof-label\" class=\"muted\"></span></div>\
<div class=\"slider-row\"><button id=\"asof-prev\" class=\"btn icon\" type=\"button\" aria-label=\"Previous event\">‹</button>\
<input id=\"asof\" type=\"range\" min=\"0\" max=\"0\" step=\"1\" value=\"0\" aria-label=\"Position in history\">\
<button id=\"asof-next\" class=\"btn icon\" type=\"button\" aria-label=\"Next event\">›</button></div>\
<dl id=\"asof-ticket\" class=\"kv\"></dl></section>\
<section class=\"card\"><h2>Timeline</h2><ol id=\"timeline\" class=\"timeline\"></ol></section>";

const STATS: &str = "<section class=\"page-head\"><div><h1>Statistics</h1>\
<p class=\"muted\" id=\"s-sub\">Resolution times, first response and SLA breaches.</p></div>\
<form id=\"s-range\" class=\"range\"><label><span>From</span><input id=\"s-from\" type=\"date\"></label>\
<label><span>To</span><input id=\"s-to\" type=\"date\"></label>\
<button class=\"btn\" type=\"submit\">Apply</button>\
<button id=\"csv\" class=\"btn primary\" type=\"button\" disabled>Download CSV</button></form></section>\
<section id=\"s-cards\" class=\"stat-cards\"></section>\
<section class=\"card chart-card\"><h2>Resolution time by priority</h2><div class=\"chart-row\"><div id=\"c-prio\" class=\"chart\"></div><div id=\"t-prio\" class=\"chart-table\"></div></div></section>\
<section class=\"card chart-card\"><h2>Resolution time by week</h2><div class=\"chart-row\"><div id=\"c-week\" class=\"chart\"></div><div id=\"t-week\" class=\"chart-table\"></div></div></section>\
<section class=\"card chart-card\"><h2>First response and SLA breaches by priority</h2><div class=\"chart-row\"><div id=\"c-first\" class=\"chart\"></div><div id=\"c-sla\" class=\"chart\"></div></div></section>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_lists_the_demo_users() {
        let html = render(&Page::Login);
        for (name, _) in DEMO_USERS {
            assert!(html.contains(&format!("data-username=\"{name}\"")));
        }
    }

    #[test]
    fn ticket_page_carries_its_id() {
        let id = Uuid::now_v7();
        assert!(render(&Page::Ticket(id)).contains(&format!("data-ticket-id=\"{id}\"")));
    }
}
