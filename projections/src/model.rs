//! The read model: every view's state plus the checkpoint it reflects,
//! folded from the log in position order. Queries here are pure reads.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use event_store::{
    can_see_stream, EventPayload, Gate, Permission, Principal, RecordedEvent, StreamAudience,
    StreamId, StreamKind, Tenant, TicketId,
};
use serde::{Deserialize, Serialize};

use crate::chat::{ChatLog, ChatPage};
use crate::cursor;
use crate::error::ProjectionError;
use crate::query::{page_limit, search_text, Page, TicketQuery};
use crate::stats::{self, DispatchRow, SlaTargets, StatRow, StatsQuery, StatsReport};
use crate::ticket::{ShownTicket, TicketView};

/// One ticket's views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEntry {
    /// Creation order within the tenant (index into `TenantModel::order`).
    pub seq: u64,
    /// Current state.
    pub state: TicketView,
    /// Conversation and read receipts.
    pub chat: ChatLog,
}

/// One tenant's tickets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantModel {
    /// Tickets by id.
    pub tickets: HashMap<TicketId, TicketEntry>,
    /// Ticket ids in creation order.
    pub order: Vec<TicketId>,
    /// Statistics rows, in creation order (index = `seq`).
    pub rows: Vec<StatRow>,
    /// Site names, interned for the rows.
    pub sites: Vec<String>,
    /// Index of each site name in `sites`.
    pub site_ids: HashMap<String, u32>,
    /// Dispatch timelines, in request order.
    pub dispatch_rows: Vec<DispatchRow>,
    /// Index of each dispatch in `dispatch_rows`.
    pub dispatch_ids: HashMap<event_store::DispatchId, usize>,
}

impl TenantModel {
    fn site_id(&mut self, state: &TicketView) -> Option<u32> {
        let site = state.location.as_ref()?.site.as_ref()?;
        if let Some(id) = self.site_ids.get(site) {
            return Some(*id);
        }
        let id = u32::try_from(self.sites.len()).ok()?;
        self.sites.push(site.clone());
        self.site_ids.insert(site.clone(), id);
        Some(id)
    }
}

/// Every view, and the position of the last event folded into them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadModel {
    /// Last applied global position (0 = nothing yet).
    pub position: u64,
    /// Per-tenant ticket views.
    pub tenants: HashMap<Tenant, TenantModel>,
    /// Every stream's audience, for the visibility rule.
    pub audiences: HashMap<StreamId, StreamAudience>,
}

/// Why an event could not be folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The position the model needed next.
    pub expected: u64,
    /// The position it was given.
    pub got: u64,
}

/// Unread comments per ticket for one principal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnreadSummary {
    /// Tickets with unread comments, newest first.
    pub tickets: Vec<UnreadTicket>,
    /// Sum over all tickets.
    pub total: u64,
}

/// One ticket's unread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnreadTicket {
    /// The ticket.
    pub id: TicketId,
    /// Unread comments visible to the principal.
    pub unread: u64,
}

impl ReadModel {
    /// Folds the next event. Events already folded are skipped (`Ok(false)`),
    /// so a replay overlapping the checkpoint applies each event once; a gap
    /// is refused because folding past it would lose events.
    pub fn apply(&mut self, event: &RecordedEvent) -> Result<bool, Gap> {
        if event.position <= self.position {
            return Ok(false);
        }
        if event.position != self.position + 1 {
            return Err(Gap {
                expected: self.position + 1,
                got: event.position,
            });
        }
        self.audiences
            .entry(event.stream_id)
            .or_default()
            .apply(event);
        match event.payload.stream_kind() {
            StreamKind::Ticket => self.apply_ticket(event),
            StreamKind::Reader => self.apply_receipt(event),
            StreamKind::Technician | StreamKind::TenantCounter | StreamKind::User => {}
        }
        self.position = event.position;
        Ok(true)
    }

    /// A receipt of a reader's stream moves that reader's read mark in the
    /// ticket's chat (same tenant only); the ticket itself does not change.
    fn apply_receipt(&mut self, event: &RecordedEvent) {
        if let EventPayload::ConversationRead {
            reader,
            ticket,
            position,
        } = &event.payload
        {
            if let Some(entry) = self
                .tenants
                .get_mut(&event.tenant)
                .and_then(|t| t.tickets.get_mut(ticket))
            {
                entry.chat.mark_read(*reader, *position);
            }
        }
    }

