//! One ticket's conversation: comments in log order and read receipts.

use std::collections::HashMap;

use event_store::{EventPayload, Gate, RecordedEvent, Role, UserId, Visibility};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::{instant, micros, Micros};

/// A comment as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatLine {
    /// Comment id.
    pub id: Uuid,
    /// Who wrote it.
    pub author: UserId,
    /// The role they wrote it in.
    pub author_role: Role,
    /// Text.
    pub body: String,
    /// The record's visibility, which decides who is shown the line.
    pub visibility: Visibility,
    /// When.
    pub at: Micros,
    /// Global log position.
    pub position: u64,
}

/// A ticket's conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatLog {
    /// Comments, ascending by position.
    pub lines: Vec<ChatLine>,
    /// Last read global position per user.
    pub read: HashMap<UserId, u64>,
}

impl ChatLog {
    /// Folds one event of the ticket's stream.
    pub fn apply(&mut self, event: &RecordedEvent) {
        match &event.payload {
            EventPayload::CommentPosted {
                comment_id, body, ..
            } => self.lines.push(ChatLine {
                id: *comment_id,
                author: event.actor.user_id,
                author_role: event.actor.role,
                body: body.clone(),
                visibility: event.visibility,
                at: micros(&event.recorded_at),
                position: event.position,
            }),
            // A receipt of an older log, in the ticket's own stream.
            EventPayload::ReadReceiptRecorded { user, position } => {
                self.mark_read(*user, *position)
            }
            _ => {}
        }
    }

    /// Notes that `user` read up to `position`: a legacy receipt in the
    /// ticket's stream and a `ConversationRead` of the reader's stream
    /// count the same. Receipts only move forward: a late, older receipt
    /// from a second device must not resurrect read messages as unread.
    pub fn mark_read(&mut self, user: UserId, position: u64) {
        let last = self.read.entry(user).or_insert(0);
        *last = (*last).max(position);
    }

    /// Index of the first line after `position`.
    fn after(&self, position: u64) -> usize {
        self.lines.partition_point(|l| l.position <= position)
    }

    /// One page of lines after `after` that `gate` admits.
    pub fn page(&self, gate: &Gate, user: UserId, after: u64, limit: usize) -> ChatPage {
        let mut visible = self.lines[self.after(after)..]
            .iter()
            .filter(|l| gate.admits(l.visibility));
        let items: Vec<ChatItem> = visible.by_ref().take(limit).map(ChatItem::of).collect();
        let next = match (visible.next(), items.last()) {
            (Some(_), Some(last)) => Some(last.position),
            _ => None,
        };
        let last_read = self.read.get(&user).copied();
        ChatPage {
            items,
            next,
            last_read,
            unread: self.unread(gate, user),
        }
    }

    /// Lines `gate` admits that `user` has not read and did not write.
    pub fn unread(&self, gate: &Gate, user: UserId) -> u64 {
        let last = self.read.get(&user).copied().unwrap_or(0);
        self.lines[self.after(last)..]
            .iter()
            .filter(|l| l.author != user && gate.admits(l.visibility))
            .count() as u64
    }
}

/// A comment as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatItem {
    /// Comment id.
    pub id: Uuid,
    /// Author's user id.
    pub author: UserId,
    /// The role the author wrote in (tells staff from customers).
    pub author_role: Role,
    /// Text.
    pub body: String,
    /// Staff-only note (only ever true for principals allowed to see it).
    pub internal: bool,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Global log position (pass as `after` to page on).
    pub position: u64,
}

impl ChatItem {
    fn of(l: &ChatLine) -> ChatItem {
        ChatItem {
            id: l.id,
            author: l.author,
            author_role: l.author_role,
            body: l.body.clone(),
            internal: l.visibility == Visibility::Internal,
            at: instant(l.at),
            position: l.position,
        }
    }
}

/// `GET /api/v1/tickets/{id}/chat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatPage {
    /// Comments in log order.
    pub items: Vec<ChatItem>,
    /// `after` for the next page; `null` when this is the last one.
    pub next: Option<u64>,
    /// The asking user's last read position, if they ever read.
    pub last_read: Option<u64>,
    /// Comments visible to the asking user, after their last read
    /// position, written by someone else.
    pub unread: u64,
}
