//! Dispatch through the command service on the real sled store: the
//! re-dispatch after a decline or a timeout, the automatic dispatch of
//! critical incidents, and replaying every choice from the log.

use chrono::{DateTime, TimeZone, Utc};
use event_store::{
    DispatchChoice, EventPayload, GeoPoint, Location, Pages, Principal, Priority, RecordedEvent,
    Role, TicketKind, TicketStatus,
};
use uuid::Uuid;

use super::tests::{agent, customer, dave, fixture_with, tom, who, Fixture};
use super::*;
use crate::domain::proximity;
use crate::domain::*;

/// Technicians, nearest to the incident first: `dave`, `tom`, then ann.
fn ann() -> Principal {
    who(5, Role::Technician, "acme")
}

fn fixture(config: ServiceConfig) -> Fixture {
    fixture_with(4, config)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0)
        .single()
        .expect("valid")
}
fn after_secs(s: i64) -> DateTime<Utc> {
    t0() + chrono::TimeDelta::seconds(s)
}

/// Notre-Dame de Paris.
fn paris(site: Option<&str>) -> Location {
    Location {
        lat: Some(48.8530),
        lon: Some(2.3499),
        site: site.map(str::to_string),
        ..Location::default()
    }
}

impl Fixture {
    async fn run(&self, by: &Principal, action: Action, at: DateTime<Utc>) -> CommandOutcome {
        self.service
            .execute_at(by, action, Uuid::now_v7(), None, at)
            .await
            .expect("command succeeds")
    }

    async fn report(&self, by: &Principal, lat: f64, lon: f64, site: Option<&str>) {
        let action = Action::ReportLocation(ReportLocation {
            lat,
            lon,
            site: site.map(str::to_string),
            building: None,
            floor: None,
        });
        self.run(by, action, t0()).await;
    }

    /// Dave ~1 km, Tom ~5 km, Ann ~10 km from the incident.
    async fn three_technicians(&self) {
        self.report(&dave(), 48.8620, 2.3499, None).await;
        self.report(&tom(), 48.8980, 2.3499, None).await;
        self.report(&ann(), 48.9430, 2.3499, None).await;
    }

    async fn ticket(&self, priority: Priority, location: Option<Location>) -> Uuid {
        let id = Uuid::now_v7();
        let action = Action::CreateTicket(CreateTicket {
            ticket_id: id,
            title: "Server room flooding".into(),
            description: String::new(),
            priority,
            kind: TicketKind::Incident,
            location,
            tags: vec![],
            device: None,
        });
        self.run(&customer(), action, t0()).await;
        id
    }

    async fn dispatch(&self, ticket: Uuid, at: DateTime<Utc>) -> Uuid {
        let dispatch_id = Uuid::now_v7();
        let action = Action::AssignDispatch(AssignDispatch {
            ticket_id: ticket,
            dispatch_id,
            technician_id: None,
            radius_km: None,
        });
        self.run(&agent(), action, at).await;
        dispatch_id
    }

    async fn state(&self, ticket: Uuid) -> Ticket {
        self.ticket_seen_by(&agent(), ticket).await
    }

    async fn log(&self) -> Vec<RecordedEvent> {
        let mut all = Vec::new();
        let mut pages = Pages::log(&*self.store, 1);
        while let Some(page) = pages.next_page().await.expect("read") {
            all.extend(page);
        }
        all
    }

    async fn event_of(&self, dispatch: Uuid, kind: &str) -> RecordedEvent {
        self.log()
            .await
            .into_iter()
            .find(|e| {
                e.payload.kind() == kind
                    && match &e.payload {
                        EventPayload::DispatchRequested { dispatch_id, .. }
                        | EventPayload::DispatchDeclined { dispatch_id, .. } => {
                            *dispatch_id == dispatch
                        }
                        _ => false,
                    }
            })
            .expect("event in the log")
    }
}

fn decline(dispatch: Uuid) -> Action {
    Action::RespondDispatch(RespondDispatch {
        dispatch_id: dispatch,
        response: DispatchResponse::Decline,
        reason: Some("stuck in traffic".into()),
    })
}

