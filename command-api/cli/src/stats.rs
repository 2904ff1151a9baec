//! `ticketlog stats`: the analysts' statistics of one tenant, exported as
//! JSON or CSV, answered by the same query as `GET /api/v1/stats` under a
//! local analyst principal (see `offline` for why the CLI is trusted).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use event_store::Role;
use projections::{GroupBy, StatsQuery};

use super::location::StoreLocation;
use super::offline;

/// Output format of `ticketlog stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// The API's JSON answer, pretty-printed.
    Json,
    /// A header row, one row per group, then `all`.
    Csv,
}

/// `ticketlog stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    store: StoreLocation,
    /// Tenant whose tickets are counted.
    #[arg(long, env = "TICKETLOG_TENANT", default_value = "demo")]
    tenant: String,
    /// Window start, RFC 3339 (tickets created at or after it).
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// Window end, RFC 3339 (tickets created before it; default now).
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// Grouping: priority, kind, assignee, site or week.
    #[arg(long, default_value = "priority", value_parser = parse_group_by)]
    group_by: GroupBy,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatsFormat::Json)]
    format: StatsFormat,
    /// Print the dispatch figures (per technician, per site) instead.
    #[arg(long)]
    dispatch: bool,
}

/// Parses a grouping by its API name (`group_by=` of `GET /api/v1/stats`).
fn parse_group_by(s: &str) -> Result<GroupBy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown grouping {s:?} (priority, kind, assignee, site, week)"))
}

/// Prints the report.
pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let query = StatsQuery {
        from: args.from,
        to: args.to,
        group_by: args.group_by,
    };
    let principal = offline::cli_principal(&args.tenant, Role::Analyst);
    let runtime = offline::runtime()?;
    let report = runtime.block_on(async {
        let store = offline::open_store(&args.store).await?;
        let report = offline::open_projections(&store)
            .await
            .and_then(|p| Ok(p.stats(&principal, &query, Utc::now())?));
        let closed = store.close().await;
        let report = report?;
        closed?;
        anyhow::Ok(report)
    })?;
    let out = match (args.format, args.dispatch) {
        (StatsFormat::Csv, false) => report.to_csv(),
        (StatsFormat::Csv, true) => report.dispatch_to_csv(),
        (StatsFormat::Json, false) => serde_json::to_string_pretty(&report)? + "\n",
        (StatsFormat::Json, true) => serde_json::to_string_pretty(&report.dispatch)? + "\n",
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groupings_parse_by_their_api_names() {
        assert_eq!(parse_group_by("week"), Ok(GroupBy::Week));
        assert_eq!(parse_group_by("site"), Ok(GroupBy::Site));
        assert!(parse_group_by("colour")
            .expect_err("unknown")
            .contains("priority, kind"));
    }
}
