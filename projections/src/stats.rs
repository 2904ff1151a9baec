//! Statistics for analysts: counts, resolution and first-response times,
//! SLA breaches, per group and time window.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Utc};
use event_store::{DispatchPhase, EventPayload, Priority, TicketStatus};
use serde::{Deserialize, Serialize};

use crate::ticket::TicketView;
use crate::time::{instant, micros, seconds, Micros};

const HOUR_S: u64 = 3600;

/// Per-priority resolution targets, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTargets {
    /// Critical tickets.
    pub critical_s: u64,
    /// High priority.
    pub high_s: u64,
    /// Medium priority.
    pub medium_s: u64,
    /// Low priority.
    pub low_s: u64,
}

impl Default for SlaTargets {
    fn default() -> Self {
        SlaTargets {
            critical_s: 4 * HOUR_S,
            high_s: 8 * HOUR_S,
            medium_s: 24 * HOUR_S,
            low_s: 72 * HOUR_S,
        }
    }
}

impl SlaTargets {
    /// The target for `priority`, in microseconds.
    fn micros(&self, priority: Priority) -> i64 {
        let s = match priority {
            Priority::Critical => self.critical_s,
            Priority::High => self.high_s,
            Priority::Medium => self.medium_s,
            Priority::Low => self.low_s,
        };
        i64::try_from(s)
            .unwrap_or(i64::MAX / 1_000_000)
            .saturating_mul(1_000_000)
    }
}

/// How tickets are grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By priority (the default).
    #[default]
    Priority,
    /// By kind of work.
    Kind,
    /// By current assignee (`unassigned` for none).
    Assignee,
    /// By location site (`none` when unknown).
    Site,
    /// By ISO week of creation (`2025-W07`).
    Week,
}

/// `GET /api/v1/stats?from=&to=&group_by=`: tickets created in `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsQuery {
    /// Window start (inclusive); open when absent.
    pub from: Option<DateTime<Utc>>,
    /// Window end (exclusive); `now` when absent.
    pub to: Option<DateTime<Utc>>,
    /// Grouping.
    #[serde(default)]
    pub group_by: GroupBy,
}

/// Figures of one group (or of all tickets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// The group's key (`all` for the total).
    pub key: String,
    /// Tickets created in the window.
    pub count: u64,
    /// Of those, not resolved or closed as of the window's end.
    pub open: u64,
    /// Of those, resolved or closed as of the window's end.
    pub resolved: u64,
    /// Count per current status (now, whatever the window).
    pub by_status: BTreeMap<String, u64>,
    /// Mean resolution time in seconds (creation to the standing resolution).
    pub avg: Option<f64>,
    /// Median resolution time in seconds.
    pub p50: Option<f64>,
    /// 90th percentile resolution time in seconds.
    pub p90: Option<f64>,
    /// 99th percentile resolution time in seconds.
    pub p99: Option<f64>,
    /// Median time to the first public staff comment, in seconds.
    pub first_response_p50: Option<f64>,
    /// Resolved later than the priority's target, or unresolved and older
    /// than the target at the window's end.
    pub sla_breaches: u64,
    /// Tickets whose latest dispatch is still under way.
    pub active_dispatches: u64,
    /// Dispatches of the group's tickets.
    pub dispatch: DispatchFigures,
}

/// Dispatch figures of a set of dispatches: how many, and how long each
/// step took (seconds, over the dispatches that made the step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispatchFigures {
    /// The set's key (a group key, a technician id, a site, `all`).
    pub key: String,
    /// Requests sent to a technician.
    pub requested: u64,
    /// Requests nobody could be found for (everyone was notified).
    pub broadcast: u64,
    /// Requests accepted.
    pub accepted: u64,
    /// Requests declined (or timed out).
    pub declined: u64,
    /// Dispatches completed.
    pub completed: u64,
    /// Median time from request to acceptance.
    pub time_to_accept_p50: Option<f64>,
    /// 90th percentile time from request to acceptance.
    pub time_to_accept_p90: Option<f64>,
    /// Median travel time (accepted to on site).
    pub travel_time_p50: Option<f64>,
    /// 90th percentile travel time.
    pub travel_time_p90: Option<f64>,
    /// Median time on site (on site to completed).
    pub on_site_time_p50: Option<f64>,
    /// 90th percentile time on site.
    pub on_site_time_p90: Option<f64>,
}

