//! The one visibility rule: which principal may see which event.
//!
//! Every read path that hands events to a principal (REST, chat, audit,
//! WebSocket, replay) calls [`can_see`] or [`can_see_stream`], or, for
//! items kept without their record (chat lines, unread counts),
//! [`can_see_visibility`] or a [`Gate`]. The role rules beside it (who counts
//! as staff, whom the user directory lists, which comment is a ticket's
//! first response) live here too. There is deliberately no second copy of
//! this logic anywhere else.

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

    /// Whether the role works for the tenant rather than reporting to it
    /// (every role but [`Role::Customer`]).
    pub fn is_staff(self) -> bool {
        self != Role::Customer
    }

    /// Whether records of `visibility` are for this role's eyes (the
    /// stream aside): internal ones need `tickets.view.internal`.
    pub fn sees(self, visibility: Visibility) -> bool {
        match visibility {
            Visibility::Public => true,
            Visibility::Internal => self
                .permissions()
                .contains(&Permission::TicketsViewInternal),
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

    /// Whether the principal is shown versions (in answers, frames, `ETag`s
    /// and conflict details) and may send `If-Match`. A version counts every
    /// event of a stream, so one who may not see internal events is shown
    /// none: a step in it would betray a hidden note (issue 14). Such a
    /// principal's `If-Match` is refused as malformed.
    pub fn sees_versions(&self) -> bool {
        self.role.sees(Visibility::Internal)
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
    /// The user who owns a technician or reader stream.
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
            EventPayload::ConversationRead { reader, .. } => self.owner = Some(*reader),
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
        // What someone read, and when, is theirs: the reader and those who
        // read the full history. Agents see receipts only as the live
        // `read` frames of rooms they are in, and as unread counts of their own.
        Some(StreamKind::Reader) => {
            audience.owner == Some(principal.user_id) || principal.has(Permission::AuditRead)
        }
        // Who administers whom is for auditors and admins of the tenant
        // only; not even the user themselves reads it here.
        Some(StreamKind::User) => principal.has(Permission::AuditRead),
    }
}

/// Whether `principal` may see a record of `visibility` in a stream whose
/// audience is `audience`: stream access, then internal visibility. This is
/// [`can_see`] for readers that keep a record's visibility but not the record.
pub fn can_see_visibility(
    principal: &Principal,
    visibility: Visibility,
    audience: &StreamAudience,
) -> bool {
    principal.role.sees(visibility) && can_see_stream(principal, audience)
}

/// THE rule: whether `principal` may see `event` of a stream whose audience
/// is `audience`. Tenant, stream access, then internal visibility.
pub fn can_see(principal: &Principal, event: &RecordedEvent, audience: &StreamAudience) -> bool {
    event.tenant == principal.tenant && can_see_visibility(principal, event.visibility, audience)
}

/// What one principal may see of one stream, decided once by the rule for
/// the many items of it a reader filters (chat lines, unread counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The stream itself (for a ticket: may open it).
    pub stream: bool,
    /// Its public records.
    pub public: bool,
    /// Its internal records.
    pub internal: bool,
}

impl Gate {
    /// Asks the rule about `audience`'s stream for `principal`.
    pub fn of(principal: &Principal, audience: &StreamAudience) -> Gate {
        Gate {
            stream: can_see_stream(principal, audience),
            public: can_see_visibility(principal, Visibility::Public, audience),
            internal: can_see_visibility(principal, Visibility::Internal, audience),
        }
    }

    /// Whether the stream's versions, and the instant of its last event of
    /// any visibility, may be shown (see [`Principal::sees_versions`]).
    pub fn shows_everything(&self) -> bool {
        self.internal
    }

    /// Whether a record of `visibility` of this stream may be shown.
    pub fn admits(&self, visibility: Visibility) -> bool {
        match visibility {
            Visibility::Public => self.public,
            Visibility::Internal => self.internal,
        }
    }
}

/// Whether a viewer in role `viewer` may find a user of role `listed` in the
/// tenant's directory: customers see staff only (never other customers),
/// staff see everyone.
pub fn can_list_user(viewer: Role, listed: Role) -> bool {
    viewer.is_staff() || listed.is_staff()
}

