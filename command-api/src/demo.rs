//! `serve --demo`: the `demo` tenant with one user per role (password
//! `demo`) and a few tickets with history. Idempotent: a restart finds the
//! users by name and the tickets by their recorded plan, and appends nothing new.

use std::net::SocketAddr;

use event_store::{
    EventPayload, Location, Principal, Priority, Role, TicketId, TicketKind, TicketStatus, UserId,
};
use thiserror::Error;
use uuid::Uuid;

use crate::auth::{AuthError, NewUser, User};
use crate::domain::{
    Action, AssignDispatch, AssignTicket, ChangeStatus, CreateTicket, DispatchPhase,
    DispatchResponse, PostComment, ProgressDispatch, ReportLocation, RespondDispatch,
};
use crate::http::routes::commands::{command_id, created_id};
use crate::http::{ApiError, AppState};

/// Namespace of the demo's idempotency keys: each step has a fixed key, so
/// a restart replays the script and the store appends nothing new.
const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x9d3a_04c1_6e2b_4f7a_8c55_1b0e_d4f3_a2c9);

/// The demo tenant.
pub const DEMO_TENANT: &str = "demo";
/// Every demo user's password.
pub const DEMO_PASSWORD: &str = "demo";
/// The demo users and their roles.
pub const DEMO_USERS: [(&str, Role); 7] = [
    ("alice", Role::Agent),
    ("bob", Role::Agent),
    ("carol", Role::Customer),
    ("dave", Role::Technician),
    ("erin", Role::Auditor),
    ("frank", Role::Analyst),
    ("root", Role::Admin),
];

/// Why seeding failed.
#[derive(Debug, Error)]
pub enum DemoError {
    /// The user directory failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A demo command was refused.
    #[error("demo step {step} failed: {} {}", .error.code, .error.message)]
    Command {
        /// The step's key.
        step: String,
        /// The API error it got.
        error: ApiError,
    },
    /// Hashing ran on a blocking thread that failed.
    #[error("seeding task failed: {0}")]
    Task(String),
}

/// What seeding did.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// The demo users.
    pub users: Vec<User>,
    /// Tickets of the demo (new or found).
    pub tickets: usize,
}

impl DemoSummary {
    /// How to log in, for the terminal.
    pub fn instructions(&self, addr: SocketAddr) -> String {
        let names: Vec<String> = self
            .users
            .iter()
            .map(|u| format!("{} ({})", u.name, u.role.as_str()))
            .collect();
        format!(
            "Demo tenant '{DEMO_TENANT}' ready: {} tickets; users {} — password '{DEMO_PASSWORD}' for all.\n\
             Log in:\n  curl -s -X POST http://{addr}/api/v1/auth/token -H 'content-type: application/json' \\\n    \
             -d '{{\"tenant\":\"{DEMO_TENANT}\",\"username\":\"alice\",\"password\":\"{DEMO_PASSWORD}\"}}'\n\
             Then: curl -s http://{addr}/api/v1/tickets/<id> -H \"Authorization: Bearer $TOKEN\"",
            self.tickets,
            names.join(", ")
        )
    }
}