#[tokio::test]
async fn decline_redispatches_to_the_next_nearest_until_nobody_is_left() {
    let f = fixture(ServiceConfig::default());
    f.three_technicians().await;
    let ticket = f.ticket(Priority::High, Some(paris(None))).await;
    let first = f.dispatch(ticket, t0()).await;
    let t = f.state(ticket).await;
    let d = t.dispatch_by_id(first);
    assert_eq!(d.technician, Some(dave().user_id));
    assert_eq!(d.choice, DispatchChoice::Nearest);
    // ETA = distance over the configured 40 km/h.
    let km = d.distance_km.expect("distance");
    assert!((km - 1.0).abs() < 0.05, "{km}");
    assert_eq!(d.eta_minutes, proximity::eta_minutes(km, 40.0));
    assert!((d.eta_minutes.expect("eta") - 1.5).abs() < 0.1);

    // Dave declines: the service sends Tom, as the system actor.
    let command_id = Uuid::now_v7();
    let outcome = f
        .service
        .execute_at(&dave(), decline(first), command_id, None, after_secs(10))
        .await
        .expect("declined");
    let t = f.state(ticket).await;
    assert_eq!(t.dispatches.len(), 2);
    let second = t.dispatches[1].clone();
    assert_eq!(
        (second.technician, second.phase),
        (Some(tom().user_id), DispatchPhase::Requested)
    );
    let requested = f.event_of(second.id, "DispatchRequested").await;
    assert_eq!(requested.actor.user_id, SYSTEM_USER_ID);
    assert_eq!(
        requested.command_id,
        derived_command(FollowUpKind::Redispatch, command_id)
    );
    assert!(
        outcome.position < requested.position,
        "the answer is the decline's own"
    );
    // A retried decline appends nothing, not even a second re-dispatch.
    let retry = f
        .service
        .execute_at(&dave(), decline(first), command_id, None, after_secs(11))
        .await
        .expect("retry");
    assert_eq!(retry.appended, Appended::Earlier);
    assert_eq!(f.state(ticket).await.dispatches.len(), 2);

    // Tom declines: Ann; Ann declines: nobody is left within reach, so
    // everyone is notified and no one is assigned.
    f.run(&tom(), decline(second.id), after_secs(20)).await;
    let third = f.state(ticket).await.dispatches[2].clone();
    assert_eq!(third.technician, Some(ann().user_id));
    f.run(&ann(), decline(third.id), after_secs(30)).await;
    let t = f.state(ticket).await;
    assert_eq!(t.dispatches.len(), 4);
    let last = &t.dispatches[3];
    assert_eq!(
        (last.technician, last.choice, last.phase),
        (None, DispatchChoice::Broadcast, DispatchPhase::Unassigned)
    );
    let mut declined = t.declined_by();
    declined.sort();
    assert_eq!(declined, vec![dave().user_id, tom().user_id, ann().user_id]);
    // Everyone is free again.
    let fleet = f.technicians().await;
    assert!(fleet.iter().all(|t| t.available));
}

