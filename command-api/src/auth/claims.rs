//! The claims of a Ticketlog token, and their conversion to a principal.

use event_store::{Principal, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::AuthError;

/// The issuer and audience every token must name.
pub const TOKEN_ISSUER: &str = "ticketlog";
/// The audience every token must name.
pub const TOKEN_AUDIENCE: &str = "ticketlog";
/// Longest tenant name accepted in a token or a user record.
pub const TENANT_CHARS_MAX: usize = 64;

/// Claims as issued by the built-in directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (UUID).
    pub sub: String,
    /// The tenant.
    pub tenant: String,
    /// The role's snake_case name.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Always `ticketlog`.
    pub iss: String,
    /// Always `ticketlog`.
    pub aud: String,
    /// Display name (optional; not used for decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Token id (a UUID v7 for the built-in issuer): what logout revokes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// The claims read from a verified token: `iss`, `aud` and `exp` are checked
/// by the JWT library, so only what builds the principal is kept here.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VerifiedClaims {
    pub sub: String,
    pub tenant: String,
    pub role: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: Option<u64>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl VerifiedClaims {
    /// The principal these claims describe, or why they do not describe one.
    pub fn into_principal(self) -> Result<Principal, AuthError> {
        let user_id = Uuid::parse_str(&self.sub)
            .map_err(|_| AuthError::InvalidToken("sub is not a uuid".into()))?;
        let role = Role::parse(&self.role)
            .ok_or_else(|| AuthError::InvalidToken(format!("unknown role {:?}", self.role)))?;
        validate_tenant(&self.tenant).map_err(|_| AuthError::InvalidToken("bad tenant".into()))?;
        Ok(Principal {
            user_id,
            tenant: self.tenant,
            role,
            name: self.name.unwrap_or_default(),
        })
    }
}

/// Tenants are short slugs: lowercase ASCII letters, digits, `-` and `_`.
pub fn validate_tenant(tenant: &str) -> Result<(), AuthError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= TENANT_CHARS_MAX
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidField {
            field: "tenant",
            reason: format!("1..{TENANT_CHARS_MAX} of a-z, 0-9, '-', '_'"),
        })
    }
}
