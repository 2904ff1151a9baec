//! Given/when/then tests of the write model: for every command, the events
//! it produces (insta snapshots) and each way it is refused.

use crate::domain::*;
use chrono::{DateTime, TimeZone, Utc};
use event_store::{
    Actor, DispatchChoice, EventPayload, GeoPoint, Location, Principal, Priority, RecordedEvent,
    Role, TicketKind, TicketStatus, Visibility,
};
use uuid::Uuid;

const TENANT: &str = "acme";
const TICKET: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
const DISPATCH: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00d1);
const DISPATCH2: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00d2);

fn user(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_1000 + n)
}

fn principal(n: u128, role: Role) -> Principal {
    Principal {
        user_id: user(n),
        tenant: TENANT.into(),
        role,
        name: format!("user{n}"),
    }
}

fn alice() -> Principal {
    principal(1, Role::Agent)
}
fn bob() -> Principal {
    principal(2, Role::Agent)
}
fn carol() -> Principal {
    principal(3, Role::Customer)
}
fn dave() -> Principal {
    principal(4, Role::Technician)
}
fn erin() -> Principal {
    principal(5, Role::Auditor)
}
fn frank() -> Principal {
    principal(6, Role::Analyst)
}
fn root() -> Principal {
    principal(7, Role::Admin)
}
fn mallory() -> Principal {
    principal(8, Role::Customer)
}
fn tom() -> Principal {
    principal(9, Role::Technician)
}
fn foreign_agent() -> Principal {
    Principal {
        tenant: "other".into(),
        ..principal(10, Role::Agent)
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0)
        .single()
        .expect("valid")
        + chrono::Duration::minutes(minutes)
}

/// The `version`th event of the ticket's stream (at position `version * 10`),
/// appended by the `command`th command.
fn recorded(version: u64, command: u128, by: &Principal, payload: EventPayload) -> RecordedEvent {
    RecordedEvent {
        position: version * 10,
        stream_id: TICKET,
        stream_version: version,
        event_id: Uuid::from_u128(version as u128),
        command_id: Uuid::from_u128(1_000 + command),
        request_fingerprint: None,
        correlation_id: Uuid::from_u128(2_000 + version as u128),
        tenant: TENANT.into(),
        actor: Actor {
            user_id: by.user_id,
            role: by.role,
        },
        recorded_at: at(version as i64),
        schema_version: event_store::SCHEMA_VERSION,
        visibility: if payload.is_internal() {
            Visibility::Internal
        } else {
            Visibility::Public
        },
        payload,
        prev_hash: [0; 32],
        hash: [version as u8; 32],
    }
}

/// A stream's history: events folded into a state, as a load would.
struct Given {
    state: TicketState,
    commands: u128,
}

fn given() -> Given {
    Given {
        state: TicketState::default(),
        commands: 0,
    }
}

impl Given {
    /// Folds one event appended by the current command.
    fn event(mut self, by: &Principal, payload: EventPayload) -> Self {
        let version = self.state.version + 1;
        let record = recorded(version, self.commands, by, payload);
        self.state = evolve(self.state, &record);
        self
    }

    /// Folds the events of one command.
    fn events(mut self, by: &Principal, payloads: Vec<EventPayload>) -> Self {
        for p in payloads {
            self = self.event(by, p);
        }
        self.commands += 1;
        self
    }

    /// Applies a command's own events (as if it succeeded).
    fn after(self, by: Principal, asked: impl Into<Asked>) -> Self {
        let events = when(&self, by.clone(), asked).expect("given command succeeds");
        self.events(&by, events)
    }

    fn ticket(&self) -> &Ticket {
        self.state.ticket.as_ref().expect("ticket exists")
    }
}

/// A command with the context the service would decide it in.
#[derive(Debug, Clone)]
struct Asked {
    action: Action,
    context: Context,
}

/// The ticket number the service allocates to a create.
const TICKET_NUMBER: u64 = 42;
/// Travel speed for dispatch ETAs.
const SPEED_KMH: f64 = 40.0;

impl From<Action> for Asked {
    fn from(action: Action) -> Self {
        Asked {
            action,
            context: Context {
                ticket_number: Some(TICKET_NUMBER),
                fleet: vec![],
                speed_kmh: SPEED_KMH,
                dispatch_timeout_secs: 0,
                members: members(),
            },
        }
    }
}

/// The tenant's directory as the service would look it up: every user of
/// tenant acme (not `foreign_agent`, who is another tenant's).
fn members() -> std::collections::BTreeMap<Uuid, Role> {
    [
        alice(),
        bob(),
        carol(),
        dave(),
        erin(),
        frank(),
        root(),
        mallory(),
        tom(),
    ]
    .into_iter()
    .map(|p| (p.user_id, p.role))
    .collect()
}

fn when(
    g: &Given,
    principal: Principal,
    asked: impl Into<Asked>,
) -> Result<Vec<EventPayload>, DomainError> {
    let asked = asked.into();
    decide(
        &g.state,
        &Command {
            principal,
            at: at(100),
            action: asked.action,
        },
        &asked.context,
    )
}

fn create_cmd() -> CreateTicket {
    CreateTicket {
        ticket_id: TICKET,
        title: "  Printer on fire ".into(),
        description: "Smoke from tray 2".into(),
        priority: Priority::High,
        kind: TicketKind::Incident,
        location: Some(Location {
            lat: Some(48.8566),
            lon: Some(2.3522),
            site: Some("HQ".into()),
            building: Some("A".into()),
            floor: Some("3".into()),
            address: None,
        }),
        tags: vec!["printer".into(), " fire ".into(), "printer".into()],
        device: Some("HP-4000".into()),
    }
}

fn create() -> Action {
    Action::CreateTicket(create_cmd())
}

/// An open ticket reported by carol.
fn open_ticket() -> Given {
    given().after(carol(), create())
}

fn assign_to(assignee: Uuid) -> Action {
    Action::AssignTicket(AssignTicket {
        ticket_id: TICKET,
        assignee_id: assignee,
    })
}

