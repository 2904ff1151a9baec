//! Technicians and dispatches across tickets, derived from the log: which
//! ticket a dispatch belongs to (the dispatch routes carry only its id),
//! each technician's last position and availability (for choosing the
//! nearest), and the requests still waiting for an answer (for timeouts).
//! [`FleetView`] is the pure fold; [`FleetIndex`] holds one in memory and
//! catches it up from the log on demand, so it is always rebuildable and
//! never a second source of truth.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use event_store::{
    DispatchId, EventPayload, EventStore, GeoPoint, Pages, RecordedEvent, Tenant, TicketId, UserId,
};
use tokio::sync::Mutex;

use super::error::ServiceError;
use crate::domain::TechnicianInfo;

/// The fleet as of one log position: a pure fold of the events (same
/// events, same view, whatever the order of calls that built it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetView {
    /// Last log position folded in.
    position: u64,
    /// Every dispatch: its ticket, tenant and technician.
    dispatches: HashMap<DispatchId, DispatchEntry>,
    /// Requests with a technician still waiting for an answer.
    pending: HashMap<DispatchId, DateTime<Utc>>,
    /// Technicians seen in the log, per tenant (a user id from an outside
    /// identity provider may exist in two tenants), ordered by id.
    technicians: BTreeMap<(Tenant, UserId), Technician>,
}

#[derive(Debug, Clone, PartialEq)]
struct DispatchEntry {
    ticket: TicketId,
    tenant: Tenant,
    technician: Option<UserId>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Technician {
    position: Option<GeoPoint>,
    site: Option<String>,
    /// The dispatch occupying the technician.
    active: Option<DispatchId>,
}

/// A dispatch request nobody answered in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueDispatch {
    /// The dispatch.
    pub dispatch_id: DispatchId,
    /// Its ticket.
    pub ticket_id: TicketId,
    /// The ticket's tenant.
    pub tenant: Tenant,
    /// The technician who did not answer.
    pub technician: UserId,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
}

impl FleetView {
    /// The view of an empty log.
    pub fn new() -> Self {
        FleetView::default()
    }

    /// The last log position folded in.
    pub fn position(&self) -> u64 {
        self.position
    }

    fn technician(&mut self, tenant: &str, id: UserId) -> &mut Technician {
        self.technicians
            .entry((tenant.to_string(), id))
            .or_default()
    }

    fn release(&mut self, dispatch: DispatchId) {
        self.pending.remove(&dispatch);
        let Some(entry) = self.dispatches.get(&dispatch) else {
            return;
        };
        let Some(t) = entry.technician else {
            return;
        };
        if let Some(tech) = self.technicians.get_mut(&(entry.tenant.clone(), t)) {
            if tech.active == Some(dispatch) {
                tech.active = None;
            }
        }
    }

    /// Folds one event (events of streams other than tickets' and
    /// technicians' change nothing but the position).
    pub fn apply(&mut self, e: &RecordedEvent) {
        self.position = e.position;
        match &e.payload {
            EventPayload::DispatchRequested {
                dispatch_id,
                technician,
                ..
            } => {
                self.dispatches.insert(
                    *dispatch_id,
                    DispatchEntry {
                        ticket: e.stream_id,
                        tenant: e.tenant.clone(),
                        technician: *technician,
                    },
                );
                if let Some(t) = technician {
                    self.technician(&e.tenant, *t).active = Some(*dispatch_id);
                    self.pending.insert(*dispatch_id, e.recorded_at);
                }
            }
            EventPayload::DispatchAccepted { dispatch_id, .. } => {
                self.pending.remove(dispatch_id);
            }
            EventPayload::DispatchDeclined { dispatch_id, .. }
            | EventPayload::DispatchCompleted { dispatch_id, .. } => self.release(*dispatch_id),
            EventPayload::TechnicianLocationReported {
                technician,
                point,
                site,
                ..
            } => {
                let t = self.technician(&e.tenant, *technician);
                t.position = Some(*point);
                t.site = site.clone();
            }
            _ => {}
        }
    }