#[tokio::test]
async fn unanswered_requests_time_out_to_the_next_nearest() {
    let f = fixture(ServiceConfig {
        dispatch_timeout_secs: 120,
        ..ServiceConfig::default()
    });
    f.three_technicians().await;
    let ticket = f.ticket(Priority::High, Some(paris(None))).await;
    let first = f.dispatch(ticket, t0()).await;

    let early = f
        .service
        .expire_overdue(after_secs(119))
        .await
        .expect("tick");
    assert!(early.is_empty());
    let expired = f
        .service
        .expire_overdue(after_secs(120))
        .await
        .expect("tick");
    assert_eq!(expired.len(), 1);
    let e = &expired[0];
    assert_eq!(
        (e.dispatch_id, e.ticket_id, e.technician),
        (first, ticket, dave().user_id)
    );
    let second = e.redispatched.expect("re-dispatched");
    let declined = f.event_of(first, "DispatchDeclined").await;
    assert_eq!(declined.actor.user_id, SYSTEM_USER_ID);
    assert_eq!(declined.recorded_at, after_secs(120));
    let EventPayload::DispatchDeclined {
        technician, reason, ..
    } = &declined.payload
    else {
        panic!("a decline");
    };
    assert_eq!(
        (*technician, reason.as_deref()),
        (dave().user_id, Some("timeout"))
    );
    let t = f.state(ticket).await;
    assert_eq!(t.dispatch_by_id(second).technician, Some(tom().user_id));
    assert_eq!(t.declined_by(), vec![dave().user_id]);

    // The same tick again, or a late one: Tom's request is not due yet.
    let log_len = f.log().await.len();
    assert!(f
        .service
        .expire_overdue(after_secs(120))
        .await
        .expect("tick")
        .is_empty());
    assert_eq!(f.log().await.len(), log_len);
    // Dave answers too late: his request is no longer his to answer.
    let late = f
        .service
        .execute_at(
            &dave(),
            Action::RespondDispatch(RespondDispatch {
                dispatch_id: first,
                response: DispatchResponse::Accept,
                reason: None,
            }),
            Uuid::now_v7(),
            None,
            after_secs(121),
        )
        .await
        .expect_err("already declined");
    assert!(
        matches!(
            late,
            ServiceError::Domain(DomainError::InvalidTransition { .. })
        ),
        "{late:?}"
    );
    // Tom accepts in time: nothing expires later.
    f.run(
        &tom(),
        Action::RespondDispatch(RespondDispatch {
            dispatch_id: second,
            response: DispatchResponse::Accept,
            reason: None,
        }),
        after_secs(200),
    )
    .await;
    assert!(f
        .service
        .expire_overdue(after_secs(10_000))
        .await
        .expect("tick")
        .is_empty());
    assert_eq!(f.state(ticket).await.status, TicketStatus::InProgress);
    // Expiring by hand before the deadline is refused.
    let ticket2 = f.ticket(Priority::High, Some(paris(None))).await;
    let pending = f.dispatch(ticket2, after_secs(300)).await;
    let err = f
        .service
        .execute_at(
            &agent(),
            Action::ExpireDispatch(ExpireDispatch {
                dispatch_id: pending,
            }),
            Uuid::now_v7(),
            None,
            after_secs(301),
        )
        .await
        .expect_err("not overdue");
    assert!(
        matches!(err, ServiceError::Domain(DomainError::Conflict { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn critical_incidents_with_a_place_are_dispatched_on_creation() {
    let mut config = ServiceConfig::default();
    config.auto_dispatch_tenants.insert("quiet".into(), false);
    let f = fixture(config);
    f.three_technicians().await;

    let command_id = Uuid::now_v7();
    let id = Uuid::now_v7();
    let create = |id| {
        Action::CreateTicket(CreateTicket {
            ticket_id: id,
            title: "Data centre on fire".into(),
            description: String::new(),
            priority: Priority::Critical,
            kind: TicketKind::Incident,
            location: Some(paris(None)),
            tags: vec![],
            device: None,
        })
    };
    f.service
        .execute_at(&customer(), create(id), command_id, None, t0())
        .await
        .expect("created");
    let t = f.state(id).await;
    assert_eq!(t.dispatches.len(), 1);
    let d = &t.dispatches[0];
    assert_eq!(
        (d.technician, d.choice, d.phase),
        (
            Some(dave().user_id),
            DispatchChoice::Nearest,
            DispatchPhase::Requested
        )
    );
    let requested = f.event_of(d.id, "DispatchRequested").await;
    assert_eq!(requested.actor.user_id, SYSTEM_USER_ID);
    assert_eq!(
        requested.command_id,
        derived_command(FollowUpKind::AutoDispatch, command_id)
    );
    // The customer reporting it may see the ticket, not the internals of
    // who acted: the system actor is not the customer.
    assert_ne!(requested.actor.user_id, customer().user_id);
    // A retried create changes nothing.
    let retry = f
        .service
        .execute_at(&customer(), create(Uuid::now_v7()), command_id, None, t0())
        .await
        .expect("retry");
    assert_eq!(retry.appended, Appended::Earlier);
    assert_eq!(f.state(id).await.dispatches.len(), 1);

    // Not critical, not located, or a tenant that opted out: no dispatch.
    let high = f.ticket(Priority::High, Some(paris(None))).await;
    assert!(f.state(high).await.dispatches.is_empty());
    let nowhere = f.ticket(Priority::Critical, None).await;
    assert!(f.state(nowhere).await.dispatches.is_empty());
    let quiet_agent = Principal {
        tenant: "quiet".into(),
        ..agent()
    };
    let quiet = Uuid::now_v7();
    f.run(&quiet_agent, create(quiet), t0()).await;
    let t = f.ticket_seen_by(&quiet_agent, quiet).await;
    assert!(t.dispatches.is_empty());
}

#[tokio::test]
async fn site_fallback_when_nobody_is_within_the_radius() {
    let f = fixture(ServiceConfig::default());
    // Lyon, 390 km away, but at the incident's site; Tom in Lille, elsewhere.
    f.report(&dave(), 45.7640, 4.8357, Some("Paris HQ")).await;
    f.report(&tom(), 50.6292, 3.0573, Some("Lille")).await;
    let ticket = f
        .ticket(Priority::High, Some(paris(Some("paris hq"))))
        .await;
    let d = f.dispatch(ticket, t0()).await;
    let t = f.state(ticket).await;
    let d = t.dispatch_by_id(d);
    assert_eq!(
        (d.technician, d.choice),
        (Some(dave().user_id), DispatchChoice::Site)
    );
    // Dave declines: nobody else there, so everyone is notified.
    f.run(&dave(), decline(d.id), after_secs(5)).await;
    let t = f.state(ticket).await;
    let last = t.dispatches.last().expect("re-dispatch");
    assert_eq!(
        (last.technician, last.choice),
        (None, DispatchChoice::Broadcast)
    );
}

#[tokio::test]
async fn rebuilding_from_the_log_makes_the_same_choices() {
    let f = fixture(ServiceConfig::default());
    f.three_technicians().await;
    // Busy technicians, declines, timeouts, completions and moves, so the
    // fleet differs at every choice.
    let a = f.ticket(Priority::High, Some(paris(None))).await;
    let da = f.dispatch(a, t0()).await; // dave
    let b = f.ticket(Priority::Critical, Some(paris(None))).await; // auto: tom
    let db = f.state(b).await.dispatches[0].id;
    f.run(&dave(), decline(da), after_secs(5)).await; // a -> ann
    let expired = f
        .service
        .expire_overdue(after_secs(10_000))
        .await
        .expect("tick"); // tom (b) then ann (a) time out: b -> dave, a -> tom
    assert_eq!(expired.len(), 2);
    let db2 = f.state(b).await.dispatches.last().expect("b").id;
    for (stage, at) in [
        (None, 10_010),
        (Some(DispatchPhase::EnRoute), 10_020),
        (Some(DispatchPhase::OnSite), 10_030),
        (Some(DispatchPhase::Completed), 10_040),
    ] {
        let action = match stage {
            None => Action::RespondDispatch(RespondDispatch {
                dispatch_id: db2,
                response: DispatchResponse::Accept,
                reason: None,
            }),
            Some(stage) => Action::ProgressDispatch(ProgressDispatch {
                dispatch_id: db2,
                stage,
                location: Some(GeoPoint {
                    lat: 48.853,
                    lon: 2.35,
                }),
            }),
        };
        f.run(&dave(), action, after_secs(at)).await;
    }
    f.report(&ann(), 48.8531, 2.3500, None).await;
    let c = f.ticket(Priority::Critical, Some(paris(None))).await; // auto: ann

    let log = f.log().await;
    let replayed = replay_dispatch_choices(&log);
    assert!(replayed.len() >= 6, "{}", replayed.len());
    for r in &replayed {
        assert!(r.agrees(), "{r:#?}");
    }
    let chosen: Vec<Option<Uuid>> = replayed.iter().map(|r| r.recorded.0).collect();
    assert_eq!(
        chosen,
        vec![
            Some(dave().user_id), // a
            Some(tom().user_id),  // b, automatically
            Some(ann().user_id),  // a, after dave declined
            Some(dave().user_id), // b, after tom timed out
            Some(tom().user_id),  // a, after ann timed out (tom is free again)
            Some(ann().user_id),  // c, automatically, ann now next door
        ]
    );
    assert_ne!(db, db2);
    assert_eq!(
        f.state(c).await.dispatches[0].technician,
        Some(ann().user_id)
    );
    assert_eq!(f.state(b).await.status, TicketStatus::Resolved);
    // A fresh index (as after a restart) folds the same fleet.
    let live = f
        .service
        .fleet()
        .view(f.store.as_ref())
        .await
        .expect("live");
    let fresh = FleetIndex::new()
        .view(f.store.as_ref())
        .await
        .expect("fresh");
    assert_eq!(live, fresh);
}

trait DispatchById {
    fn dispatch_by_id(&self, id: Uuid) -> Dispatch;
}

impl DispatchById for Ticket {
    fn dispatch_by_id(&self, id: Uuid) -> Dispatch {
        self.dispatches
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .expect("dispatch of this ticket")
    }
}

#[tokio::test]
async fn a_redispatch_searches_as_far_as_the_declined_request() {
    let f = fixture(ServiceConfig::default());
    f.three_technicians().await;
    let ticket = f.ticket(Priority::High, Some(paris(None))).await;
    // 7 km reaches Dave (~1 km) and Tom (~5 km), not Ann (~10 km).
    let first = Uuid::now_v7();
    let action = Action::AssignDispatch(AssignDispatch {
        ticket_id: ticket,
        dispatch_id: first,
        technician_id: None,
        radius_km: Some(7.0),
    });
    f.run(&agent(), action, t0()).await;
    assert_eq!(
        f.state(ticket).await.dispatch_by_id(first).technician,
        Some(dave().user_id)
    );

    f.run(&dave(), decline(first), after_secs(10)).await;
    let second = f.state(ticket).await.dispatches[1].clone();
    assert_eq!(second.technician, Some(tom().user_id));
    match f.event_of(second.id, "DispatchRequested").await.payload {
        EventPayload::DispatchRequested { radius_km, .. } => assert_eq!(radius_km, 7.0),
        other => panic!("{other:?}"),
    }

    // Tom declines: Ann is beyond the 7 km the agent asked for.
    f.run(&tom(), decline(second.id), after_secs(20)).await;
    let third = f.state(ticket).await.dispatches[2].clone();
    assert_eq!(
        (third.technician, third.choice),
        (None, DispatchChoice::Broadcast)
    );
}