fn status(to: TicketStatus) -> Action {
    Action::ChangeStatus(ChangeStatus {
        ticket_id: TICKET,
        status: to,
        note: None,
    })
}

fn comment(body: &str, internal: bool) -> Action {
    Action::PostComment(PostComment {
        ticket_id: TICKET,
        comment_id: Uuid::from_u128(0xc0),
        body: body.into(),
        internal,
    })
}

fn dispatch_to(technician: Option<Uuid>, technicians: Vec<TechnicianInfo>) -> Asked {
    let mut asked = Asked::from(Action::AssignDispatch(AssignDispatch {
        ticket_id: TICKET,
        dispatch_id: DISPATCH,
        technician_id: technician,
        radius_km: None,
    }));
    asked.context.fleet = technicians;
    asked
}

fn respond(id: Uuid, response: DispatchResponse) -> Action {
    Action::RespondDispatch(RespondDispatch {
        dispatch_id: id,
        response,
        reason: Some("stuck in traffic".into()),
    })
}

fn progress(stage: DispatchPhase) -> Action {
    Action::ProgressDispatch(ProgressDispatch {
        dispatch_id: DISPATCH,
        stage,
        location: Some(GeoPoint {
            lat: 48.85,
            lon: 2.35,
        }),
    })
}

fn roster() -> Vec<TechnicianInfo> {
    vec![
        TechnicianInfo {
            id: dave().user_id,
            position: Some(GeoPoint {
                lat: 48.86,
                lon: 2.34,
            }),
            site: None,
            available: true,
        },
        TechnicianInfo {
            id: tom().user_id,
            position: Some(GeoPoint {
                lat: 48.9,
                lon: 2.4,
            }),
            site: Some("HQ".into()),
            available: true,
        },
    ]
}

/// Dispatched to dave (requested, not yet answered).
fn dispatched() -> Given {
    open_ticket().after(alice(), dispatch_to(Some(dave().user_id), roster()))
}

/// Dispatched to dave and accepted.
fn accepted() -> Given {
    dispatched().after(dave(), respond(DISPATCH, DispatchResponse::Accept))
}

fn invalid(field: &str) -> impl Fn(&DomainError) -> bool + '_ {
    move |e| matches!(e, DomainError::Invalid { field: f, .. } if f == field)
}

fn assert_invalid(result: Result<Vec<EventPayload>, DomainError>, field: &str) {
    let err = result.expect_err("should be refused");
    assert!(
        invalid(field)(&err),
        "expected Invalid({field}), got {err:?}"
    );
}

fn assert_forbidden(result: Result<Vec<EventPayload>, DomainError>) {
    let err = result.expect_err("should be refused");
    assert!(
        matches!(err, DomainError::Forbidden { .. }),
        "expected Forbidden, got {err:?}"
    );
}

fn assert_not_found(result: Result<Vec<EventPayload>, DomainError>) {
    assert_eq!(result, Err(DomainError::NotFound));
}

fn assert_transition(result: Result<Vec<EventPayload>, DomainError>, from: &str, to: &str) {
    assert_eq!(
        result,
        Err(DomainError::InvalidTransition {
            from: from.into(),
            to: to.into()
        })
    );
}

fn assert_conflict(result: Result<Vec<EventPayload>, DomainError>) {
    let err = result.expect_err("should be refused");
    assert!(
        matches!(err, DomainError::Conflict { .. }),
        "expected Conflict, got {err:?}"
    );
}

// ---------------------------------------------------------------- CreateTicket