/// Dispatch figures per technician and per site (the totals are in
/// `total.dispatch`, per group in each group's `dispatch`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispatchReport {
    /// Per technician asked (by id), broadcasts left out.
    pub by_technician: Vec<DispatchFigures>,
    /// Per site of the ticket (`none` when unknown).
    pub by_site: Vec<DispatchFigures>,
}

/// One dispatch's timeline, kept dense like [`StatRow`] (one row per
/// dispatch in request order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchRow {
    /// The ticket's row (index into the tenant's stat rows).
    pub ticket: u64,
    /// The technician asked, `None` on broadcast.
    pub technician: Option<uuid::Uuid>,
    /// Requested.
    pub requested_at: Micros,
    /// Accepted.
    pub accepted_at: Option<Micros>,
    /// Reported on site.
    pub on_site_at: Option<Micros>,
    /// Completed.
    pub completed_at: Option<Micros>,
    /// Declined or timed out.
    pub declined: bool,
}

impl DispatchRow {
    /// The row a `DispatchRequested` of ticket row `ticket` starts.
    pub fn requested(ticket: u64, technician: Option<uuid::Uuid>, at: Micros) -> DispatchRow {
        DispatchRow {
            ticket,
            technician,
            requested_at: at,
            accepted_at: None,
            on_site_at: None,
            completed_at: None,
            declined: false,
        }
    }

    /// Folds a later event of the dispatch (the first time of each step counts).
    pub fn apply(&mut self, payload: &EventPayload, at: Micros) {
        match payload {
            EventPayload::DispatchAccepted { .. } => {
                self.accepted_at.get_or_insert(at);
            }
            EventPayload::DispatchDeclined { .. } => self.declined = true,
            EventPayload::DispatchProgressed {
                stage: DispatchPhase::OnSite,
                ..
            } => {
                self.on_site_at.get_or_insert(at);
            }
            EventPayload::DispatchCompleted { .. } => {
                self.completed_at.get_or_insert(at);
            }
            _ => {}
        }
    }
}

#[derive(Default)]
struct DispatchAcc {
    requested: u64,
    broadcast: u64,
    accepted: u64,
    declined: u64,
    completed: u64,
    to_accept_us: Vec<i64>,
    travel_us: Vec<i64>,
    on_site_us: Vec<i64>,
}

impl DispatchAcc {
    fn add(&mut self, d: &DispatchRow) {
        if d.technician.is_none() {
            self.broadcast += 1;
            return;
        }
        self.requested += 1;
        self.declined += u64::from(d.declined);
        if let Some(accepted) = d.accepted_at {
            self.accepted += 1;
            self.to_accept_us.push(accepted - d.requested_at);
            if let Some(on_site) = d.on_site_at {
                self.travel_us.push(on_site - accepted);
            }
        }
        if let Some(done) = d.completed_at {
            self.completed += 1;
            if let Some(on_site) = d.on_site_at {
                self.on_site_us.push(done - on_site);
            }
        }
    }

    fn finish(mut self, key: String) -> DispatchFigures {
        DispatchFigures {
            key,
            requested: self.requested,
            broadcast: self.broadcast,
            accepted: self.accepted,
            declined: self.declined,
            completed: self.completed,
            time_to_accept_p50: percentile(&mut self.to_accept_us, 50),
            time_to_accept_p90: percentile(&mut self.to_accept_us, 90),
            travel_time_p50: percentile(&mut self.travel_us, 50),
            travel_time_p90: percentile(&mut self.travel_us, 90),
            on_site_time_p50: percentile(&mut self.on_site_us, 50),
            on_site_time_p90: percentile(&mut self.on_site_us, 90),
        }
    }
}

