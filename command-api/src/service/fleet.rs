//! Technicians and dispatches across tickets, derived from the log: which
//! ticket a dispatch belongs to (the dispatch routes carry only its id),
//! and each technician's last position and availability (for choosing the
//! nearest). Held in memory and caught up from the log on demand, so it is
//! always rebuildable and never a second source of truth.

use std::collections::HashMap;

use event_store::limits::READ_PAGE_MAX;
use event_store::{
    DispatchId, EventPayload, EventStore, GeoPoint, RecordedEvent, TicketId, UserId,
};
use tokio::sync::Mutex;

use super::error::ServiceError;
use crate::domain::TechnicianInfo;

/// The index; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct FleetIndex {
    state: Mutex<FleetState>,
}

#[derive(Debug, Default)]
struct FleetState {
    /// Last log position folded in.
    position: u64,
    /// Dispatch → (ticket, technician if any).
    dispatches: HashMap<DispatchId, (TicketId, Option<UserId>)>,
    /// Technicians seen in the log.
    technicians: HashMap<UserId, Technician>,
}

#[derive(Debug, Clone)]
struct Technician {
    tenant: String,
    position: Option<GeoPoint>,
    site: Option<String>,
    active: Option<DispatchId>,
}

impl FleetState {
    fn technician(&mut self, id: UserId, tenant: &str) -> &mut Technician {
        self.technicians.entry(id).or_insert_with(|| Technician {
            tenant: tenant.to_string(),
            position: None,
            site: None,
            active: None,
        })
    }

    fn release(&mut self, dispatch: DispatchId) {
        if let Some((_, Some(t))) = self.dispatches.get(&dispatch).copied() {
            if let Some(tech) = self.technicians.get_mut(&t) {
                if tech.active == Some(dispatch) {
                    tech.active = None;
                }
            }
        }
    }

    fn apply(&mut self, e: &RecordedEvent) {
        self.position = e.position;
        match &e.payload {
            EventPayload::DispatchRequested {
                dispatch_id,
                technician,
                ..
            } => {
                self.dispatches
                    .insert(*dispatch_id, (e.stream_id, *technician));
                if let Some(t) = technician {
                    self.technician(*t, &e.tenant).active = Some(*dispatch_id);
                }
            }
            EventPayload::DispatchDeclined { dispatch_id, .. }
            | EventPayload::DispatchCompleted { dispatch_id, .. } => self.release(*dispatch_id),
            EventPayload::TechnicianLocationReported {
                technician,
                point,
                site,
                ..
            } => {
                let t = self.technician(*technician, &e.tenant);
                t.position = Some(*point);
                t.site = site.clone();
            }
            _ => {}
        }
    }
}

impl FleetIndex {
    /// An empty index (it catches up from the start of the log on first use).
    pub fn new() -> Self {
        FleetIndex::default()
    }

    /// Folds in every event appended since the last call; returns the position reached.
    pub async fn catch_up(&self, store: &dyn EventStore) -> Result<u64, ServiceError> {
        let mut state = self.state.lock().await;
        catch_up(&mut state, store).await
    }

    /// The ticket of dispatch `id`, or `None` if the log has no such dispatch.
    pub async fn ticket_of(
        &self,
        store: &dyn EventStore,
        id: DispatchId,
    ) -> Result<Option<TicketId>, ServiceError> {
        let mut state = self.state.lock().await;
        if let Some((ticket, _)) = state.dispatches.get(&id) {
            return Ok(Some(*ticket));
        }
        catch_up(&mut state, store).await?;
        Ok(state.dispatches.get(&id).map(|(ticket, _)| *ticket))
    }

    /// The technicians of `tenant` known from the log, by id, with their
    /// last position and whether they are free of active dispatches.
    pub async fn technicians(
        &self,
        store: &dyn EventStore,
        tenant: &str,
    ) -> Result<Vec<TechnicianInfo>, ServiceError> {
        let mut state = self.state.lock().await;
        catch_up(&mut state, store).await?;
        let mut out: Vec<TechnicianInfo> = state
            .technicians
            .iter()
            .filter(|(_, t)| t.tenant == tenant)
            .map(|(id, t)| TechnicianInfo {
                id: *id,
                position: t.position,
                site: t.site.clone(),
                available: t.active.is_none(),
            })
            .collect();
        out.sort_by_key(|t| t.id);
        Ok(out)
    }
}

async fn catch_up(state: &mut FleetState, store: &dyn EventStore) -> Result<u64, ServiceError> {
    loop {
        let page = store.read_all(state.position + 1, READ_PAGE_MAX).await?;
        if page.is_empty() {
            return Ok(state.position);
        }
        for e in &page {
            state.apply(e);
        }
    }
}