    fn apply_ticket(&mut self, event: &RecordedEvent) {
        let tenant = match self.tenants.get_mut(&event.tenant) {
            Some(t) => t,
            None => self.tenants.entry(event.tenant.clone()).or_default(),
        };
        if let EventPayload::TicketCreated { .. } = event.payload {
            if tenant.tickets.contains_key(&event.stream_id) {
                return;
            }
            if let Some(state) = TicketView::create(event) {
                let seq = tenant.order.len() as u64;
                tenant.order.push(event.stream_id);
                let site = tenant.site_id(&state);
                tenant.rows.push(StatRow::of(&state, site));
                tenant.tickets.insert(
                    event.stream_id,
                    TicketEntry {
                        seq,
                        state,
                        chat: ChatLog::default(),
                    },
                );
            }
            return;
        }
        if let Some(entry) = tenant.tickets.get_mut(&event.stream_id) {
            let at = crate::time::micros(&event.recorded_at);
            match &event.payload {
                EventPayload::DispatchRequested {
                    dispatch_id,
                    technician,
                    ..
                } if !tenant.dispatch_ids.contains_key(dispatch_id) => {
                    tenant
                        .dispatch_ids
                        .insert(*dispatch_id, tenant.dispatch_rows.len());
                    tenant
                        .dispatch_rows
                        .push(DispatchRow::requested(entry.seq, *technician, at));
                }
                EventPayload::DispatchAccepted { dispatch_id, .. }
                | EventPayload::DispatchDeclined { dispatch_id, .. }
                | EventPayload::DispatchProgressed { dispatch_id, .. }
                | EventPayload::DispatchCompleted { dispatch_id, .. } => {
                    if let Some(row) = tenant
                        .dispatch_ids
                        .get(dispatch_id)
                        .and_then(|i| tenant.dispatch_rows.get_mut(*i))
                    {
                        row.apply(&event.payload, at);
                    }
                }
                _ => {}
            }
            entry.state.apply(event);
            entry.chat.apply(event);
            if let Some(row) = usize::try_from(entry.seq)
                .ok()
                .and_then(|i| tenant.rows.get_mut(i))
            {
                *row = StatRow::of(&entry.state, row.site);
            }
        }
    }