    /// The ticket of dispatch `id`, if the log has it.
    pub fn ticket_of(&self, id: DispatchId) -> Option<TicketId> {
        self.dispatches.get(&id).map(|d| d.ticket)
    }

    /// The technicians of `tenant` known from the log, ordered by id, with
    /// their last position and whether they are free of active dispatches.
    pub fn technicians(&self, tenant: &str) -> Vec<TechnicianInfo> {
        self.technicians
            .range((tenant.to_string(), UserId::nil())..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|((_, id), t)| TechnicianInfo {
                id: *id,
                position: t.position,
                site: t.site.clone(),
                available: t.active.is_none(),
            })
            .collect()
    }

    /// Requests unanswered for `timeout_secs` or more at `now`, oldest
    /// first (ties by dispatch id), so a timer expires them in a stable order.
    pub fn overdue_dispatches(
        &self,
        now: DateTime<Utc>,
        timeout_secs: u64,
    ) -> Vec<OverdueDispatch> {
        let timeout = i64::try_from(timeout_secs)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds);
        let Some(cutoff) = timeout.and_then(|t| now.checked_sub_signed(t)) else {
            return Vec::new();
        };
        let mut out: Vec<OverdueDispatch> = self
            .pending
            .iter()
            .filter(|(_, requested_at)| **requested_at <= cutoff)
            .filter_map(|(id, requested_at)| {
                let entry = self.dispatches.get(id)?;
                Some(OverdueDispatch {
                    dispatch_id: *id,
                    ticket_id: entry.ticket,
                    tenant: entry.tenant.clone(),
                    technician: entry.technician?,
                    requested_at: *requested_at,
                })
            })
            .collect();
        out.sort_by_key(|o| (o.requested_at, o.dispatch_id));
        out
    }
}

/// The shared, lazily caught-up [`FleetView`]; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct FleetIndex {
    view: Mutex<FleetView>,
}

impl FleetIndex {
    /// An empty index (it catches up from the start of the log on first use).
    pub fn new() -> Self {
        FleetIndex::default()
    }

    /// Folds in every event appended since the last call; returns the position reached.
    pub async fn catch_up(&self, store: &dyn EventStore) -> Result<u64, ServiceError> {
        let mut view = self.view.lock().await;
        catch_up(&mut view, store).await
    }

    /// A copy of the view, caught up to the log's head.
    pub async fn view(&self, store: &dyn EventStore) -> Result<FleetView, ServiceError> {
        let mut view = self.view.lock().await;
        catch_up(&mut view, store).await?;
        Ok(view.clone())
    }

    /// The ticket of dispatch `id`, or `None` if the log has no such dispatch.
    pub async fn ticket_of(
        &self,
        store: &dyn EventStore,
        id: DispatchId,
    ) -> Result<Option<TicketId>, ServiceError> {
        let mut view = self.view.lock().await;
        if let Some(ticket) = view.ticket_of(id) {
            return Ok(Some(ticket));
        }
        catch_up(&mut view, store).await?;
        Ok(view.ticket_of(id))
    }

    /// [`FleetView::technicians`], caught up to the log's head.
    pub async fn technicians(
        &self,
        store: &dyn EventStore,
        tenant: &str,
    ) -> Result<Vec<TechnicianInfo>, ServiceError> {
        let mut view = self.view.lock().await;
        catch_up(&mut view, store).await?;
        Ok(view.technicians(tenant))
    }

    /// [`FleetView::overdue_dispatches`], caught up to the log's head.
    pub async fn overdue_dispatches(
        &self,
        store: &dyn EventStore,
        now: DateTime<Utc>,
        timeout_secs: u64,
    ) -> Result<Vec<OverdueDispatch>, ServiceError> {
        let mut view = self.view.lock().await;
        catch_up(&mut view, store).await?;
        Ok(view.overdue_dispatches(now, timeout_secs))
    }
}

async fn catch_up(view: &mut FleetView, store: &dyn EventStore) -> Result<u64, ServiceError> {
    let mut pages = Pages::log(store, view.position + 1);
    while let Some(page) = pages.next_page().await? {
        for e in &page {
            view.apply(e);
        }
    }
    Ok(view.position)
}