#[test]
fn create_ticket_by_customer() {
    let events = when(&given(), carol(), create()).expect("created");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn create_ticket_by_agent_and_admin_minimal() {
    for p in [alice(), root()] {
        let mut c = create_cmd();
        c.location = None;
        c.tags = vec![];
        c.device = None;
        c.description = String::new();
        let events = when(&given(), p.clone(), Action::CreateTicket(c)).expect("created");
        assert!(
            matches!(&events[..], [EventPayload::TicketCreated { reporter, .. }] if *reporter == p.user_id)
        );
    }
}

#[test]
fn create_without_an_allocated_number_is_refused() {
    let mut asked = Asked::from(create());
    asked.context.ticket_number = None;
    let refused = when(&given(), carol(), asked).expect_err("no number");
    assert!(
        matches!(&refused, DomainError::Invalid { field, .. } if field == "number"),
        "{refused:?}"
    );
}

#[test]
fn create_ticket_refused() {
    for p in [dave(), erin(), frank()] {
        assert_forbidden(when(&given(), p, create()));
    }
    let with = |f: fn(&mut CreateTicket)| {
        let mut c = create_cmd();
        f(&mut c);
        when(&given(), carol(), Action::CreateTicket(c))
    };
    assert_invalid(with(|c| c.title = "   ".into()), "title");
    assert_invalid(with(|c| c.title = "x".repeat(201)), "title");
    assert_invalid(
        with(|c| c.description = "x".repeat(16 * 1024 + 1)),
        "description",
    );
    assert_invalid(with(|c| c.tags = vec!["".into()]), "tags[0]");
    assert_invalid(
        with(|c| c.tags = (0..21).map(|i| format!("t{i}")).collect()),
        "tags",
    );
    assert_invalid(with(|c| c.device = Some("d".repeat(201))), "device");
    assert_invalid(
        with(|c| c.location.as_mut().expect("loc").lat = Some(91.0)),
        "location.lat",
    );
    assert_invalid(
        with(|c| c.location.as_mut().expect("loc").lon = Some(f64::NAN)),
        "location.lon",
    );
    assert_invalid(
        with(|c| c.location.as_mut().expect("loc").lon = None),
        "location",
    );
    assert_conflict(when(&open_ticket(), alice(), create()));
}

// ---------------------------------------------------------------- EditTicket

fn edit(
    title: Option<&str>,
    description: Option<&str>,
    priority: Option<Priority>,
    tags: Option<Vec<&str>>,
) -> Action {
    Action::EditTicket(EditTicket {
        ticket_id: TICKET,
        title: title.map(Into::into),
        description: description.map(Into::into),
        priority,
        tags: tags.map(|t| t.into_iter().map(Into::into).collect()),
    })
}

#[test]
fn edit_ticket_only_changed_fields() {
    let g = open_ticket();
    let events = when(
        &g,
        alice(),
        edit(
            Some("Printer on fire"),
            Some("Now the toner too"),
            Some(Priority::Critical),
            None,
        ),
    )
    .expect("edited");
    insta::assert_yaml_snapshot!(events);
    let g = g.events(&alice(), events);
    assert_eq!(g.ticket().priority, Priority::Critical);
    assert_eq!(g.ticket().description, "Now the toner too");
}

#[test]
fn edit_ticket_without_change_appends_nothing() {
    let g = open_ticket();
    let events = when(
        &g,
        root(),
        edit(
            None,
            None,
            Some(Priority::High),
            Some(vec!["printer", "fire"]),
        ),
    );
    assert_eq!(events, Ok(vec![]));
}

#[test]
fn edit_ticket_refused() {
    let g = open_ticket();
    assert_invalid(when(&g, alice(), edit(None, None, None, None)), "body");
    assert_invalid(when(&g, alice(), edit(Some(""), None, None, None)), "title");
    assert_invalid(
        when(&g, alice(), edit(None, None, None, Some(vec![" "]))),
        "tags[0]",
    );
    // Visible but without tickets.manage.
    assert_forbidden(when(&g, carol(), edit(Some("x"), None, None, None)));
    assert_forbidden(when(&g, erin(), edit(Some("x"), None, None, None)));
    // Not visible: 404 whatever the permission or the input.
    assert_not_found(when(&g, mallory(), edit(Some(""), None, None, None)));
    assert_not_found(when(&g, foreign_agent(), edit(Some("x"), None, None, None)));
    assert_not_found(when(&g, dave(), edit(Some("x"), None, None, None)));
    assert_not_found(when(&g, frank(), edit(Some("x"), None, None, None)));
    assert_not_found(when(&given(), alice(), edit(Some("x"), None, None, None)));
}

// ---------------------------------------------------------------- AssignTicket

#[test]
fn assign_open_ticket_moves_it_to_assigned() {
    let events = when(&open_ticket(), alice(), assign_to(bob().user_id)).expect("assigned");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn reassign_keeps_status_and_records_previous() {
    let g = open_ticket()
        .after(alice(), assign_to(alice().user_id))
        .after(alice(), status(TicketStatus::InProgress));
    let events = when(&g, root(), assign_to(bob().user_id)).expect("reassigned");
    insta::assert_yaml_snapshot!(events);
    // The same assignee again changes nothing.
    let g = g.events(&root(), events);
    assert_eq!(when(&g, alice(), assign_to(bob().user_id)), Ok(vec![]));
}

#[test]
fn assign_reopened_ticket_to_same_assignee_moves_status_only() {
    let g = open_ticket()
        .after(alice(), assign_to(bob().user_id))
        .after(alice(), status(TicketStatus::InProgress))
        .after(alice(), status(TicketStatus::Resolved))
        .after(alice(), status(TicketStatus::Open));
    let events = when(&g, alice(), assign_to(bob().user_id)).expect("assigned");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn assign_ticket_refused() {
    let g = open_ticket();
    assert_invalid(when(&g, alice(), assign_to(Uuid::nil())), "assignee_id");
    assert_forbidden(when(&g, carol(), assign_to(bob().user_id)));
    assert_forbidden(when(&g, erin(), assign_to(bob().user_id)));
    assert_forbidden(when(&dispatched(), dave(), assign_to(bob().user_id)));
    assert_not_found(when(&g, dave(), assign_to(bob().user_id)));
    assert_not_found(when(&g, mallory(), assign_to(bob().user_id)));
    assert_not_found(when(&g, foreign_agent(), assign_to(bob().user_id)));
    assert_not_found(when(&given(), alice(), assign_to(bob().user_id)));
}

#[test]
fn only_members_who_work_tickets_can_be_assignees_and_every_refusal_is_the_same() {
    let g = open_ticket();
    assert!(when(&g, alice(), assign_to(root().user_id)).is_ok());
    let refusals: Vec<DomainError> = [
        carol().user_id,         // a customer
        dave().user_id,          // a technician: takes dispatches, not tickets
        erin().user_id,          // an auditor
        frank().user_id,         // an analyst
        foreign_agent().user_id, // another tenant's agent
        Uuid::now_v7(),          // nobody
        Uuid::nil(),
    ]
    .into_iter()
    .map(|id| when(&g, alice(), assign_to(id)).expect_err("refused"))
    .collect();
    assert!(invalid("assignee_id")(&refusals[0]), "{:?}", refusals[0]);
    assert!(refusals.iter().all(|e| *e == refusals[0]), "{refusals:?}");
}

#[test]
fn only_technicians_of_the_tenant_can_be_dispatched_and_every_refusal_is_the_same() {
    let g = open_ticket();
    assert!(when(&g, alice(), dispatch_to(Some(tom().user_id), vec![])).is_ok());
    let refusals: Vec<DomainError> = [
        bob().user_id,
        carol().user_id,
        root().user_id,
        foreign_agent().user_id,
        Uuid::now_v7(),
    ]
    .into_iter()
    .map(|id| when(&g, alice(), dispatch_to(Some(id), vec![])).expect_err("refused"))
    .collect();
    assert!(invalid("technician_id")(&refusals[0]), "{:?}", refusals[0]);
    assert!(refusals.iter().all(|e| *e == refusals[0]), "{refusals:?}");
}

// ---------------------------------------------------------------- ChangeStatus

#[test]
fn status_walks_the_workflow_and_reopens() {
    let mut g = open_ticket();
    let mut all = Vec::new();
    for (to, note) in [
        (TicketStatus::Assigned, None),
        (TicketStatus::InProgress, None),
        (TicketStatus::Resolved, Some("replaced the fuser")),
        (TicketStatus::Open, Some("still smoking")),
        (TicketStatus::Assigned, None),
        (TicketStatus::InProgress, None),
        (TicketStatus::Resolved, None),
        (TicketStatus::Closed, None),
        (TicketStatus::Open, Some("again")),
    ] {
        let events = when(
            &g,
            alice(),
            Action::ChangeStatus(ChangeStatus {
                ticket_id: TICKET,
                status: to,
                note: note.map(Into::into),
            }),
        )
        .expect("valid transition");
        g = g.events(&alice(), events.clone());
        assert_eq!(g.ticket().status, to);
        all.extend(events);
    }
    insta::assert_yaml_snapshot!(all);
}

#[test]
fn status_change_refused() {
    use TicketStatus::*;
    let g = open_ticket();
    for to in [Open, InProgress, Resolved, Closed] {
        assert_transition(when(&g, alice(), status(to)), "open", to.as_str());
    }
    let resolved = g
        .after(alice(), status(Assigned))
        .after(alice(), status(InProgress))
        .after(alice(), status(Resolved));
    for to in [Assigned, InProgress, Resolved] {
        assert_transition(
            when(&resolved, alice(), status(to)),
            "resolved",
            to.as_str(),
        );
    }
    let closed = resolved.after(alice(), status(Closed));
    for to in [Assigned, InProgress, Resolved, Closed] {
        assert_transition(when(&closed, alice(), status(to)), "closed", to.as_str());
    }
    let g = open_ticket();
    assert_eq!(
        when(&g, alice(), status(Closed)),
        Err(DomainError::InvalidTransition {
            from: "open".into(),
            to: "closed".into()
        })
    );
    assert_invalid(
        when(
            &g,
            alice(),
            Action::ChangeStatus(ChangeStatus {
                ticket_id: TICKET,
                status: Assigned,
                note: Some("n".repeat(2_001)),
            }),
        ),
        "note",
    );
    assert_forbidden(when(&g, carol(), status(Assigned)));
    assert_forbidden(when(&accepted(), dave(), status(Resolved)));
    assert_not_found(when(&g, mallory(), status(Assigned)));
    assert_not_found(when(&g, foreign_agent(), status(Assigned)));
}

// ---------------------------------------------------------------- PostComment

#[test]
fn comments_by_every_allowed_role() {
    let g = dispatched();
    let mut all = Vec::new();
    for (p, internal) in [
        (carol(), false),
        (alice(), false),
        (alice(), true),
        (dave(), false),
        (dave(), true),
        (root(), true),
    ] {
        all.extend(when(&g, p, comment("Is it still smoking?", internal)).expect("allowed"));
    }
    insta::assert_yaml_snapshot!(all);
}

#[test]
fn comment_body_limits() {
    let g = open_ticket();
    assert!(when(&g, carol(), comment("x", false)).is_ok());
    assert!(when(&g, carol(), comment(&"é".repeat(4 * 1024), false)).is_ok());
    assert_invalid(
        when(&g, carol(), comment(&"x".repeat(8 * 1024 + 1), false)),
        "body",
    );
    assert_invalid(when(&g, carol(), comment("", false)), "body");
    assert_invalid(when(&g, carol(), comment(" \n\t ", false)), "body");
}

#[test]
fn comment_refused() {
    let g = open_ticket();
    // The reporter may not post internal notes.
    assert_forbidden(when(&g, carol(), comment("psst", true)));
    // The auditor sees the ticket but may not comment.
    assert_forbidden(when(&g, erin(), comment("hello", false)));
    assert_forbidden(when(&g, erin(), comment("hello", true)));
    // Not visible: another customer, a technician not dispatched, an
    // analyst (no tickets.view), another tenant, a missing ticket.
    assert_not_found(when(&g, mallory(), comment("hello", false)));
    assert_not_found(when(&g, dave(), comment("hello", false)));
    assert_not_found(when(&g, frank(), comment("hello", false)));
    assert_not_found(when(&g, foreign_agent(), comment("hello", false)));
    assert_not_found(when(&given(), alice(), comment("hello", false)));
}

// ---------------------------------------------------------------- AssignDispatch

#[test]
fn dispatch_explicit_technician() {
    let events = when(
        &open_ticket(),
        alice(),
        dispatch_to(Some(dave().user_id), roster()),
    )
    .expect("dispatched");
    insta::assert_yaml_snapshot!(events);
    // Explicit works without any roster too (no distance then).
    let events = when(
        &open_ticket(),
        alice(),
        dispatch_to(Some(tom().user_id), vec![]),
    )
    .expect("dispatched");
    assert!(matches!(
        &events[..],
        [EventPayload::DispatchRequested { technician: Some(t), choice: DispatchChoice::Explicit, distance_km: None, .. }]
            if *t == tom().user_id
    ));
}

#[test]
fn dispatch_nearest_technician() {
    let events = when(&open_ticket(), root(), dispatch_to(None, roster())).expect("dispatched");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn dispatch_skips_technicians_who_declined_this_ticket() {
    let g = dispatched().after(dave(), respond(DISPATCH, DispatchResponse::Decline));
    let mut action = dispatch_to(None, roster());
    if let Action::AssignDispatch(a) = &mut action.action {
        a.dispatch_id = DISPATCH2;
    }
    let events = when(&g, alice(), action).expect("dispatched");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn dispatch_broadcast_when_nobody_is_found() {
    let far = vec![TechnicianInfo {
        id: tom().user_id,
        position: Some(GeoPoint {
            lat: 51.5,
            lon: -0.12,
        }),
        site: None,
        available: true,
    }];
    let events = when(&open_ticket(), alice(), dispatch_to(None, far)).expect("dispatched");
    insta::assert_yaml_snapshot!(events);
    let g = open_ticket().events(&alice(), events);
    assert_eq!(g.ticket().dispatches[0].phase, DispatchPhase::Unassigned);
    // A broadcast does not block a later dispatch.
    let mut action = dispatch_to(Some(dave().user_id), vec![]);
    if let Action::AssignDispatch(a) = &mut action.action {
        a.dispatch_id = DISPATCH2;
    }
    assert!(when(&g, alice(), action).is_ok());
}

#[test]
fn dispatch_refused() {
    let g = open_ticket();
    let bad_radius = |r: f64| {
        let mut action = dispatch_to(None, roster());
        if let Action::AssignDispatch(a) = &mut action.action {
            a.radius_km = Some(r);
        }
        when(&g, alice(), action)
    };
    for r in [0.0, -1.0, f64::NAN, f64::INFINITY, 30_000.0] {
        assert_invalid(bad_radius(r), "radius_km");
    }
    assert_invalid(
        when(&g, alice(), dispatch_to(Some(Uuid::nil()), vec![])),
        "technician_id",
    );
    assert_forbidden(when(&g, carol(), dispatch_to(Some(dave().user_id), vec![])));
    assert_forbidden(when(&g, erin(), dispatch_to(Some(dave().user_id), vec![])));
    assert_forbidden(when(
        &dispatched(),
        dave(),
        dispatch_to(Some(tom().user_id), vec![]),
    ));
    assert_not_found(when(&g, tom(), dispatch_to(Some(dave().user_id), vec![])));
    assert_not_found(when(
        &g,
        mallory(),
        dispatch_to(Some(dave().user_id), vec![]),
    ));
    assert_not_found(when(
        &g,
        foreign_agent(),
        dispatch_to(Some(dave().user_id), vec![]),
    ));
    // One active dispatch at a time.
    assert_conflict(when(
        &dispatched(),
        alice(),
        dispatch_to(Some(tom().user_id), vec![]),
    ));
    assert_conflict(when(
        &accepted(),
        alice(),
        dispatch_to(Some(tom().user_id), vec![]),
    ));
    // Resolved tickets must be reopened first.
    let resolved = g
        .after(alice(), status(TicketStatus::Assigned))
        .after(alice(), status(TicketStatus::InProgress))
        .after(alice(), status(TicketStatus::Resolved));
    assert_conflict(when(
        &resolved,
        alice(),
        dispatch_to(Some(dave().user_id), vec![]),
    ));
}

// ---------------------------------------------------------------- RespondDispatch

#[test]
fn accept_moves_an_open_ticket_to_in_progress() {
    let events = when(
        &dispatched(),
        dave(),
        respond(DISPATCH, DispatchResponse::Accept),
    )
    .expect("accepted");
    insta::assert_yaml_snapshot!(events);
    let g = dispatched().events(&dave(), events);
    assert_eq!(g.ticket().status, TicketStatus::InProgress);
}

#[test]
fn accept_on_a_ticket_in_progress_leaves_the_status() {
    let g = open_ticket()
        .after(alice(), assign_to(bob().user_id))
        .after(bob(), status(TicketStatus::InProgress))
        .after(alice(), dispatch_to(Some(dave().user_id), vec![]));
    let events = when(&g, dave(), respond(DISPATCH, DispatchResponse::Accept)).expect("accepted");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn decline_records_the_reason() {
    let events = when(
        &dispatched(),
        dave(),
        respond(DISPATCH, DispatchResponse::Decline),
    )
    .expect("declined");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn respond_refused() {
    let g = dispatched();
    // Tom was never dispatched to this ticket: he cannot see it.
    assert_not_found(when(&g, tom(), respond(DISPATCH, DispatchResponse::Accept)));
    // Unknown dispatch on a visible ticket.
    assert_not_found(when(
        &g,
        dave(),
        respond(DISPATCH2, DispatchResponse::Accept),
    ));
    // Staff see the ticket but do not respond to dispatches.
    assert_forbidden(when(
        &g,
        alice(),
        respond(DISPATCH, DispatchResponse::Accept),
    ));
    assert_forbidden(when(
        &g,
        carol(),
        respond(DISPATCH, DispatchResponse::Decline),
    ));
    // Tom declined an earlier dispatch (so he sees the ticket), but the
    // current one is dave's.
    let g2 = open_ticket()
        .after(alice(), dispatch_to(Some(tom().user_id), vec![]))
        .after(tom(), respond(DISPATCH, DispatchResponse::Decline));
    let mut action = dispatch_to(Some(dave().user_id), vec![]);
    if let Action::AssignDispatch(a) = &mut action.action {
        a.dispatch_id = DISPATCH2;
    }
    let g2 = g2.after(alice(), action);
    assert_forbidden(when(
        &g2,
        tom(),
        respond(DISPATCH2, DispatchResponse::Accept),
    ));
    // Answering twice, or a declined dispatch.
    assert_transition(
        when(
            &accepted(),
            dave(),
            respond(DISPATCH, DispatchResponse::Accept),
        ),
        "accepted",
        "accepted",
    );
    assert_transition(
        when(
            &accepted(),
            dave(),
            respond(DISPATCH, DispatchResponse::Decline),
        ),
        "accepted",
        "declined",
    );
    assert_transition(
        when(&g2, tom(), respond(DISPATCH, DispatchResponse::Accept)),
        "declined",
        "accepted",
    );
    // A ticket resolved meanwhile must be reopened before accepting.
    let resolved = dispatched()
        .after(alice(), status(TicketStatus::Assigned))
        .after(alice(), status(TicketStatus::InProgress))
        .after(alice(), status(TicketStatus::Resolved));
    assert_transition(
        when(
            &resolved,
            dave(),
            respond(DISPATCH, DispatchResponse::Accept),
        ),
        "resolved",
        "in_progress",
    );
    assert_invalid(
        when(
            &g,
            dave(),
            Action::RespondDispatch(RespondDispatch {
                dispatch_id: DISPATCH,
                response: DispatchResponse::Decline,
                reason: Some("r".repeat(2_001)),
            }),
        ),
        "reason",
    );
}

// ---------------------------------------------------------------- ProgressDispatch

#[test]
fn progress_through_every_stage_resolves_the_ticket() {
    let mut g = accepted();
    let mut all = Vec::new();
    for stage in [
        DispatchPhase::EnRoute,
        DispatchPhase::OnSite,
        DispatchPhase::Completed,
    ] {
        let events = when(&g, dave(), progress(stage)).expect("progressed");
        g = g.events(&dave(), events.clone());
        all.extend(events);
    }
    insta::assert_yaml_snapshot!(all);
    assert_eq!(g.ticket().status, TicketStatus::Resolved);
    assert_eq!(g.ticket().dispatches[0].phase, DispatchPhase::Completed);
}

#[test]
fn completing_on_a_closed_ticket_leaves_the_status() {
    let g = accepted()
        .after(alice(), status(TicketStatus::Resolved))
        .after(alice(), status(TicketStatus::Closed));
    let events = when(&g, dave(), progress(DispatchPhase::Completed)).expect("completed");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn progress_refused() {
    // Not accepted yet.
    assert_transition(
        when(&dispatched(), dave(), progress(DispatchPhase::EnRoute)),
        "requested",
        "en_route",
    );
    // Backwards and repeated.
    let on_site = accepted().after(dave(), progress(DispatchPhase::OnSite));
    assert_transition(
        when(&on_site, dave(), progress(DispatchPhase::EnRoute)),
        "on_site",
        "en_route",
    );
    assert_transition(
        when(&on_site, dave(), progress(DispatchPhase::OnSite)),
        "on_site",
        "on_site",
    );
    let done = on_site.after(dave(), progress(DispatchPhase::Completed));
    assert_transition(
        when(&done, dave(), progress(DispatchPhase::Completed)),
        "completed",
        "completed",
    );
    let g = accepted();
    assert_invalid(
        when(
            &g,
            dave(),
            Action::ProgressDispatch(ProgressDispatch {
                dispatch_id: DISPATCH,
                stage: DispatchPhase::EnRoute,
                location: Some(GeoPoint {
                    lat: 0.0,
                    lon: 190.0,
                }),
            }),
        ),
        "location.lon",
    );
    assert_forbidden(when(&g, alice(), progress(DispatchPhase::EnRoute)));
    assert_not_found(when(&g, tom(), progress(DispatchPhase::EnRoute)));
    assert_not_found(when(&g, foreign_agent(), progress(DispatchPhase::EnRoute)));
}

// ---------------------------------------------------------------- ReportLocation

fn location(lat: f64, lon: f64) -> Action {
    Action::ReportLocation(ReportLocation {
        lat,
        lon,
        site: Some("HQ".into()),
        building: Some("A".into()),
        floor: None,
    })
}

#[test]
fn technician_reports_location() {
    let events = when(&given(), dave(), location(48.85, 2.35)).expect("reported");
    insta::assert_yaml_snapshot!(events);
}

#[test]
fn report_location_refused() {
    for p in [alice(), carol(), root(), erin()] {
        assert_forbidden(when(&given(), p, location(48.85, 2.35)));
    }
    assert_invalid(when(&given(), dave(), location(-90.5, 0.0)), "lat");
    assert_invalid(when(&given(), dave(), location(0.0, f64::INFINITY)), "lon");
    let mut action = location(1.0, 1.0);
    if let Action::ReportLocation(r) = &mut action {
        r.site = Some("s".repeat(201));
    }
    assert_invalid(when(&given(), dave(), action), "site");
    // Someone else's stream (here: tom's) is never written into.
    let toms = given().event(
        &tom(),
        EventPayload::TechnicianLocationReported {
            technician: tom().user_id,
            point: GeoPoint { lat: 1.0, lon: 1.0 },
            site: None,
            building: None,
            floor: None,
        },
    );
    assert!(when(&toms, tom(), location(2.0, 2.0)).is_ok());
    assert_conflict(when(&toms, dave(), location(2.0, 2.0)));
    assert_conflict(when(&open_ticket(), dave(), location(2.0, 2.0)));
}

// ---------------------------------------------------------------- RecordRead

fn read(position: u64) -> Action {
    Action::RecordRead(RecordRead {
        ticket_id: TICKET,
        position,
    })
}

/// A receipt, as an older log kept it in the ticket's own stream.
fn legacy_read(by: &Principal, position: u64) -> Vec<EventPayload> {
    vec![EventPayload::ReadReceiptRecorded {
        user: by.user_id,
        position,
    }]
}

#[test]
fn read_receipt_moves_forward_only() {
    // `given()` here is the reader's own stream, empty at first.
    let events = when(&given(), carol(), read(20)).expect("recorded");
    insta::assert_yaml_snapshot!(events);
    let g = given().events(&carol(), events);
    assert_eq!(g.state.read_up_to.get(&TICKET), Some(&20));
    assert_eq!(when(&g, carol(), read(20)), Ok(vec![]));
    assert_eq!(when(&g, carol(), read(10)), Ok(vec![]));
    assert_eq!(when(&g, carol(), read(30)).map(|e| e.len()), Ok(1));
    assert_invalid(when(&g, carol(), read(0)), "position");
}

#[test]
fn read_receipts_go_to_the_readers_own_stream_only() {
    let carols = given().events(&carol(), when(&given(), carol(), read(20)).expect("ok"));
    assert_conflict(when(&carols, alice(), read(30)));
    let other_tenant = Principal {
        tenant: "other".into(),
        ..carol()
    };
    assert_conflict(when(&carols, other_tenant, read(30)));
    // A ticket's stream is never a reader's.
    assert_conflict(when(&open_ticket(), carol(), read(10)));
}

/// `read::check` on `g` (a ticket) for the event `named`, after `last`.
fn check(
    g: &Given,
    who: &Principal,
    named: Option<&RecordedEvent>,
    last: u64,
) -> Result<Visibility, DomainError> {
    let position = named.map_or(990, |e| e.position);
    let c = RecordRead {
        ticket_id: TICKET,
        position,
    };
    decide::read::check(&g.state, named, last, who, &c)
}

#[test]
fn a_receipt_names_an_unread_event_of_the_room_the_reader_sees() {
    let g = open_ticket()
        .after(alice(), comment("hi", false))
        .after(alice(), comment("note", true));
    let public = recorded(2, 0, &alice(), comment_payload(false));
    let internal = recorded(3, 0, &alice(), comment_payload(true));
    assert_eq!(
        check(&g, &carol(), Some(&public), 0),
        Ok(Visibility::Public)
    );
    assert_eq!(
        check(&g, &alice(), Some(&internal), 0),
        Ok(Visibility::Internal)
    );

    let mut elsewhere = public.clone();
    elsewhere.stream_id = Uuid::from_u128(0xe15e);
    let refused = [
        check(&g, &carol(), Some(&elsewhere), 0),
        check(&g, &carol(), Some(&internal), 0),
        check(&g, &carol(), Some(&public), 20),
        check(&g, &carol(), Some(&public), 25),
        check(&g, &carol(), None, 0),
        // A receipt of an older log in the ticket's stream counts as the last.
        check(
            &g.events(&carol(), legacy_read(&carol(), 20)),
            &carol(),
            Some(&public),
            0,
        ),
    ];
    let same = Err(DomainError::invalid("position", decide::read::NOT_READABLE));
    for (i, answer) in refused.into_iter().enumerate() {
        assert_eq!(answer, same, "case {i}");
    }
    for p in [mallory(), tom(), frank(), foreign_agent()] {
        assert_eq!(
            check(&dispatched(), &p, Some(&public), 0),
            Err(DomainError::NotFound),
            "{}",
            p.name
        );
    }
}

/// The payload `comment(…, internal)` decides to.
fn comment_payload(internal: bool) -> EventPayload {
    EventPayload::CommentPosted {
        comment_id: Uuid::from_u128(0xc0),
        body: "x".into(),
        internal,
    }
}

// ---------------------------------------------------------------- evolve

#[test]
fn evolve_a_whole_lifecycle() {
    let g = dispatched()
        .after(alice(), assign_to(bob().user_id))
        .after(carol(), comment("thanks", false))
        .after(alice(), comment("customer is VIP", true))
        .after(
            alice(),
            edit(
                Some("Printer fire (tray 2)"),
                None,
                None,
                Some(vec!["fire"]),
            ),
        )
        .after(dave(), respond(DISPATCH, DispatchResponse::Accept))
        .after(dave(), progress(DispatchPhase::EnRoute))
        .after(dave(), progress(DispatchPhase::Completed))
        .events(&carol(), legacy_read(&carol(), 20));
    insta::assert_yaml_snapshot!(g.state);
}

#[test]
fn recent_commands_remember_where_each_command_landed() {
    let g = dispatched().after(dave(), respond(DISPATCH, DispatchResponse::Accept));
    // Accepting appended three events (accepted, open→assigned→in_progress).
    assert_eq!(
        g.state.applied(Uuid::from_u128(1_002)),
        Some(AppliedCommand {
            command_id: Uuid::from_u128(1_002),
            version: 5,
            first_position: 30,
            position: 50,
        })
    );
    assert_eq!(
        g.state.applied(Uuid::from_u128(1_000)).map(|c| c.version),
        Some(1)
    );
    assert_eq!(g.state.applied(Uuid::from_u128(9)), None);
    let mut g = g;
    for i in 0..RECENT_COMMANDS_MAX {
        g = g.after(alice(), comment(&format!("c{i}"), false));
    }
    assert_eq!(g.state.recent_commands.len(), RECENT_COMMANDS_MAX);
    assert_eq!(g.state.applied(Uuid::from_u128(1_000)), None);
}

#[test]
fn every_rejection_of_an_invisible_ticket_is_not_found() {
    // Whatever the command, a principal who may not see the ticket gets 404.
    let g = dispatched();
    let actions: Vec<Asked> = vec![
        edit(Some("x"), None, None, None).into(),
        assign_to(bob().user_id).into(),
        status(TicketStatus::Closed).into(),
        comment("", true).into(),
        dispatch_to(Some(Uuid::nil()), vec![]),
        respond(DISPATCH, DispatchResponse::Accept).into(),
        progress(DispatchPhase::Completed).into(),
        // A receipt is decided on the reader's stream; its check against
        // the ticket is `read::check`, tested for this in its own test.
    ];
    for p in [mallory(), tom(), frank(), foreign_agent()] {
        for a in &actions {
            assert_eq!(
                when(&g, p.clone(), a.clone()),
                Err(DomainError::NotFound),
                "{} {}",
                p.name,
                a.action.name()
            );
        }
    }
}

// ---------------------------------------------------------------- ExpireDispatch

fn expire(timeout_secs: u64) -> Asked {
    let mut asked = Asked::from(Action::ExpireDispatch(ExpireDispatch {
        dispatch_id: DISPATCH,
    }));
    asked.context.dispatch_timeout_secs = timeout_secs;
    asked
}

#[test]
fn an_unanswered_request_times_out_exactly_at_the_deadline() {
    // Requested at minute 2, decided at minute 100.
    let g = dispatched();
    let due = 98 * 60;
    assert_conflict(when(&g, root(), expire(due + 1)));
    assert_conflict(when(&g, root(), expire(u64::MAX)));
    let events = when(&g, root(), expire(due)).expect("overdue");
    assert_eq!(
        events,
        vec![EventPayload::DispatchDeclined {
            dispatch_id: DISPATCH,
            technician: dave().user_id,
            reason: Some("timeout".into()),
        }]
    );
    // The technician counts as having declined: never chosen again here.
    let g = g.events(&root(), events);
    let d = g.state.dispatch(DISPATCH).expect("dispatch");
    assert_eq!(d.phase, DispatchPhase::Declined);
    assert_eq!(g.ticket().declined_by(), vec![dave().user_id]);
    assert!(g.ticket().active_dispatch().is_none());
}

#[test]
fn expiring_an_answered_request_changes_nothing() {
    assert_eq!(when(&accepted(), root(), expire(0)), Ok(vec![]));
    let declined = dispatched().after(dave(), respond(DISPATCH, DispatchResponse::Decline));
    assert_eq!(when(&declined, alice(), expire(0)), Ok(vec![]));
}

#[test]
fn expire_refused() {
    let g = dispatched();
    // Only dispatchers (and the service acting as admin) expire requests.
    assert_forbidden(when(&g, dave(), expire(0)));
    assert_forbidden(when(&g, erin(), expire(0)));
    assert_not_found(when(&g, tom(), expire(0)));
    assert_not_found(when(&g, foreign_agent(), expire(0)));
    assert_not_found(when(
        &g,
        alice(),
        Action::ExpireDispatch(ExpireDispatch {
            dispatch_id: DISPATCH2,
        }),
    ));
}

// ---------------------------------------------------------------- Text fields

/// Characters no single-line field may hold: NUL, a C0 control, a line
/// break, DEL, a C1 control, the bidi override that shows "evil" as
/// "live", an isolate and a mark.
const NOT_SINGLE_LINE: [&str; 9] = [
    "\u{0}", "\u{7}", "\n", "\t", "\u{7f}", "\u{85}", "\u{202e}", "\u{2067}", "\u{200f}",
];
/// Characters no multi-line field may hold (line breaks and tabs may).
const NOT_MULTI_LINE: [&str; 6] = [
    "\u{0}", "\u{1b}", "\u{7f}", "\u{9b}", "\u{202e}", "\u{2066}",
];

#[test]
fn text_fields_refuse_control_and_bidi_characters() {
    let create_with = |f: &dyn Fn(&mut CreateTicket)| {
        let mut c = create_cmd();
        f(&mut c);
        when(&given(), carol(), Action::CreateTicket(c))
    };
    let loc = |c: &mut CreateTicket| c.location.as_mut().expect("loc").clone();
    for bad in NOT_SINGLE_LINE {
        let s = format!("ev{bad}il");
        assert_invalid(create_with(&|c| c.title = s.clone()), "title");
        assert_invalid(
            create_with(&|c| c.tags = vec!["ok".into(), s.clone()]),
            "tags[1]",
        );
        assert_invalid(create_with(&|c| c.device = Some(s.clone())), "device");
        for field in ["site", "building", "floor", "address"] {
            let set = |c: &mut CreateTicket| {
                let mut l = loc(c);
                match field {
                    "site" => l.site = Some(s.clone()),
                    "building" => l.building = Some(s.clone()),
                    "floor" => l.floor = Some(s.clone()),
                    _ => l.address = Some(s.clone()),
                }
                c.location = Some(l);
            };
            assert_invalid(create_with(&set), &format!("location.{field}"));
        }
        let g = open_ticket();
        assert_invalid(when(&g, alice(), edit(Some(&s), None, None, None)), "title");
        assert_invalid(
            when(&g, alice(), edit(None, None, None, Some(vec![s.as_str()]))),
            "tags[0]",
        );
        let note = Action::ChangeStatus(ChangeStatus {
            ticket_id: TICKET,
            status: TicketStatus::Assigned,
            note: Some(s.clone()),
        });
        assert_invalid(when(&g, alice(), note), "note");
        let mut decline = respond(DISPATCH, DispatchResponse::Decline);
        if let Action::RespondDispatch(r) = &mut decline {
            r.reason = Some(s.clone());
        }
        assert_invalid(when(&dispatched(), dave(), decline), "reason");
        let mut report = location(1.0, 1.0);
        if let Action::ReportLocation(r) = &mut report {
            r.floor = Some(s.clone());
        }
        assert_invalid(when(&given(), dave(), report), "floor");
    }
    for bad in NOT_MULTI_LINE {
        let s = format!("line one\n{bad}line two");
        assert_invalid(create_with(&|c| c.description = s.clone()), "description");
        let g = open_ticket();
        assert_invalid(
            when(&g, alice(), edit(None, Some(&s), None, None)),
            "description",
        );
        assert_invalid(when(&g, carol(), comment(&s, false)), "body");
    }
    // Multi-line text keeps its line breaks and tabs; any language and
    // emoji pass everywhere.
    let text = "Étape 1:\r\n\tpapier coincé — 打印机 🖨️ עברית";
    assert!(create_with(&|c| c.description = text.into()).is_ok());
    assert!(when(&open_ticket(), carol(), comment(text, false)).is_ok());
    assert!(create_with(&|c| c.title = "打印机 🖨️ עברית — Ünïcödé".into()).is_ok());
}

#[test]
fn tag_limits() {
    let with_tags = |tags: Vec<String>| {
        let mut c = create_cmd();
        c.tags = tags;
        when(&given(), carol(), Action::CreateTicket(c))
    };
    let many = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    assert!(with_tags(many(limits::TAGS_COUNT_MAX)).is_ok());
    assert_invalid(with_tags(many(limits::TAGS_COUNT_MAX + 1)), "tags");
    // Counted as sent: thousands of copies of one tag are refused too.
    assert_invalid(with_tags(vec!["printer".into(); 5_000]), "tags");
    let longest = "é".repeat(limits::TAG_CHARS_MAX);
    assert!(with_tags(vec![longest.clone()]).is_ok());
    assert_invalid(
        with_tags(vec!["ok".into(), "ok".into(), format!("{longest}x")]),
        "tags[2]",
    );
    let g = open_ticket();
    let edit_tags = |n: usize| {
        let tags = many(n);
        when(
            &g,
            alice(),
            edit(
                None,
                None,
                None,
                Some(tags.iter().map(String::as_str).collect()),
            ),
        )
    };
    assert!(edit_tags(limits::TAGS_COUNT_MAX).is_ok());
    assert_invalid(edit_tags(limits::TAGS_COUNT_MAX + 1), "tags");
}