    /// A ticket the principal may open, with its gate.
    fn visible_ticket(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> Result<(&TicketEntry, Gate), ProjectionError> {
        let audience = self.audiences.get(&id).ok_or(ProjectionError::NotFound)?;
        let gate = Gate::of(principal, audience);
        if !gate.stream {
            return Err(ProjectionError::NotFound);
        }
        let entry = self
            .tenants
            .get(&principal.tenant)
            .and_then(|t| t.tickets.get(&id))
            .ok_or(ProjectionError::NotFound)?;
        Ok((entry, gate))
    }

    /// Whether the principal may open the stream `id` (unknown: no).
    pub fn can_open(&self, principal: &Principal, id: StreamId) -> bool {
        self.audiences
            .get(&id)
            .is_some_and(|a| can_see_stream(principal, a))
    }

    /// The audience of a stream, if the model has seen it.
    pub fn audience(&self, id: StreamId) -> Option<&StreamAudience> {
        self.audiences.get(&id)
    }

    /// `GET /api/v1/tickets/{id}`.
    pub fn ticket(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> Result<ShownTicket, ProjectionError> {
        self.visible_ticket(principal, id)
            .map(|(e, gate)| e.state.clone().shown(&gate))
    }

    /// `GET /api/v1/tickets`: newest first (descending creation order,
    /// which is descending `number`), filtered, paged by opaque cursor.
    pub fn tickets(
        &self,
        principal: &Principal,
        query: &TicketQuery,
    ) -> Result<Page<ShownTicket>, ProjectionError> {
        if !principal.has(Permission::TicketsView) {
            return Err(ProjectionError::Forbidden {
                permission: Permission::TicketsView.as_str(),
            });
        }
        let limit = page_limit(query.limit)?;
        let q = search_text(query.q.as_deref())?;
        let Some(tenant) = self.tenants.get(&principal.tenant) else {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        };
        let before = match query.cursor.as_deref() {
            None | Some("") => tenant.order.len(),
            Some(c) => {
                let seq = cursor::decode(c)
                    .ok_or_else(|| ProjectionError::bad("cursor", "not a cursor"))?;
                usize::try_from(seq)
                    .unwrap_or(usize::MAX)
                    .min(tenant.order.len())
            }
        };
        let mut matches = tenant.order[..before]
            .iter()
            .rev()
            .filter_map(|id| Some((tenant.tickets.get(id)?, self.audiences.get(id)?)))
            .map(|(e, audience)| (e, Gate::of(principal, audience)))
            .filter(|(e, gate)| gate.stream && matches_filters(&e.state, query, q.as_deref()));
        let mut items = Vec::with_capacity(limit.min(64));
        let mut last_seq = 0;
        for (e, gate) in matches.by_ref().take(limit) {
            last_seq = e.seq;
            items.push(e.state.clone().shown(&gate));
        }
        let next_cursor =
            (items.len() == limit && matches.next().is_some()).then(|| cursor::encode(last_seq));
        Ok(Page { items, next_cursor })
    }

    /// `GET /api/v1/tickets/{id}/chat?after=&limit=`.
    pub fn chat(
        &self,
        principal: &Principal,
        id: TicketId,
        after: u64,
        limit: Option<usize>,
    ) -> Result<ChatPage, ProjectionError> {
        let limit = page_limit(limit)?;
        let (entry, gate) = self.visible_ticket(principal, id)?;
        Ok(entry.chat.page(&gate, principal.user_id, after, limit))
    }

    /// Unread comments per visible ticket for the principal.
    pub fn unread(&self, principal: &Principal) -> UnreadSummary {
        let mut tickets = vec![];
        if let Some(tenant) = self.tenants.get(&principal.tenant) {
            for id in tenant.order.iter().rev() {
                let (Some(entry), Some(audience)) =
                    (tenant.tickets.get(id), self.audiences.get(id))
                else {
                    continue;
                };
                let gate = Gate::of(principal, audience);
                if !gate.stream {
                    continue;
                }
                let unread = entry.chat.unread(&gate, principal.user_id);
                if unread > 0 {
                    tickets.push(UnreadTicket { id: *id, unread });
                }
            }
        }
        let total = tickets.iter().map(|t| t.unread).sum();
        UnreadSummary { tickets, total }
    }

    /// `GET /api/v1/stats`: aggregates over the principal's tenant.
    pub fn stats(
        &self,
        principal: &Principal,
        query: &StatsQuery,
        sla: &SlaTargets,
        now: DateTime<Utc>,
    ) -> Result<StatsReport, ProjectionError> {
        if !principal.has(Permission::StatsRead) {
            return Err(ProjectionError::Forbidden {
                permission: Permission::StatsRead.as_str(),
            });
        }
        if let (Some(f), Some(t)) = (query.from, query.to) {
            if f > t {
                return Err(ProjectionError::bad("from", "must not be after to"));
            }
        }
        Ok(match self.tenants.get(&principal.tenant) {
            Some(t) => stats::compute(&t.rows, &t.dispatch_rows, &t.sites, query, sla, now),
            None => stats::compute(&[], &[], &[], query, sla, now),
        })
    }
}

fn matches_filters(t: &TicketView, q: &TicketQuery, text: Option<&str>) -> bool {
    q.status.is_none_or(|s| s == t.status)
        && q.priority.is_none_or(|p| p == t.priority)
        && q.kind.is_none_or(|k| k == t.kind)
        && q.assignee.is_none_or(|a| Some(a) == t.assignee)
        && q.site
            .as_deref()
            .is_none_or(|s| t.location.as_ref().and_then(|l| l.site.as_deref()) == Some(s))
        && text.is_none_or(|needle| {
            contains_ci(&t.title, needle) || contains_ci(&t.description, needle)
        })
}

/// Case-insensitive containment; `needle` is already lower case.
fn contains_ci(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle)
}