/// Whether a comment written in role `author` with `visibility` answers the
/// reporter (a ticket's first response): staff writing where the reporter,
/// a customer, can read it.
pub fn is_staff_response(author: Role, visibility: Visibility) -> bool {
    author.is_staff() && Role::Customer.sees(visibility)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const REPORTER: Uuid = Uuid::from_u128(1);
    const TECH: Uuid = Uuid::from_u128(2);
    const OTHER: Uuid = Uuid::from_u128(3);

    fn principal(role: Role, user_id: Uuid) -> Principal {
        Principal {
            user_id,
            tenant: "acme".into(),
            role,
            name: String::new(),
        }
    }

    fn ticket() -> StreamAudience {
        StreamAudience {
            kind: Some(StreamKind::Ticket),
            tenant: "acme".into(),
            reporter: Some(REPORTER),
            technicians: vec![TECH],
            owner: None,
        }
    }

    /// Each role, as the ticket's reporter or dispatched technician where
    /// the role has one, else as a bystander: (role, user, sees public,
    /// sees internal).
    const TABLE: [(Role, Uuid, bool, bool); 8] = [
        (Role::Customer, REPORTER, true, false),
        (Role::Customer, OTHER, false, false),
        (Role::Agent, OTHER, true, true),
        (Role::Technician, TECH, true, true),
        (Role::Technician, OTHER, false, false),
        (Role::Auditor, OTHER, true, true),
        (Role::Analyst, OTHER, false, false),
        (Role::Admin, OTHER, true, true),
    ];

    #[test]
    fn roles_by_visibility_on_a_ticket() {
        let audience = ticket();
        for (role, user, public, internal) in TABLE {
            let p = principal(role, user);
            let seen = (
                can_see_visibility(&p, Visibility::Public, &audience),
                can_see_visibility(&p, Visibility::Internal, &audience),
            );
            assert_eq!(seen, (public, internal), "{role:?} {user}");
            let gate = Gate::of(&p, &audience);
            assert_eq!(gate.stream, public, "{role:?} {user}: stream");
            assert_eq!(
                (
                    gate.admits(Visibility::Public),
                    gate.admits(Visibility::Internal)
                ),
                seen,
                "{role:?} {user}: gate"
            );
        }
    }

    #[test]
    fn role_sees_internal_exactly_with_the_permission() {
        for role in Role::ALL {
            assert!(role.sees(Visibility::Public), "{role:?}");
            assert_eq!(
                role.sees(Visibility::Internal),
                role.permissions()
                    .contains(&Permission::TicketsViewInternal),
                "{role:?}"
            );
        }
    }

    #[test]
    fn another_tenant_or_an_unknown_stream_sees_nothing() {
        let mut elsewhere = principal(Role::Admin, OTHER);
        elsewhere.tenant = "globex".into();
        let unknown = StreamAudience {
            tenant: "acme".into(),
            ..StreamAudience::default()
        };
        for visibility in [Visibility::Public, Visibility::Internal] {
            assert!(!can_see_visibility(&elsewhere, visibility, &ticket()));
            let admin = principal(Role::Admin, OTHER);
            assert!(!can_see_visibility(&admin, visibility, &unknown));
            assert!(!Gate::of(&admin, &unknown).admits(visibility));
        }
    }

    #[test]
    fn a_reader_stream_is_its_owner_and_the_auditors_alone() {
        let reader = StreamAudience {
            kind: Some(StreamKind::Reader),
            tenant: "acme".into(),
            owner: Some(REPORTER),
            ..StreamAudience::default()
        };
        for role in Role::ALL {
            let someone_else = principal(role, OTHER);
            assert_eq!(
                can_see_stream(&someone_else, &reader),
                role.permissions().contains(&Permission::AuditRead),
                "{role:?}"
            );
        }
        assert!(can_see_stream(
            &principal(Role::Customer, REPORTER),
            &reader
        ));
        let mut elsewhere = principal(Role::Customer, REPORTER);
        elsewhere.tenant = "globex".into();
        assert!(!can_see_stream(&elsewhere, &reader));
    }

    #[test]
    fn a_user_stream_is_for_audit_readers_of_its_tenant_only() {
        let user_stream = StreamAudience {
            kind: Some(StreamKind::User),
            tenant: "acme".into(),
            ..StreamAudience::default()
        };
        for role in Role::ALL {
            // Even the user the stream is about sees it only with audit.read.
            let p = principal(role, REPORTER);
            assert_eq!(
                can_see_stream(&p, &user_stream),
                p.has(Permission::AuditRead),
                "{role:?}"
            );
        }
        let mut elsewhere = principal(Role::Admin, OTHER);
        elsewhere.tenant = "globex".into();
        assert!(!can_see_stream(&elsewhere, &user_stream));
    }

    #[test]
    fn customers_list_staff_only() {
        for viewer in Role::ALL {
            for listed in Role::ALL {
                let expected = viewer != Role::Customer || listed != Role::Customer;
                assert_eq!(
                    can_list_user(viewer, listed),
                    expected,
                    "{viewer:?} {listed:?}"
                );
            }
        }
    }

    #[test]
    fn a_staff_response_is_a_public_comment_by_anyone_but_a_customer() {
        for role in Role::ALL {
            assert_eq!(
                is_staff_response(role, Visibility::Public),
                role != Role::Customer,
                "{role:?}"
            );
            assert!(!is_staff_response(role, Visibility::Internal), "{role:?}");
        }
    }
}
