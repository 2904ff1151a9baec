//! Posting comments.

use event_store::{EventPayload, Permission, Principal};

use super::{require, DomainError};
use crate::domain::command::PostComment;
use crate::domain::limits::COMMENT_BYTES_MAX;
use crate::domain::state::Ticket;
use crate::domain::validate::{self, Lines};

/// `CommentPosted`. Who may comment on which ticket follows from
/// visibility (customers see their own tickets, technicians the ones
/// dispatched to them) plus the public or internal comment permission.
pub(super) fn post(
    _ticket: &Ticket,
    principal: &Principal,
    c: &PostComment,
) -> Result<Vec<EventPayload>, DomainError> {
    require(
        principal,
        if c.internal {
            Permission::TicketsCommentInternal
        } else {
            Permission::TicketsComment
        },
    )?;
    if c.body.trim().is_empty() {
        return Err(DomainError::invalid("body", "must not be empty"));
    }
    if c.body.len() > COMMENT_BYTES_MAX {
        return Err(DomainError::invalid(
            "body",
            format!("longer than {COMMENT_BYTES_MAX} bytes"),
        ));
    }
    validate::text("body", &c.body, Lines::Multi)?;
    Ok(vec![EventPayload::CommentPosted {
        comment_id: c.comment_id,
        body: c.body.clone(),
        internal: c.internal,
    }])
}
