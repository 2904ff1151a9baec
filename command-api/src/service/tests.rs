//! The command service against the real sled store: numbers, conflicts,
//! idempotency, dispatch routing, snapshots.

use std::sync::Arc;

use event_store::{
    EventStore, GeoPoint, KvProvider, Principal, Priority, Role, SledOptions, SledStore,
    TicketKind, TicketStatus,
};
use futures::future::join_all;
use snapshots::{SnapshotConfig, SnapshotStore};
use uuid::Uuid;

use super::*;
use crate::domain::*;

/// A command service over a fresh sled store (also used by `dispatch_tests`).
pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) store: Arc<SledStore>,
    pub(super) service: Arc<CommandService>,
}

fn fixture(every_events: u64) -> Fixture {
    fixture_with(every_events, ServiceConfig::default())
}

/// A service configured by `config` that snapshots every `every_events` events.
pub(super) fn fixture_with(every_events: u64, config: ServiceConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open store");
    let tree = store.tree("snapshots").expect("snapshot tree");
    let snapshots = SnapshotStore::new(tree, SnapshotConfig { every_events });
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let service = Arc::new(CommandService::new(dyn_store, snapshots, config));
    Fixture {
        _dir: dir,
        store,
        service,
    }
}

impl Fixture {
    /// Executes `action` as `by` under a fresh command id, without If-Match.
    async fn execute(
        &self,
        by: &Principal,
        action: Action,
    ) -> Result<CommandOutcome, ServiceError> {
        self.service.execute(by, action, Uuid::now_v7(), None).await
    }

    /// Tenant acme's technicians, as the service's fleet index has them.
    pub(super) async fn technicians(&self) -> Vec<TechnicianInfo> {
        self.service
            .fleet()
            .technicians(self.store.as_ref(), "acme")
            .await
            .expect("fleet")
    }

    /// Ticket `id` as `by` sees it.
    pub(super) async fn ticket_seen_by(&self, by: &Principal, id: Uuid) -> Ticket {
        let state = self.service.ticket(by, id).await.expect("visible");
        state.ticket.expect("ticket")
    }
}

pub(super) fn who(n: u128, role: Role, tenant: &str) -> Principal {
    Principal {
        user_id: Uuid::from_u128(0x1000 + n),
        tenant: tenant.into(),
        role,
        name: format!("u{n}"),
    }
}

pub(super) fn agent() -> Principal {
    who(1, Role::Agent, "acme")
}
pub(super) fn customer() -> Principal {
    who(2, Role::Customer, "acme")
}
pub(super) fn dave() -> Principal {
    who(3, Role::Technician, "acme")
}
pub(super) fn tom() -> Principal {
    who(4, Role::Technician, "acme")
}

fn create(id: Uuid) -> Action {
    Action::CreateTicket(CreateTicket {
        ticket_id: id,
        title: "Broken".into(),
        description: String::new(),
        priority: Priority::Medium,
        kind: TicketKind::Incident,
        location: Some(event_store::Location {
            lat: Some(48.8566),
            lon: Some(2.3522),
            ..Default::default()
        }),
        tags: vec![],
        device: None,
    })
}

fn comment(ticket: Uuid, body: &str) -> Action {
    Action::PostComment(PostComment {
        ticket_id: ticket,
        comment_id: Uuid::now_v7(),
        body: body.into(),
        internal: false,
    })
}

async fn new_ticket(f: &Fixture, by: &Principal) -> (Uuid, u64) {
    let id = Uuid::now_v7();
    let outcome = f.execute(by, create(id)).await.expect("create");
    assert_eq!(outcome.stream_id, id);
    (id, f.ticket_seen_by(by, id).await.number)
}