/// The statistics answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    /// Window start, if any.
    pub from: Option<DateTime<Utc>>,
    /// Window end (exclusive): the query's `to`, or `now` when absent.
    pub to: DateTime<Utc>,
    /// The instant unresolved tickets' age is measured at: `to`, or
    /// `now` when `to` is in the future.
    pub as_of: DateTime<Utc>,
    /// The grouping used.
    pub group_by: GroupBy,
    /// Targets the breaches were counted against.
    pub sla_targets_s: SlaTargets,
    /// One entry per group, in group order.
    pub groups: Vec<GroupStats>,
    /// All tickets of the window together.
    pub total: GroupStats,
    /// Active dispatches of the window's tickets.
    pub active_dispatches: u64,
    /// Dispatch figures of the window's tickets per technician and site.
    pub dispatch: DispatchReport,
}

/// What the statistics need of one ticket, kept dense (one row per
/// ticket in creation order) so a query over 100,000 tickets scans a flat
/// array instead of chasing every ticket's full state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatRow {
    /// Creation time.
    pub created_at: Micros,
    /// Standing resolution, if resolved or closed.
    pub resolved_at: Option<Micros>,
    /// First public staff comment.
    pub first_response_at: Option<Micros>,
    /// Current assignee.
    pub assignee: Option<uuid::Uuid>,
    /// Index into the tenant's site names.
    pub site: Option<u32>,
    /// Current priority.
    pub priority: Priority,
    /// Kind of work.
    pub kind: event_store::TicketKind,
    /// Current status.
    pub status: TicketStatus,
    /// Latest dispatch under way.
    pub dispatch_active: bool,
}

impl StatRow {
    /// The row of `t`, whose site has index `site`.
    pub fn of(t: &TicketView, site: Option<u32>) -> StatRow {
        StatRow {
            created_at: t.created_at,
            resolved_at: t.resolved_at.filter(|_| t.is_resolved()),
            first_response_at: t.first_response_at,
            assignee: t.assignee,
            site,
            priority: t.priority,
            kind: t.kind,
            status: t.status,
            dispatch_active: t.dispatch.as_ref().is_some_and(|d| d.status.is_active()),
        }
    }
}

#[derive(Default)]
struct Acc {
    count: u64,
    open: u64,
    by_status: [u64; 5],
    resolution_us: Vec<i64>,
    first_response_us: Vec<i64>,
    sla_breaches: u64,
    active_dispatches: u64,
    dispatch: DispatchAcc,
}

impl Acc {
    fn add(&mut self, t: &StatRow, cutoff: Micros, sla: &SlaTargets) {
        self.count += 1;
        self.by_status[t.status as usize] += 1;
        let target = sla.micros(t.priority);
        // As of the cutoff: a resolution or a first response after it had
        // not happened yet, so a window ending last Friday reads as it
        // would have then.
        match t.resolved_at.filter(|at| *at <= cutoff) {
            Some(at) => {
                let took = at - t.created_at;
                self.resolution_us.push(took);
                if took > target {
                    self.sla_breaches += 1;
                }
            }
            None => {
                self.open += 1;
                if cutoff - t.created_at > target {
                    self.sla_breaches += 1;
                }
            }
        }
        if let Some(at) = t.first_response_at.filter(|at| *at <= cutoff) {
            self.first_response_us.push(at - t.created_at);
        }
        if t.dispatch_active {
            self.active_dispatches += 1;
        }
    }

