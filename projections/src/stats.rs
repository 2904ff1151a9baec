//! Statistics for analysts: counts, resolution and first-response times,
//! SLA breaches, per group and time window.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use event_store::{Priority, TicketStatus};
use serde::{Deserialize, Serialize};

use crate::ticket::TicketState;
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
    /// Of those, not resolved or closed.
    pub open: u64,
    /// Of those, resolved or closed.
    pub resolved: u64,
    /// Count per current status.
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
    pub fn of(t: &TicketState, site: Option<u32>) -> StatRow {
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
}

impl Acc {
    fn add(&mut self, t: &StatRow, cutoff: Micros, sla: &SlaTargets) {
        self.count += 1;
        self.by_status[t.status as usize] += 1;
        let target = sla.micros(t.priority);
        match t.resolved_at {
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
        if let Some(at) = t.first_response_at {
            self.first_response_us.push(at - t.created_at);
        }
        if t.dispatch_active {
            self.active_dispatches += 1;
        }
    }

    fn finish(mut self, key: String) -> GroupStats {
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
/// index `sites`), with `now` standing
/// in for an absent or future `to`.
pub fn compute(
    tickets: &[StatRow],
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
    }
}

impl StatsReport {
    /// The report as CSV: a header, one row per group, then `all`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "group,count,open,resolved,avg_s,p50_s,p90_s,p99_s,first_response_p50_s,sla_breaches,active_dispatches\n",
        );
        for g in self.groups.iter().chain(std::iter::once(&self.total)) {
            let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&g.key),
                g.count,
                g.open,
                g.resolved,
                f(g.avg),
                f(g.p50),
                f(g.p90),
                f(g.p99),
                f(g.first_response_p50),
                g.sla_breaches,
                g.active_dispatches
            ));
        }
        out
    }
}

/// Quotes a field that would break the row, and defuses spreadsheet formulas.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
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