/// Seeds the demo tenant (users, then tickets); safe to call on every start.
pub async fn seed(state: &AppState) -> Result<DemoSummary, DemoError> {
    let directory = state.users().clone();
    let users = tokio::task::spawn_blocking(move || {
        DEMO_USERS
            .iter()
            .map(|(name, role)| {
                directory.ensure(NewUser {
                    tenant: DEMO_TENANT.into(),
                    name: (*name).into(),
                    role: *role,
                    password: DEMO_PASSWORD.into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| DemoError::Task(e.to_string()))??;
    let tickets = seed_tickets(state, &users).await?;
    Ok(DemoSummary { users, tickets })
}

fn principal(users: &[User], name: &str) -> Principal {
    let user = users.iter().find(|u| u.name == name);
    Principal {
        user_id: user.map_or(Uuid::nil(), |u| u.id),
        tenant: DEMO_TENANT.into(),
        role: user.map_or(Role::Customer, |u| u.role),
        name: name.into(),
    }
}

/// How far back the demo's story starts, so its statistics (resolution and
/// first-response times, SLA breaches, weeks) show real durations.
const DEMO_HISTORY_DAYS: i64 = 5;
/// Least and most minutes between two scripted steps.
const DEMO_STEP_MINUTES_MIN: i64 = 7;
const DEMO_STEP_MINUTES_SPREAD: i64 = 170;

/// Runs one scripted command with the step's fixed idempotency key, at the
/// story's clock: each step happens some minutes after the previous one.
struct Script<'a> {
    state: &'a AppState,
    users: &'a [User],
    /// When the story starts.
    start: chrono::DateTime<chrono::Utc>,
    /// Minutes of story elapsed so far.
    elapsed_minutes: std::sync::atomic::AtomicI64,
}

impl Script<'_> {
    async fn run(
        &self,
        step: &str,
        who: &str,
        action: Action,
    ) -> Result<event_store::AppendOutcome, DemoError> {
        let key = Uuid::new_v5(&DEMO_NAMESPACE, step.as_bytes());
        // A fixed, step-dependent gap keeps the story the same on every seed.
        let gap = DEMO_STEP_MINUTES_MIN
            + step.bytes().map(i64::from).sum::<i64>() % DEMO_STEP_MINUTES_SPREAD;
        let minutes = self
            .elapsed_minutes
            .fetch_add(gap, std::sync::atomic::Ordering::Relaxed)
            + gap;
        let at = self.start + chrono::Duration::minutes(minutes);
        let principal = principal(self.users, who);
        let id = command_id(&principal, Some(key));
        self.state
            .service()
            .execute_at(&principal, action, id, None, at)
            .await
            .map_err(|error| DemoError::Command {
                step: step.into(),
                error: ApiError::from(error),
            })
    }

    async fn create(
        &self,
        step: &str,
        who: &str,
        title: &str,
        priority: Priority,
        kind: TicketKind,
        location: Option<Location>,
    ) -> Result<TicketId, DemoError> {
        let outcome = self
            .run(
                step,
                who,
                Action::CreateTicket(CreateTicket {
                    ticket_id: Uuid::now_v7(),
                    number: 0,
                    title: title.into(),
                    description: format!("{title} (demo ticket)"),
                    priority,
                    kind,
                    location,
                    tags: vec!["demo".into()],
                    device: None,
                }),
            )
            .await?;
        Ok(outcome.stream_id)
    }

    async fn comment(
        &self,
        step: &str,
        who: &str,
        ticket: TicketId,
        body: &str,
        internal: bool,
    ) -> Result<(), DemoError> {
        let action = Action::PostComment(PostComment {
            ticket_id: ticket,
            comment_id: Uuid::now_v7(),
            body: body.into(),
            internal,
        });
        self.run(step, who, action).await.map(|_| ())
    }

    async fn assign(
        &self,
        step: &str,
        who: &str,
        ticket: TicketId,
        assignee: UserId,
    ) -> Result<(), DemoError> {
        let action = Action::AssignTicket(AssignTicket {
            ticket_id: ticket,
            assignee_id: assignee,
        });
        self.run(step, who, action).await.map(|_| ())
    }

    async fn status(
        &self,
        step: &str,
        who: &str,
        ticket: TicketId,
        status: TicketStatus,
        note: Option<&str>,
    ) -> Result<(), DemoError> {
        let action = Action::ChangeStatus(ChangeStatus {
            ticket_id: ticket,
            status,
            note: note.map(str::to_string),
        });
        self.run(step, who, action).await.map(|_| ())
    }
}

async fn seed_tickets(state: &AppState, users: &[User]) -> Result<usize, DemoError> {
    let s = Script {
        state,
        users,
        start: chrono::Utc::now() - chrono::Duration::days(DEMO_HISTORY_DAYS),
        elapsed_minutes: std::sync::atomic::AtomicI64::new(0),
    };
    let id_of = |name: &str| principal(users, name).user_id;
    let hq = Location {
        lat: Some(52.5200),
        lon: Some(13.4050),
        site: Some("HQ".into()),
        building: Some("A".into()),
        floor: Some("3".into()),
        address: Some("Unter den Linden 1, Berlin".into()),
    };

    // dave reports where he is, so dispatches have a distance and an ETA.
    s.run(
        "dave-location-1",
        "dave",
        Action::ReportLocation(ReportLocation {
            lat: 52.5300,
            lon: 13.3850,
            site: Some("HQ".into()),
            building: None,
            floor: None,
        }),
    )
    .await?;

    // 1: a printer jam, worked by bob, with an internal note.
    let printer = s
        .create(
            "t1-create",
            "carol",
            "Printer on floor 3 jams on every job",
            Priority::High,
            TicketKind::Incident,
            Some(hq.clone()),
        )
        .await?;
    s.comment(
        "t1-c1",
        "alice",
        printer,
        "Thanks Carol, we are looking into it.",
        false,
    )
    .await?;
    s.comment(
        "t1-c2",
        "alice",
        printer,
        "Internal: likely the fuser unit; spare is in the storeroom.",
        true,
    )
    .await?;
    s.assign("t1-assign", "alice", printer, id_of("bob"))
        .await?;
    s.status(
        "t1-progress",
        "bob",
        printer,
        TicketStatus::InProgress,
        Some("Ordering the part"),
    )
    .await?;

    // 2: the VPN, dispatched to dave, who accepts, travels and completes.
    let vpn = s
        .create(
            "t2-create",
            "carol",
            "VPN drops every hour",
            // High, not critical: critical incidents with a location are
            // dispatched automatically, and this story shows bob choosing.
            Priority::High,
            TicketKind::Incident,
            Some(hq),
        )
        .await?;
    s.assign("t2-assign", "bob", vpn, id_of("bob")).await?;
    let fresh_dispatch = Uuid::now_v7();
    let outcome = s
        .run(
            "t2-dispatch",
            "bob",
            Action::AssignDispatch(AssignDispatch {
                ticket_id: vpn,
                dispatch_id: fresh_dispatch,
                technician_id: Some(id_of("dave")),
                radius_km: None,
                speed_kmh: 0.0,
                technicians: vec![],
            }),
        )
        .await?;
    let dispatch = created_id(state, &outcome, fresh_dispatch, |e| match e {
        EventPayload::DispatchRequested { dispatch_id, .. } => Some(*dispatch_id),
        _ => None,
    })
    .await
    .map_err(|error| DemoError::Command {
        step: "t2-dispatch".into(),
        error,
    })?;
    s.run(
        "t2-accept",
        "dave",
        Action::RespondDispatch(RespondDispatch {
            dispatch_id: dispatch,
            response: DispatchResponse::Accept,
            reason: None,
        }),
    )
    .await?;
    for (step, stage) in [
        ("t2-en-route", DispatchPhase::EnRoute),
        ("t2-on-site", DispatchPhase::OnSite),
        ("t2-completed", DispatchPhase::Completed),
    ] {
        s.run(
            step,
            "dave",
            Action::ProgressDispatch(ProgressDispatch {
                dispatch_id: dispatch,
                stage,
                location: None,
            }),
        )
        .await?;
    }
    s.comment(
        "t2-c1",
        "dave",
        vpn,
        "Replaced the flaky switch port; VPN is stable now.",
        false,
    )
    .await?;

    // 3: a laptop request, resolved and then reopened.
    let laptop = s
        .create(
            "t3-create",
            "carol",
            "New laptop for the design team",
            Priority::Low,
            TicketKind::ChangeRequest,
            None,
        )
        .await?;
    s.assign("t3-assign", "alice", laptop, id_of("alice"))
        .await?;
    s.status(
        "t3-progress",
        "alice",
        laptop,
        TicketStatus::InProgress,
        None,
    )
    .await?;
    s.status(
        "t3-resolve",
        "alice",
        laptop,
        TicketStatus::Resolved,
        Some("Laptop delivered"),
    )
    .await?;
    s.comment(
        "t3-c1",
        "carol",
        laptop,
        "The laptop arrived without a charger.",
        false,
    )
    .await?;
    s.status(
        "t3-reopen",
        "alice",
        laptop,
        TicketStatus::Open,
        Some("Charger missing"),
    )
    .await?;

    // 4: a question answered and closed.
    let question = s
        .create(
            "t4-create",
            "carol",
            "How do I reset my password?",
            Priority::Medium,
            TicketKind::Question,
            None,
        )
        .await?;
    s.comment(
        "t4-c1",
        "bob",
        question,
        "Use the 'Forgot password' link on the login page.",
        false,
    )
    .await?;
    s.assign("t4-assign", "bob", question, id_of("bob")).await?;
    s.status(
        "t4-progress",
        "bob",
        question,
        TicketStatus::InProgress,
        None,
    )
    .await?;
    s.status("t4-resolve", "bob", question, TicketStatus::Resolved, None)
        .await?;
    s.status("t4-close", "bob", question, TicketStatus::Closed, None)
        .await?;

    // 5: planned maintenance, opened by an agent, still open.
    s.create(
        "t5-create",
        "alice",
        "Quarterly UPS maintenance",
        Priority::Medium,
        TicketKind::Maintenance,
        None,
    )
    .await?;
    Ok(5)
}