    fn finish(mut self, key: String) -> GroupStats {
        let key_again = key.clone();
        let n = self.resolution_us.len();
        let avg = (n > 0).then(|| {
            let sum: i128 = self.resolution_us.iter().map(|v| *v as i128).sum();
            seconds((sum / n as i128) as i64)
        });
        GroupStats {
            key,
            count: self.count,
            open: self.open,
            resolved: n as u64,
            by_status: status_names()
                .into_iter()
                .zip(self.by_status)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            avg,
            p50: percentile(&mut self.resolution_us, 50),
            p90: percentile(&mut self.resolution_us, 90),
            p99: percentile(&mut self.resolution_us, 99),
            first_response_p50: percentile(&mut self.first_response_us, 50),
            sla_breaches: self.sla_breaches,
            active_dispatches: self.active_dispatches,
            dispatch: self.dispatch.finish(key_again),
        }
    }
}

/// Nearest-rank percentile, in seconds. Selects instead of sorting:
/// linear time, and the order of `values` does not matter to the caller.
fn percentile(values: &mut [i64], p: usize) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = (p * values.len()).div_ceil(100).max(1);
    let (_, v, _) = values.select_nth_unstable(rank - 1);
    Some(seconds(*v))
}

/// A group, borrowed from the ticket so grouping allocates nothing per
/// ticket; ordered by urgency, name, or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum GroupKey<'a> {
    Priority(Priority),
    Kind(event_store::TicketKind),
    Assignee(Option<uuid::Uuid>),
    Site(Option<&'a str>),
    Week(i32, u32),
}

impl GroupKey<'_> {
    fn of<'a>(t: &StatRow, by: GroupBy, sites: &'a [String]) -> GroupKey<'a> {
        match by {
            GroupBy::Priority => GroupKey::Priority(t.priority),
            GroupBy::Kind => GroupKey::Kind(t.kind),
            GroupBy::Assignee => GroupKey::Assignee(t.assignee),
            GroupBy::Site => GroupKey::Site(
                t.site
                    .and_then(|i| sites.get(i as usize))
                    .map(String::as_str),
            ),
            GroupBy::Week => {
                let week = instant(t.created_at).iso_week();
                GroupKey::Week(week.year(), week.week())
            }
        }
    }

    fn name(&self) -> String {
        match self {
            GroupKey::Priority(p) => enum_name(p),
            GroupKey::Kind(k) => enum_name(k),
            GroupKey::Assignee(a) => a.map_or_else(|| "unassigned".into(), |a| a.to_string()),
            GroupKey::Site(s) => s.unwrap_or("none").to_string(),
            GroupKey::Week(y, w) => format!("{y}-W{w:02}"),
        }
    }
}