/// Executes the commands `(by, action, If-Match)` all at once, each under
/// its own command id; returns their results in the order given.
async fn concurrently(
    f: &Fixture,
    commands: impl IntoIterator<Item = (Principal, Action, Option<u64>)>,
) -> Vec<Result<CommandOutcome, ServiceError>> {
    let tasks = commands.into_iter().map(|(by, action, expected)| {
        let service = f.service.clone();
        tokio::spawn(async move { service.execute(&by, action, Uuid::now_v7(), expected).await })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_get_distinct_consecutive_numbers() {
    let f = fixture(64);
    let ids: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
    let creates = ids.iter().map(|id| (customer(), create(*id), None));
    for r in concurrently(&f, creates).await {
        r.expect("create");
    }
    let mut numbers = Vec::new();
    for id in ids {
        numbers.push(f.ticket_seen_by(&agent(), id).await.number);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=50).collect::<Vec<u64>>());
    // Another tenant counts on its own.
    let (_, n) = new_ticket(&f, &who(9, Role::Agent, "globex")).await;
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_commands_exactly_one_succeeds() {
    let f = fixture(64);
    let (ticket, _) = new_ticket(&f, &customer()).await;
    // Without If-Match: re-decided on fresh state, only one open → assigned.
    let assign = Action::ChangeStatus(ChangeStatus {
        ticket_id: ticket,
        status: TicketStatus::Assigned,
        note: None,
    });
    let results = concurrently(&f, (0..50).map(|_| (agent(), assign.clone(), None))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(
            e,
            ServiceError::Domain(DomainError::InvalidTransition { .. })
        )));

    // With If-Match: one wins, the others get 409 with expected/actual.
    let version = f.store.stream_version(ticket).await.expect("version");
    let comments = (0..50).map(|i| (agent(), comment(ticket, &format!("c{i}")), Some(version)));
    let results = concurrently(&f, comments).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(e, ServiceError::VersionConflict { expected, actual } if *expected == version && *actual == version + 1),
            "{e:?}"
        );
    }
    assert_eq!(
        f.store.stream_version(ticket).await.expect("version"),
        version + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commutative_commands_all_succeed_without_if_match() {
    let f = fixture(8);
    let (ticket, _) = new_ticket(&f, &customer()).await;
    let comments = (0..50).map(|i| (customer(), comment(ticket, &format!("c{i}")), None));
    for r in concurrently(&f, comments).await {
        r.expect("comment");
    }
    let state = f.service.ticket(&agent(), ticket).await.expect("visible");
    assert_eq!(state.version, 51);
    assert_eq!(state.ticket.expect("ticket").comments, 50);
}

#[tokio::test]
async fn retries_append_nothing_and_answer_the_first_outcome() {
    let f = fixture(4);
    let (ticket, _) = new_ticket(&f, &customer()).await;
    let command_id = Uuid::now_v7();
    let action = Action::ChangeStatus(ChangeStatus {
        ticket_id: ticket,
        status: TicketStatus::Assigned,
        note: None,
    });
    let first = f
        .service
        .execute(&agent(), action.clone(), command_id, Some(1))
        .await
        .expect("first");
    assert!(matches!(first.appended, Appended::Now { .. }));
    // Later commands, enough to put the first one behind a snapshot.
    for i in 0..10 {
        f.execute(&agent(), comment(ticket, &format!("c{i}")))
            .await
            .expect("comment");
    }
    let head = f.store.head().await.expect("head");
    // The retry (same key, same If-Match) would be invalid now; it is answered from the log.
    let again = f
        .service
        .execute(&agent(), action, command_id, Some(1))
        .await
        .expect("retry");
    assert_eq!(again.appended, Appended::Earlier);
    assert_eq!(
        (again.version, again.position),
        (first.version, first.position)
    );
    assert_eq!(f.store.head().await.expect("head"), head);

    // A retried create, even with a fresh ticket id, gets its first ticket and number.
    let create_id = Uuid::now_v7();
    let t1 = Uuid::now_v7();
    let a = f
        .service
        .execute(&customer(), create(t1), create_id, None)
        .await
        .expect("create");
    let head = f.store.head().await.expect("head");
    let b = f
        .service
        .execute(&customer(), create(Uuid::now_v7()), create_id, None)
        .await
        .expect("retry");
    assert_eq!(b.appended, Appended::Earlier);
    assert_eq!((b.stream_id, b.position), (t1, a.position));
    assert_eq!(f.store.head().await.expect("head"), head);
    let (_, next) = new_ticket(&f, &customer()).await;
    assert_eq!(next, 3);
}

/// A key bound to the request with fingerprint `[n; 32]`.
fn bound(id: Uuid, n: u8) -> CommandKey {
    CommandKey {
        id,
        fingerprint: Some([n; 32]),
    }
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_appends_nothing() {
    let f = fixture(0);
    let (ticket, _) = new_ticket(&f, &customer()).await;
    let key = Uuid::now_v7();
    let first = f
        .service
        .execute(&agent(), comment(ticket, "first"), bound(key, 1), None)
        .await
        .expect("first");
    let head = f.store.head().await.expect("head");
    let reused = |result: Result<CommandOutcome, ServiceError>| {
        assert_eq!(result, Err(ServiceError::IdempotencyKeyReused));
    };
    // Another body, the same route: found in the ticket's state.
    reused(
        f.service
            .execute(&agent(), comment(ticket, "second"), bound(key, 2), None)
            .await,
    );
    // Another command on the same ticket.
    let assign = Action::ChangeStatus(ChangeStatus {
        ticket_id: ticket,
        status: TicketStatus::Assigned,
        note: None,
    });
    reused(
        f.service
            .execute(&agent(), assign, bound(key, 3), None)
            .await,
    );
    // Another route: a create, refused before a number is allocated.
    reused(
        f.service
            .execute(&agent(), create(Uuid::now_v7()), bound(key, 4), None)
            .await,
    );
    // Another ticket: found by the store when appending.
    let (other, _) = new_ticket(&f, &customer()).await;
    let head_before = f.store.head().await.expect("head");
    reused(
        f.service
            .execute(&agent(), comment(other, "first"), bound(key, 5), None)
            .await,
    );
    assert_eq!(f.store.head().await.expect("head"), head_before);
    assert_eq!(head_before, head + 2, "only the second ticket was appended");
    let (_, next) = new_ticket(&f, &customer()).await;
    assert_eq!(next, 3, "no number was taken by a refused create");

    // The exact retry still answers the first comment.
    let again = f
        .service
        .execute(&agent(), comment(ticket, "first"), bound(key, 1), None)
        .await
        .expect("retry");
    assert_eq!(again.appended, Appended::Earlier);
    assert_eq!(again.created.comment_id, first.created.comment_id);
    assert_eq!(again.position, first.position);

    // A create retried under its key with another body is refused as well.
    let create_key = Uuid::now_v7();
    f.service
        .execute(
            &customer(),
            create(Uuid::now_v7()),
            bound(create_key, 6),
            None,
        )
        .await
        .expect("create");
    let head = f.store.head().await.expect("head");
    reused(
        f.service
            .execute(
                &customer(),
                create(Uuid::now_v7()),
                bound(create_key, 7),
                None,
            )
            .await,
    );
    assert_eq!(f.store.head().await.expect("head"), head);
}

#[tokio::test]
async fn refused_creates_take_no_number() {
    let f = fixture(64);
    let mut bad = create(Uuid::now_v7());
    if let Action::CreateTicket(c) = &mut bad {
        c.title = " ".into();
    }
    let err = f.execute(&customer(), bad).await.expect_err("invalid");
    assert!(
        matches!(err, ServiceError::Domain(DomainError::Invalid { .. })),
        "{err:?}"
    );
    let err = f
        .execute(&dave(), create(Uuid::now_v7()))
        .await
        .expect_err("forbidden");
    assert!(
        matches!(err, ServiceError::Domain(DomainError::Forbidden { .. })),
        "{err:?}"
    );
    assert_eq!(new_ticket(&f, &customer()).await.1, 1);
}

#[tokio::test]
async fn if_match_mismatch_and_invisible_tickets() {
    let f = fixture(64);
    let (ticket, _) = new_ticket(&f, &customer()).await;
    let err = f
        .service
        .execute(&agent(), comment(ticket, "hi"), Uuid::now_v7(), Some(7))
        .await
        .expect_err("conflict");
    assert_eq!(
        err,
        ServiceError::VersionConflict {
            expected: 7,
            actual: 1
        }
    );
    for p in [
        who(5, Role::Customer, "acme"),
        who(1, Role::Agent, "globex"),
        dave(),
    ] {
        let err = f.execute(&p, comment(ticket, "hi")).await.expect_err("404");
        assert_eq!(err, ServiceError::Domain(DomainError::NotFound), "{p:?}");
        assert_eq!(
            f.service.ticket(&p, ticket).await.map(|_| ()),
            Err(DomainError::NotFound.into())
        );
    }
    let err = f
        .execute(&agent(), comment(Uuid::now_v7(), "hi"))
        .await
        .expect_err("404");
    assert_eq!(err, ServiceError::Domain(DomainError::NotFound));
}

#[tokio::test]
async fn dispatch_to_the_nearest_technician_and_follow_it_by_dispatch_id() {
    let f = fixture(3);
    let report = |lat: f64, lon: f64| {
        Action::ReportLocation(ReportLocation {
            lat,
            lon,
            site: None,
            building: None,
            floor: None,
        })
    };
    f.execute(&dave(), report(48.86, 2.34))
        .await
        .expect("dave reports");
    f.execute(&tom(), report(48.95, 2.45))
        .await
        .expect("tom reports");
    let (ticket, _) = new_ticket(&f, &customer()).await;
    let dispatch = Uuid::now_v7();
    f.execute(
        &agent(),
        Action::AssignDispatch(AssignDispatch {
            ticket_id: ticket,
            dispatch_id: dispatch,
            technician_id: None,
            radius_km: None,
        }),
    )
    .await
    .expect("dispatched");
    let state = f
        .service
        .ticket(&dave(), ticket)
        .await
        .expect("dave sees it");
    let d = state.dispatch(dispatch).expect("dispatch");
    assert_eq!(d.technician, Some(dave().user_id));
    assert!(d.eta_minutes.is_some());
    // Dave is now busy: the fleet says so.
    let fleet = f.technicians().await;
    assert_eq!(fleet.iter().filter(|t| !t.available).count(), 1);

    let respond = |response| {
        Action::RespondDispatch(RespondDispatch {
            dispatch_id: dispatch,
            response,
            reason: None,
        })
    };
    let err = f.execute(&tom(), respond(DispatchResponse::Accept)).await;
    assert_eq!(err.map(|_| ()), Err(DomainError::NotFound.into()));
    let unknown = Action::RespondDispatch(RespondDispatch {
        dispatch_id: Uuid::now_v7(),
        response: DispatchResponse::Accept,
        reason: None,
    });
    let err = f.execute(&dave(), unknown).await;
    assert_eq!(err.map(|_| ()), Err(DomainError::NotFound.into()));

    f.execute(&dave(), respond(DispatchResponse::Accept))
        .await
        .expect("accept");
    for stage in [
        DispatchPhase::EnRoute,
        DispatchPhase::OnSite,
        DispatchPhase::Completed,
    ] {
        let action = Action::ProgressDispatch(ProgressDispatch {
            dispatch_id: dispatch,
            stage,
            location: Some(GeoPoint {
                lat: 48.857,
                lon: 2.352,
            }),
        });
        f.execute(&dave(), action).await.expect("progress");
    }
    let state = f.service.ticket(&agent(), ticket).await.expect("visible");
    assert_eq!(
        state.ticket.as_ref().expect("ticket").status,
        TicketStatus::Resolved
    );
    let fleet = f.technicians().await;
    assert!(fleet.iter().all(|t| t.available));
    // A fresh index (as after a restart) rebuilds the same routing from the log.
    let fresh = FleetIndex::new();
    assert_eq!(
        fresh
            .ticket_of(f.store.as_ref(), dispatch)
            .await
            .expect("lookup"),
        Some(ticket)
    );
}

#[tokio::test]
async fn deleting_snapshots_changes_nothing_but_speed() {
    let f = fixture(5);
    let (ticket, _) = new_ticket(&f, &customer()).await;
    for i in 0..40 {
        f.execute(&customer(), comment(ticket, &format!("c{i}")))
            .await
            .expect("comment");
    }
    // A restarted service (empty cache) starts from the latest snapshot.
    let restarted = |every_events| {
        let tree = f.store.tree("snapshots").expect("tree");
        let dyn_store: Arc<dyn EventStore> = f.store.clone();
        CommandService::new(
            dyn_store,
            SnapshotStore::new(tree, SnapshotConfig { every_events }),
            ServiceConfig::default(),
        )
    };
    let with = restarted(5).load(ticket).await.expect("load");
    assert!(with.snapshot_version.is_some());
    assert!(with.replayed < 5);
    f.store
        .tree("snapshots")
        .expect("tree")
        .clear()
        .expect("clear");
    let without = restarted(0).load(ticket).await.expect("load");
    assert_eq!(without.snapshot_version, None);
    assert_eq!(with.state, without.state);
    assert_eq!(with.version, 41);
    assert_eq!(without.replayed, 41);
    // The running service's cached state agrees with both.
    assert_eq!(
        f.service.load(ticket).await.expect("load").state,
        with.state
    );
}

#[tokio::test]
async fn the_cache_holds_each_commands_result_and_still_sees_other_writers() {
    let f = fixture(0);
    let (ticket, _) = new_ticket(&f, &customer()).await;
    let fresh = || {
        let tree = f.store.tree("snapshots").expect("tree");
        let dyn_store: Arc<dyn EventStore> = f.store.clone();
        CommandService::new(
            dyn_store,
            SnapshotStore::new(tree, SnapshotConfig { every_events: 0 }),
            ServiceConfig::default(),
        )
    };
    for i in 0..3 {
        f.execute(&customer(), comment(ticket, &format!("c{i}")))
            .await
            .expect("comment");
        // The appended records were folded in: nothing left to read.
        let cached = f.service.load(ticket).await.expect("load");
        assert_eq!(cached.replayed, 0);
        assert_eq!(cached.version, 2 + i);
        let replayed = fresh().load(ticket).await.expect("replay");
        assert_eq!(cached.state, replayed.state);
        assert_eq!(cached.last_hash, replayed.last_hash);
    }
    // An append that bypasses the service is still seen by the next load.
    let p = customer();
    f.store
        .append(event_store::AppendRequest {
            stream_id: ticket,
            expected: event_store::ExpectedVersion::Exact(4),
            events: vec![event_store::NewEvent::new(
                event_store::EventPayload::CommentPosted {
                    comment_id: Uuid::now_v7(),
                    body: "direct".into(),
                    internal: false,
                },
            )],
            command_id: Uuid::now_v7(),
            request_fingerprint: None,
            correlation_id: Uuid::now_v7(),
            tenant: p.tenant.clone(),
            actor: event_store::Actor {
                user_id: p.user_id,
                role: p.role,
            },
            recorded_at: chrono::Utc::now(),
        })
        .await
        .expect("direct append");
    let caught_up = f.service.load(ticket).await.expect("load");
    assert_eq!(caught_up.version, 5);
    assert_eq!(caught_up.replayed, 1);
    assert_eq!(
        caught_up.state,
        fresh().load(ticket).await.expect("replay").state
    );
}

/// Two services over one store stand for two processes: each decides on
/// its cached state without asking the store first, so whatever the other
/// appended must still be seen before anything is answered.
#[tokio::test]
async fn a_stale_cached_state_is_never_what_a_command_is_answered_on() {
    let a = fixture(0);
    let b = {
        let tree = a.store.tree("snapshots").expect("tree");
        let dyn_store: Arc<dyn EventStore> = a.store.clone();
        CommandService::new(
            dyn_store,
            SnapshotStore::new(tree, SnapshotConfig { every_events: 0 }),
            ServiceConfig::default(),
        )
    };
    let (ticket, _) = new_ticket(&a, &customer()).await;
    a.execute(&agent(), comment(ticket, "a caches v2"))
        .await
        .expect("comment");
    let status = |status| {
        Action::ChangeStatus(ChangeStatus {
            ticket_id: ticket,
            status,
            note: None,
        })
    };
    // B moves the ticket on; A's cache still says open at version 2.
    let moved = b
        .execute(
            &agent(),
            status(TicketStatus::Assigned),
            Uuid::now_v7(),
            None,
        )
        .await
        .expect("assigned by b");
    assert_eq!(moved.version, 3);
    // Refused on the cached state (open cannot start), accepted on the true one.
    let started = a
        .execute(&agent(), status(TicketStatus::InProgress))
        .await
        .expect("in progress on the fresh state");
    assert_eq!(started.version, 4);
    // An If-Match of the version B just made is not a conflict for A.
    b.execute(&agent(), comment(ticket, "b at v5"), Uuid::now_v7(), None)
        .await
        .expect("comment by b");
    let matched = a
        .service
        .execute(
            &agent(),
            comment(ticket, "a at v6"),
            Uuid::now_v7(),
            Some(5),
        )
        .await
        .expect("If-Match of the true version");
    assert_eq!(matched.version, 6);
    // Nothing to do on the true state: answered with the true version, no append.
    b.execute(
        &agent(),
        status(TicketStatus::Resolved),
        Uuid::now_v7(),
        None,
    )
    .await
    .expect("resolved by b");
    let head = a.store.head().await.expect("head");
    let err = a
        .execute(&agent(), status(TicketStatus::Resolved))
        .await
        .expect_err("resolved already");
    assert!(
        matches!(
            err,
            ServiceError::Domain(DomainError::InvalidTransition { .. })
        ),
        "{err:?}"
    );
    assert_eq!(a.store.head().await.expect("head"), head);
    // A comment on a stale cache lands at the stream's true next version.
    let last = a
        .execute(&customer(), comment(ticket, "a again"))
        .await
        .expect("comment");
    assert_eq!(last.version, 8);
}
