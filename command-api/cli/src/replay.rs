//! `ticketlog replay`: one ticket's recorded history for a person at a
//! terminal (who did what when, what changed, each record's hash), and with
//! `--as-of` the ticket as it stood then. Answered by the same audit query
//! as `GET /api/v1/tickets/{id}/audit`, under a local auditor principal
//! (see `offline` for why the CLI is trusted).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use event_store::{Role, TicketId};
use projections::{AsOf, Projections};

use super::location::StoreLocation;
use super::offline;

/// `ticketlog replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    store: StoreLocation,
    /// Tenant of the ticket.
    #[arg(long, env = "TICKETLOG_TENANT", default_value = "demo")]
    tenant: String,
    /// The ticket: its id (UUID) or its number in the tenant (`7` or `#7`).
    #[arg(long)]
    ticket: String,
    /// Stop at this moment: an RFC 3339 time or a log position.
    #[arg(long, value_parser = parse_as_of)]
    as_of: Option<AsOf>,
    /// Print the audit report as JSON (as the API returns it) instead of text.
    #[arg(long)]
    json: bool,
}

/// How `--ticket` names a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TicketRef {
    Id(TicketId),
    Number(u64),
}

fn parse_ticket(s: &str) -> anyhow::Result<TicketRef> {
    let digits = s.strip_prefix('#').unwrap_or(s);
    if let Ok(n) = digits.parse::<u64>() {
        return Ok(TicketRef::Number(n));
    }
    uuid::Uuid::parse_str(s)
        .map(TicketRef::Id)
        .map_err(|_| anyhow::anyhow!("--ticket {s:?}: expected a ticket id (UUID) or number"))
}

fn parse_as_of(s: &str) -> Result<AsOf, String> {
    AsOf::parse(s).map_err(|_| format!("{s:?}: expected a log position or an RFC 3339 time"))
}

/// The id of the ticket `reference` names in `tenant`, if it exists.
fn resolve(projections: &Projections, tenant: &str, reference: TicketRef) -> Option<TicketId> {
    match reference {
        TicketRef::Id(id) => Some(id),
        TicketRef::Number(n) => projections.with_model(|m| {
            m.tenants.get(tenant).and_then(|t| {
                t.tickets
                    .iter()
                    .find(|(_, entry)| entry.state.number == n)
                    .map(|(id, _)| *id)
            })
        }),
    }
}

/// Prints the history.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let reference = parse_ticket(&args.ticket)?;
    let principal = offline::cli_principal(&args.tenant, Role::Auditor);
    let runtime = offline::runtime()?;
    let report = runtime.block_on(async {
        let store = offline::open_store(&args.store).await?;
        let report = async {
            let projections = offline::open_projections(&store).await?;
            let not_found =
                || anyhow::anyhow!("no ticket {} in tenant {}", args.ticket, args.tenant);
            let id = resolve(&projections, &args.tenant, reference).ok_or_else(not_found)?;
            match projections.audit(&principal, id, args.as_of).await {
                Err(projections::ProjectionError::NotFound) => Err(not_found()),
                other => other.context("reading the ticket's history"),
            }
        }
        .await;
        let closed = store.close().await;
        let report = report?;
        closed?;
        anyhow::Ok(report)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_named_by_id_or_number() {
        assert_eq!(parse_ticket("#7").expect("number"), TicketRef::Number(7));
        assert_eq!(parse_ticket("12").expect("number"), TicketRef::Number(12));
        let id = uuid::Uuid::from_u128(5);
        assert_eq!(
            parse_ticket(&id.to_string()).expect("uuid"),
            TicketRef::Id(id)
        );
        assert!(parse_ticket("printer").is_err());
    }

    #[test]
    fn as_of_takes_a_position_or_a_time() {
        assert_eq!(parse_as_of("42"), Ok(AsOf::Position(42)));
        assert!(matches!(
            parse_as_of("2025-02-01T10:00:00Z"),
            Ok(AsOf::Time(_))
        ));
        assert!(parse_as_of("yesterday").is_err());
    }
}