fn enum_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Computes the report over `tickets` (one tenant's rows, whose sites
/// index `sites`) and their `dispatches`, with `now` standing in for an
/// absent or future `to`. A dispatch counts when its ticket is in the
/// window.
pub fn compute(
    tickets: &[StatRow],
    dispatches: &[DispatchRow],
    sites: &[String],
    query: &StatsQuery,
    sla: &SlaTargets,
    now: DateTime<Utc>,
) -> StatsReport {
    let as_of = query.to.map_or(now, |to| to.min(now));
    let window_end = query.to.map_or(i64::MAX, |t| micros(&t));
    let window_start = query.from.map_or(i64::MIN, |f| micros(&f));
    let cutoff = micros(&as_of);
    let mut groups: std::collections::HashMap<GroupKey<'_>, Acc> = std::collections::HashMap::new();
    let mut total = Acc::default();
    for t in tickets
        .iter()
        .filter(|t| t.created_at >= window_start && t.created_at < window_end)
    {
        groups
            .entry(GroupKey::of(t, query.group_by, sites))
            .or_default()
            .add(t, cutoff, sla);
        total.add(t, cutoff, sla);
    }
    let mut by_technician: HashMap<uuid::Uuid, DispatchAcc> = HashMap::new();
    let mut by_site: HashMap<Option<&str>, DispatchAcc> = HashMap::new();
    for d in dispatches {
        let Some(t) = usize::try_from(d.ticket).ok().and_then(|i| tickets.get(i)) else {
            continue;
        };
        if t.created_at < window_start || t.created_at >= window_end {
            continue;
        }
        groups
            .entry(GroupKey::of(t, query.group_by, sites))
            .or_default()
            .dispatch
            .add(d);
        total.dispatch.add(d);
        if let Some(tech) = d.technician {
            by_technician.entry(tech).or_default().add(d);
        }
        let site = t
            .site
            .and_then(|i| sites.get(i as usize))
            .map(String::as_str);
        by_site.entry(site).or_default().add(d);
    }
    let dispatch = DispatchReport {
        by_technician: sorted_figures(by_technician, |t| t.to_string()),
        by_site: sorted_figures(by_site, |s| s.unwrap_or("none").to_string()),
    };
    let total = total.finish("all".into());
    StatsReport {
        from: query.from,
        to: query.to.unwrap_or(now),
        as_of,
        group_by: query.group_by,
        sla_targets_s: *sla,
        groups: {
            let mut groups: Vec<_> = groups.into_iter().collect();
            groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            groups
                .into_iter()
                .map(|(k, acc)| acc.finish(k.name()))
                .collect()
        },
        active_dispatches: total.active_dispatches,
        total,
        dispatch,
    }
}

fn sorted_figures<K: Ord>(
    accs: HashMap<K, DispatchAcc>,
    name: impl Fn(&K) -> String,
) -> Vec<DispatchFigures> {
    let mut accs: Vec<(K, DispatchAcc)> = accs.into_iter().collect();
    accs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    accs.into_iter()
        .map(|(k, acc)| acc.finish(name(&k)))
        .collect()
}

impl StatsReport {
    /// The report as CSV: a header, one row per group, then `all`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "group,count,open,resolved,avg_s,p50_s,p90_s,p99_s,first_response_p50_s,sla_breaches,active_dispatches,",
        );
        out.push_str(DISPATCH_CSV_COLUMNS);
        out.push('\n');
        for g in self.groups.iter().chain(std::iter::once(&self.total)) {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},",
                csv_field(&g.key),
                g.count,
                g.open,
                g.resolved,
                csv_number(g.avg),
                csv_number(g.p50),
                csv_number(g.p90),
                csv_number(g.p99),
                csv_number(g.first_response_p50),
                g.sla_breaches,
                g.active_dispatches
            ));
            push_dispatch_csv(&mut out, &g.dispatch);
        }
        out
    }

    /// The dispatch figures as CSV: a header, one row per technician
    /// (`technician:<id>`), one per site (`site:<name>`), then `all`.
    pub fn dispatch_to_csv(&self) -> String {
        let mut out = format!("group,{DISPATCH_CSV_COLUMNS}\n");
        let rows = self
            .dispatch
            .by_technician
            .iter()
            .map(|d| (format!("technician:{}", d.key), d))
            .chain(
                self.dispatch
                    .by_site
                    .iter()
                    .map(|d| (format!("site:{}", d.key), d)),
            )
            .chain(std::iter::once(("all".to_string(), &self.total.dispatch)));
        for (key, d) in rows {
            out.push_str(&csv_field(&key));
            out.push(',');
            push_dispatch_csv(&mut out, d);
        }
        out
    }
}

/// The dispatch columns of both CSV exports.
const DISPATCH_CSV_COLUMNS: &str = "dispatches_requested,dispatches_broadcast,dispatches_accepted,dispatches_declined,dispatches_completed,time_to_accept_p50_s,time_to_accept_p90_s,travel_time_p50_s,travel_time_p90_s,on_site_time_p50_s,on_site_time_p90_s";

fn csv_number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Appends `d`'s [`DISPATCH_CSV_COLUMNS`] and the end of the row.
fn push_dispatch_csv(out: &mut String, d: &DispatchFigures) {
    out.push_str(&format!(
        "{},{},{},{},{},{},{},{},{},{},{}\n",
        d.requested,
        d.broadcast,
        d.accepted,
        d.declined,
        d.completed,
        csv_number(d.time_to_accept_p50),
        csv_number(d.time_to_accept_p90),
        csv_number(d.travel_time_p50),
        csv_number(d.travel_time_p90),
        csv_number(d.on_site_time_p50),
        csv_number(d.on_site_time_p90),
    ));
}

