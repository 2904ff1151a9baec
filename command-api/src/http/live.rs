//! Mounting the live feed (`GET /ws`): its token check is this server's
//! JWT verifier, and its read receipts go to the write side's receipt desk.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::{Principal, TicketId, Visibility};
use live_feed::{AuthRejected, Authenticate, ReadReceipts, ReceiptError as ReadReceiptError};

use crate::auth::{JwtAuth, Revocations};
use crate::domain::DomainError;
use crate::service::{ReceiptDesk, ServiceError};

/// The live feed's authenticator: the same verifier and revocation list
/// as the REST API.
pub struct FeedAuth {
    /// The token verifier.
    pub jwt: Arc<JwtAuth>,
    /// Revoked sessions.
    pub revocations: Arc<Revocations>,
}

impl Authenticate for FeedAuth {
    fn principal(&self, token: &str) -> Result<(Principal, DateTime<Utc>), AuthRejected> {
        let verified = self
            .revocations
            .verify(&self.jwt, token)
            .map_err(|_| AuthRejected)?;
        let expires = verified.expires_at().map_err(|_| AuthRejected)?;
        Ok((verified.principal, expires))
    }
}

/// Read receipts checked and stored (coalesced) by the receipt desk, in
/// the reader's own stream.
pub struct FeedReceipts(pub Arc<ReceiptDesk>);

#[async_trait]
impl ReadReceipts for FeedReceipts {
    async fn record(
        &self,
        principal: &Principal,
        ticket: TicketId,
        position: u64,
    ) -> Result<Visibility, ReadReceiptError> {
        match self.0.record(principal, ticket, position).await {
            Ok(visibility) => Ok(visibility),
            Err(ServiceError::Domain(DomainError::NotFound)) => {
                Err(ReadReceiptError::Forbidden("ticket not visible".into()))
            }
            Err(ServiceError::Domain(e)) => Err(ReadReceiptError::Invalid(e.to_string())),
            Err(ServiceError::Rejected(m)) => Err(ReadReceiptError::Invalid(m)),
            Err(e) => Err(ReadReceiptError::Unavailable(e.to_string())),
        }
    }
}
