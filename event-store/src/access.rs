//! The one visibility rule: which principal may see which event.
//!
//! Every read path that hands events to a principal (REST, chat, audit,
//! WebSocket, replay) calls [`can_see`] or [`can_see_stream`]. There is
//! deliberately no second copy of this logic anywhere else.

use serde::{Deserialize, Serialize};

use crate::record::{RecordedEvent, Tenant, Visibility};
use crate::schema::{EventPayload, StreamKind, UserId};

/// A role from the contract's permission table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reports tickets; sees only their own.
    Customer,
    /// Works tickets.
    Agent,
    /// Goes on site; sees tickets dispatched to them.
    Technician,
    /// Reads the full history.
    Auditor,
    /// Reads statistics only.
    Analyst,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, in table order.
    pub const ALL: [Role; 6] = [
        Role::Customer,
        Role::Agent,
        Role::Technician,
        Role::Auditor,
        Role::Analyst,
        Role::Admin,
    ];

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Technician => "technician",
            Role::Auditor => "auditor",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// The permissions this role carries (the contract's table).
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Customer => &[TicketsView, TicketsCreate, TicketsComment],
            Role::Agent => &[
                TicketsView,
                TicketsCreate,
                TicketsComment,
                TicketsViewInternal,
                TicketsCommentInternal,
                TicketsManage,
                DispatchManage,
                StatsRead,
            ],
            Role::Technician => &[
                TicketsView,
                TicketsComment,
                TicketsViewInternal,
                TicketsCommentInternal,
                DispatchRespond,
            ],
            Role::Auditor => &[TicketsView, TicketsViewInternal, AuditRead],
            Role::Analyst => &[StatsRead],
            Role::Admin => &[
                TicketsView,
                TicketsCreate,
                TicketsComment,
                TicketsViewInternal,
                TicketsCommentInternal,
                TicketsManage,
                DispatchManage,
                AuditRead,
                StatsRead,
            ],
        }
    }
}

/// A permission from the contract's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// `tickets.view`
    #[serde(rename = "tickets.view")]
    TicketsView,
    /// `tickets.create`
    #[serde(rename = "tickets.create")]
    TicketsCreate,
    /// `tickets.comment`
    #[serde(rename = "tickets.comment")]
    TicketsComment,
    /// `tickets.view.internal`
    #[serde(rename = "tickets.view.internal")]
    TicketsViewInternal,
    /// `tickets.comment.internal`
    #[serde(rename = "tickets.comment.internal")]
    TicketsCommentInternal,
    /// `tickets.manage`
    #[serde(rename = "tickets.manage")]
    TicketsManage,
    /// `dispatch.manage`
    #[serde(rename = "dispatch.manage")]
    DispatchManage,
    /// `dispatch.respond`
    #[serde(rename = "dispatch.respond")]
    DispatchRespond,
    /// `audit.read`
    #[serde(rename = "audit.read")]
    AuditRead,
    /// `stats.read`
    #[serde(rename = "stats.read")]
    StatsRead,
}

impl Permission {
    /// The dotted name from the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::TicketsView => "tickets.view",
            Permission::TicketsCreate => "tickets.create",
            Permission::TicketsComment => "tickets.comment",
            Permission::TicketsViewInternal => "tickets.view.internal",
            Permission::TicketsCommentInternal => "tickets.comment.internal",
            Permission::TicketsManage => "tickets.manage",
            Permission::DispatchManage => "dispatch.manage",
            Permission::DispatchRespond => "dispatch.respond",
            Permission::AuditRead => "audit.read",
            Permission::StatsRead => "stats.read",
        }
    }
}

/// Who is asking: established from a verified token, never from the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user (`sub`).
    pub user_id: UserId,
    /// The tenant (`tenant` claim).
    pub tenant: Tenant,
    /// The role (`role` claim).
    pub role: Role,
    /// Display name, when known (for presence); not used for decisions.
    pub name: String,
}

impl Principal {
    /// Whether the principal's role carries `p`.
    pub fn has(&self, p: Permission) -> bool {
        self.role.permissions().contains(&p)
    }

    /// The permissions, for the token endpoint's answer.
    pub fn permissions(&self) -> Vec<Permission> {
        self.role.permissions().to_vec()
    }
}

/// What the visibility rule needs to know about a stream, folded from the
/// stream's own events (so the rule depends on the log alone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamAudience {
    /// The stream's kind, once its first event is known.
    pub kind: Option<StreamKind>,
    /// The stream's tenant.
    pub tenant: Tenant,
    /// The ticket's reporter (ticket streams).
    pub reporter: Option<UserId>,
    /// Technicians a dispatch of this ticket was requested from.
    pub technicians: Vec<UserId>,
    /// The technician who owns a technician stream.
    pub owner: Option<UserId>,
}

impl StreamAudience {
    /// Folds one event of the stream into the audience.
    pub fn apply(&mut self, event: &RecordedEvent) {
        if self.kind.is_none() {
            self.kind = Some(event.payload.stream_kind());
            self.tenant = event.tenant.clone();
        }
        match &event.payload {
            EventPayload::TicketCreated { reporter, .. } => self.reporter = Some(*reporter),
            EventPayload::DispatchRequested {
                technician: Some(t),
                ..
            } if !self.technicians.contains(t) => self.technicians.push(*t),
            EventPayload::TechnicianLocationReported { technician, .. } => {
                self.owner = Some(*technician)
            }
            _ => {}
        }
    }

    /// The audience of a whole stream.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Self {
        let mut audience = StreamAudience::default();
        for e in events {
            audience.apply(e);
        }
        audience
    }
}

/// Whether `principal` may see the stream at all (a ticket: may open it).
/// Unknown streams are invisible: deny by default.
pub fn can_see_stream(principal: &Principal, audience: &StreamAudience) -> bool {
    if audience.tenant != principal.tenant {
        return false;
    }
    match audience.kind {
        None => false,
        Some(StreamKind::Ticket) => {
            if !principal.has(Permission::TicketsView) {
                return false;
            }
            match principal.role {
                Role::Customer => audience.reporter == Some(principal.user_id),
                Role::Technician => audience.technicians.contains(&principal.user_id),
                _ => true,
            }
        }
        Some(StreamKind::Technician) => {
            audience.owner == Some(principal.user_id)
                || principal.has(Permission::DispatchManage)
                || principal.has(Permission::AuditRead)
        }
        Some(StreamKind::TenantCounter) => principal.has(Permission::AuditRead),
    }
}

/// THE rule: whether `principal` may see `event` of a stream whose audience
/// is `audience`. Tenant, stream access, then internal visibility.
pub fn can_see(principal: &Principal, event: &RecordedEvent, audience: &StreamAudience) -> bool {
    if event.tenant != principal.tenant {
        return false;
    }
    if event.visibility == Visibility::Internal && !principal.has(Permission::TicketsViewInternal) {
        return false;
    }
    can_see_stream(principal, audience)
}