/// First characters with which a spreadsheet reads a cell as a formula
/// (OWASP's CSV injection list): a text cell starting with one gets a
/// leading `'`. Text cells only: the numbers are the server's own.
const CSV_FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Quotes a text field that would break the row, and defuses spreadsheet
/// formulas (group keys such as site names come from customers).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(CSV_FORMULA_STARTS) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Every status name, for callers that want all columns.
pub fn status_names() -> [&'static str; 5] {
    [
        TicketStatus::Open.as_str(),
        TicketStatus::Assigned.as_str(),
        TicketStatus::InProgress.as_str(),
        TicketStatus::Resolved.as_str(),
        TicketStatus::Closed.as_str(),
    ]
}

#[cfg(test)]
mod tests {
    use event_store::TicketKind;

    use super::*;

    const HOUR_US: i64 = 3_600_000_000;

    fn row(resolved_h: Option<i64>, first_response_h: Option<i64>) -> StatRow {
        StatRow {
            created_at: 0,
            resolved_at: resolved_h.map(|h| h * HOUR_US),
            first_response_at: first_response_h.map(|h| h * HOUR_US),
            assignee: None,
            site: None,
            priority: Priority::High,
            kind: TicketKind::Incident,
            status: if resolved_h.is_some() {
                TicketStatus::Resolved
            } else {
                TicketStatus::Open
            },
            dispatch_active: false,
        }
    }

    fn total(rows: &[StatRow], to_h: Option<i64>) -> GroupStats {
        let query = StatsQuery {
            from: None,
            to: to_h.map(|h| instant(h * HOUR_US)),
            group_by: GroupBy::Priority,
        };
        let now = instant(30 * HOUR_US);
        compute(rows, &[], &[], &query, &SlaTargets::default(), now).total
    }

    #[test]
    fn csv_text_cells_cannot_start_a_formula() {
        for (raw, cell) in [
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "\"'\r=1\""),
            ("=1,2", "\"'=1,2\""),
            ("HQ", "HQ"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(csv_field(raw), cell, "{raw:?}");
        }
    }

    #[test]
    fn csv_export_defuses_customer_sites_but_not_numbers() {
        let mut r = row(Some(2), Some(1));
        r.site = Some(0);
        let sites = ["\t=cmd|' /C calc'!A0".to_string()];
        let query = StatsQuery {
            from: None,
            to: None,
            group_by: GroupBy::Site,
        };
        let report = compute(
            &[r],
            &[],
            &sites,
            &query,
            &SlaTargets::default(),
            instant(30 * HOUR_US),
        );
        let csv = report.to_csv();
        let rows: Vec<&str> = csv.lines().collect();
        assert!(
            rows[1].starts_with("'\t=cmd|' /C calc'!A0,1,0,1,7200,"),
            "{csv}"
        );
        assert!(rows[2].starts_with("all,1,0,1,"), "{csv}");
    }

    #[test]
    fn a_window_ending_in_the_past_counts_what_had_happened_by_its_end() {
        // Resolved after 2 h; resolved after 20 h; never. High: 8 h target.
        let rows = [
            row(Some(2), Some(1)),
            row(Some(20), Some(12)),
            row(None, None),
        ];
        let then = total(&rows, Some(10));
        assert_eq!((then.count, then.open, then.resolved), (3, 2, 1));
        assert_eq!(then.p50, Some(2.0 * 3600.0));
        assert_eq!(then.first_response_p50, Some(3600.0));
        // The two open at 10 h are both older than 8 h.
        assert_eq!(then.sla_breaches, 2);
        let now = total(&rows, None);
        assert_eq!((now.count, now.open, now.resolved), (3, 1, 2));
        assert_eq!(now.p99, Some(20.0 * 3600.0));
        // Resolved in 20 h, and open for 30 h.
        assert_eq!(now.sla_breaches, 2);
    }
}
