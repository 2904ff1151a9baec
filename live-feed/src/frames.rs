//! The JSON frames of `/ws`: what clients send and what the server answers.

use axum::extract::ws::Utf8Bytes;
use event_store::{Principal, RecordedEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::room::RoomId;

/// A frame a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Join a room, optionally replaying everything after a position first.
    Subscribe {
        /// Room name.
        room: String,
        /// Last position the client already has.
        #[serde(default)]
        after: Option<u64>,
    },
    /// Leave a room.
    Unsubscribe {
        /// Room name.
        room: String,
    },
    /// The user started or stopped typing in a room.
    Typing {
        /// Room name.
        room: String,
        /// Whether the user is typing.
        typing: bool,
        /// Whether what is being typed is an internal note: then only those
        /// who may see the room's internal events hear of it. Optional (old
        /// clients never send it), and never relayed to anyone.
        #[serde(default)]
        internal: bool,
    },
    /// The user read a room up to a position.
    Read {
        /// Room name.
        room: String,
        /// Last read position.
        position: u64,
    },
    /// Application-level keep-alive; answered with `pong`.
    Ping,
}

/// Error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The room exists for someone, but not for this principal (own-user rooms only).
    Forbidden,
    /// Unknown or not visible; the same answer for both.
    NotFound,
    /// The frame was malformed or not allowed in this state.
    BadRequest,
    /// Too many frames of this kind.
    RateLimited,
    /// The store could not answer; try again.
    Unavailable,
}

impl ErrorCode {
    /// The snake_case code of the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

fn text(v: &Value) -> Utf8Bytes {
    Utf8Bytes::from(v.to_string())
}

/// The user object of presence, typing and read frames.
pub fn user_json(p: &Principal) -> Value {
    json!({"id": p.user_id, "name": p.name, "role": p.role})
}

/// `{"type":"event",...}` for one event in one room; the event object has
/// a `version` only for a reader shown versions (`Principal::sees_versions`).
pub fn event(room: RoomId, event: &RecordedEvent, with_version: bool) -> Utf8Bytes {
    text(&json!({
        "type": "event",
        "room": room.to_string(),
        "position": event.position,
        "event": event.to_json(with_version),
    }))
}

/// `{"type":"subscribed",...}` with the position live delivery starts after.
pub fn subscribed(room: RoomId, position: u64) -> Utf8Bytes {
    text(&json!({"type": "subscribed", "room": room.to_string(), "position": position}))
}

/// `{"type":"unsubscribed",...}` acknowledging a leave.
pub fn unsubscribed(room: RoomId) -> Utf8Bytes {
    text(&json!({"type": "unsubscribed", "room": room.to_string()}))
}

/// `{"type":"presence",...}` with everyone in a room.
pub fn presence(room: RoomId, users: Vec<Value>) -> Utf8Bytes {
    text(&json!({"type": "presence", "room": room.to_string(), "users": users}))
}

/// `{"type":"typing",...}`.
pub fn typing(room: RoomId, user: &Principal, typing: bool) -> Utf8Bytes {
    text(
        &json!({"type": "typing", "room": room.to_string(), "user": user_json(user), "typing": typing}),
    )
}

/// `{"type":"read",...}`.
pub fn read(room: RoomId, user: &Principal, position: u64) -> Utf8Bytes {
    text(
        &json!({"type": "read", "room": room.to_string(), "user": user_json(user), "position": position}),
    )
}

/// `{"type":"error",...}`; `room` when the error concerns one.
pub fn error(code: ErrorCode, room: Option<&str>, message: &str) -> Utf8Bytes {
    let mut v = json!({"type": "error", "code": code.as_str(), "message": message});
    if let (Some(room), Value::Object(map)) = (room, &mut v) {
        map.insert("room".into(), Value::String(room.to_string()));
    }
    text(&v)
}

/// `{"type":"pong"}`.
pub fn pong() -> Utf8Bytes {
    Utf8Bytes::from_static(r#"{"type":"pong"}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_frames() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"subscribe","room":"tickets","after":7}"#)
                .expect("valid");
        assert_eq!(
            f,
            ClientFrame::Subscribe {
                room: "tickets".into(),
                after: Some(7)
            }
        );
        let f: ClientFrame = serde_json::from_str(r#"{"type":"ping"}"#).expect("valid");
        assert_eq!(f, ClientFrame::Ping);
    }

    #[test]
    fn typing_is_public_unless_marked_internal() {
        let parse = |s: &str| serde_json::from_str::<ClientFrame>(s).expect("valid");
        let typing = |internal| ClientFrame::Typing {
            room: "r".into(),
            typing: true,
            internal,
        };
        assert_eq!(
            parse(r#"{"type":"typing","room":"r","typing":true}"#),
            typing(false)
        );
        assert_eq!(
            parse(r#"{"type":"typing","room":"r","typing":true,"internal":true}"#),
            typing(true)
        );
        // Unknown fields are ignored, as for every client frame.
        assert_eq!(
            parse(r#"{"type":"typing","room":"r","typing":true,"draft":"x"}"#),
            typing(false)
        );
    }

    #[test]
    fn rejects_unknown_types_and_missing_fields() {
        for s in [
            r#"{"type":"shout"}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"read","room":"tickets","position":-1}"#,
            r#"[1,2]"#,
            "nonsense",
        ] {
            assert!(serde_json::from_str::<ClientFrame>(s).is_err(), "{s}");
        }
    }

    #[test]
    fn error_frame_names_room_only_when_given() {
        let v: Value =
            serde_json::from_str(&error(ErrorCode::NotFound, Some("ticket:x"), "m")).expect("json");
        assert_eq!(v["room"], "ticket:x");
        assert_eq!(v["code"], "not_found");
        let v: Value =
            serde_json::from_str(&error(ErrorCode::BadRequest, None, "m")).expect("json");
        assert!(v.get("room").is_none());
    }
}
