//! Sessions that end: revoked token ids (logout) and per-user "not before"
//! instants (password change: every token issued earlier is refused, which
//! also covers an outside issuer's tokens without a `jti`). Kept beside the
//! users in their side tree, so revocations survive a restart; a revoked
//! token id is forgotten once its token would have expired anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use event_store::KvTree;
use uuid::Uuid;

use super::error::AuthError;
use super::jwt::{JwtAuth, VerifiedToken, CLOCK_LEEWAY_SECS};

/// Key prefix of a revoked token id (value: its `exp`, big-endian seconds).
const TOKEN_PREFIX: &str = "revoked-token/";
/// Key prefix of a user's "not before" (value: big-endian milliseconds).
const NOT_BEFORE_PREFIX: &str = "not-before/";
/// Revoked, unexpired token ids remembered. Past it (after dropping the
/// expired ones), a logout revokes all of that user's tokens instead, which
/// is stricter and needs no new token id entry.
pub const REVOKED_TOKENS_MAX: usize = 100_000;
/// Users with a "not before" remembered; past it the oldest instant is
/// forgotten (by then normally older than any token still in use).
pub const NOT_BEFORE_USERS_MAX: usize = 1_000_000;
/// Most entries read back from the tree on open (both kinds together).
const LOADED_ENTRIES_MAX: usize = REVOKED_TOKENS_MAX + NOT_BEFORE_USERS_MAX;

#[derive(Default)]
struct Revoked {
    /// Token id → its `exp` (seconds).
    tokens: HashMap<String, u64>,
    /// User → milliseconds since the epoch before which their tokens are refused.
    not_before: HashMap<Uuid, u64>,
}

/// The revocation list, in memory and in its side tree.
pub struct Revocations {
    tree: Arc<dyn KvTree>,
    revoked: Mutex<Revoked>,
}

fn token_key(jti: &str) -> Vec<u8> {
    format!("{TOKEN_PREFIX}{jti}").into_bytes()
}

fn not_before_key(user: Uuid) -> Vec<u8> {
    format!("{NOT_BEFORE_PREFIX}{user}").into_bytes()
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationScope {
    /// Only the presented token.
    Token,
    /// Every token of the user issued until now.
    AllOfUser,
}

impl Revocations {
    /// The revocations stored in `tree`, minus token ids already expired at
    /// `now_secs` (those are deleted from the tree too).
    pub fn open(tree: Arc<dyn KvTree>, now_secs: u64) -> Result<Self, AuthError> {
        let mut revoked = Revoked::default();
        let mut expired = Vec::new();
        for (key, value) in tree.scan_prefix(TOKEN_PREFIX.as_bytes(), LOADED_ENTRIES_MAX)? {
            let jti = String::from_utf8_lossy(&key[TOKEN_PREFIX.len()..]).into_owned();
            match read_u64(&value) {
                Some(exp) if !expired_at(exp, now_secs) => {
                    revoked.tokens.insert(jti, exp);
                }
                _ => expired.push((key, None)),
            }
        }
        for (key, value) in tree.scan_prefix(NOT_BEFORE_PREFIX.as_bytes(), LOADED_ENTRIES_MAX)? {
            let user = std::str::from_utf8(&key[NOT_BEFORE_PREFIX.len()..])
                .ok()
                .and_then(|s| Uuid::parse_str(s).ok());
            if let (Some(user), Some(ms)) = (user, read_u64(&value)) {
                revoked.not_before.insert(user, ms);
            }
        }
        if !expired.is_empty() {
            tree.apply(expired)?;
        }
        Ok(Revocations {
            tree,
            revoked: Mutex::new(revoked),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Revoked> {
        self.revoked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `token` verified by `jwt` and not revoked: the one check of a
    /// presented token, for REST and `/ws` alike.
    pub fn verify(&self, jwt: &JwtAuth, token: &str) -> Result<VerifiedToken, AuthError> {
        let verified = jwt.verify_token(token)?;
        if self.is_revoked(&verified) {
            return Err(AuthError::InvalidToken("revoked".into()));
        }
        Ok(verified)
    }

    /// Whether `token` was revoked: its id, or issued before its user's
    /// "not before" (a token without `iat` then counts as older).
    pub fn is_revoked(&self, token: &VerifiedToken) -> bool {
        let revoked = self.lock();
        if let Some(jti) = &token.jti {
            if revoked.tokens.contains_key(jti) {
                return true;
            }
        }
        match revoked.not_before.get(&token.principal.user_id) {
            Some(&not_before) => token.issued_at_ms.is_none_or(|at| at < not_before),
            None => false,
        }
    }

    /// Revokes the presented token (logout). A token without `jti`, or a
    /// full list, revokes all of the user's tokens issued until `now_ms`.
    pub fn revoke_token(
        &self,
        token: &VerifiedToken,
        now_ms: u64,
    ) -> Result<RevocationScope, AuthError> {
        let now_secs = now_ms / 1_000;
        let Some(jti) = &token.jti else {
            self.revoke_user(token.principal.user_id, now_ms)?;
            return Ok(RevocationScope::AllOfUser);
        };
        let mut revoked = self.lock();
        if revoked.tokens.len() >= REVOKED_TOKENS_MAX {
            let gone: Vec<String> = revoked
                .tokens
                .iter()
                .filter(|(_, &exp)| expired_at(exp, now_secs))
                .map(|(jti, _)| jti.clone())
                .collect();
            self.tree
                .apply(gone.iter().map(|j| (token_key(j), None)).collect())?;
            for j in &gone {
                revoked.tokens.remove(j);
            }
        }
        if revoked.tokens.len() >= REVOKED_TOKENS_MAX {
            drop(revoked);
            self.revoke_user(token.principal.user_id, now_ms)?;
            return Ok(RevocationScope::AllOfUser);
        }
        self.tree.apply(vec![(
            token_key(jti),
            Some(token.exp.to_be_bytes().to_vec()),
        )])?;
        self.tree.flush()?;
        revoked.tokens.insert(jti.clone(), token.exp);
        Ok(RevocationScope::Token)
    }

    /// Refuses every token of `user` issued before `at_ms` (password
    /// change, revoke all). A later instant never moves back.
    pub fn revoke_user(&self, user: Uuid, at_ms: u64) -> Result<(), AuthError> {
        let mut revoked = self.lock();
        let at_ms = revoked
            .not_before
            .get(&user)
            .map_or(at_ms, |&t| t.max(at_ms));
        let mut writes = vec![(not_before_key(user), Some(at_ms.to_be_bytes().to_vec()))];
        let mut evicted = None;
        if revoked.not_before.len() >= NOT_BEFORE_USERS_MAX
            && !revoked.not_before.contains_key(&user)
        {
            evicted = revoked
                .not_before
                .iter()
                .min_by_key(|(_, &t)| t)
                .map(|(&u, _)| u);
            if let Some(old) = evicted {
                writes.push((not_before_key(old), None));
            }
        }
        self.tree.apply(writes)?;
        self.tree.flush()?;
        if let Some(old) = evicted {
            revoked.not_before.remove(&old);
        }
        revoked.not_before.insert(user, at_ms);
        Ok(())
    }

    /// Revoked token ids remembered now.
    pub fn tokens_tracked(&self) -> usize {
        self.lock().tokens.len()
    }
}

/// Whether a token of `exp` is refused anyway at `now_secs` (leeway included).
fn expired_at(exp: u64, now_secs: u64) -> bool {
    exp.saturating_add(CLOCK_LEEWAY_SECS) < now_secs
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_store::testing::MemoryTree;
    use event_store::{Principal, Role};

    const NOW_MS: u64 = 1_700_000_000_000;

    fn token(user: Uuid, jti: Option<&str>, issued_at_ms: Option<u64>) -> VerifiedToken {
        VerifiedToken {
            principal: Principal {
                user_id: user,
                tenant: "demo".into(),
                role: Role::Agent,
                name: String::new(),
            },
            exp: NOW_MS / 1_000 + 3_600,
            jti: jti.map(str::to_string),
            issued_at_ms,
        }
    }

    #[test]
    fn logout_revokes_one_token_and_survives_a_reopen() {
        let tree: Arc<dyn KvTree> = Arc::new(MemoryTree::default());
        let list = Revocations::open(tree.clone(), NOW_MS / 1_000).expect("open");
        let user = Uuid::now_v7();
        let (a, b) = (
            token(user, Some("a"), Some(NOW_MS)),
            token(user, Some("b"), Some(NOW_MS)),
        );
        assert_eq!(
            list.revoke_token(&a, NOW_MS).expect("revoke"),
            RevocationScope::Token
        );
        assert!(list.is_revoked(&a));
        assert!(!list.is_revoked(&b), "the user's other session stays");
        let reopened = Revocations::open(tree.clone(), NOW_MS / 1_000).expect("reopen");
        assert!(reopened.is_revoked(&a));
        // Once the token would have expired anyway, its id is forgotten.
        let later = Revocations::open(tree, a.exp + CLOCK_LEEWAY_SECS + 1).expect("later");
        assert_eq!(later.tokens_tracked(), 0);
    }

    #[test]
    fn not_before_refuses_older_tokens_only() {
        let tree: Arc<dyn KvTree> = Arc::new(MemoryTree::default());
        let list = Revocations::open(tree.clone(), NOW_MS / 1_000).expect("open");
        let user = Uuid::now_v7();
        list.revoke_user(user, NOW_MS).expect("revoke");
        assert!(list.is_revoked(&token(user, Some("x"), Some(NOW_MS - 1))));
        assert!(!list.is_revoked(&token(user, Some("y"), Some(NOW_MS))));
        assert!(list.is_revoked(&token(user, None, None)), "no iat: older");
        assert!(!list.is_revoked(&token(Uuid::now_v7(), None, None)));
        // An earlier instant never moves the line back.
        list.revoke_user(user, NOW_MS - 10_000).expect("again");
        assert!(list.is_revoked(&token(user, Some("x"), Some(NOW_MS - 1))));
        let reopened = Revocations::open(tree, NOW_MS / 1_000).expect("reopen");
        assert!(reopened.is_revoked(&token(user, None, Some(NOW_MS - 1))));
    }

    #[test]
    fn a_token_without_jti_logs_out_every_session_of_its_user() {
        let list =
            Revocations::open(Arc::new(MemoryTree::default()), NOW_MS / 1_000).expect("open");
        let user = Uuid::now_v7();
        let outside = token(user, None, Some(NOW_MS - 5_000));
        assert_eq!(
            list.revoke_token(&outside, NOW_MS).expect("revoke"),
            RevocationScope::AllOfUser
        );
        assert!(list.is_revoked(&outside));
        assert_eq!(list.tokens_tracked(), 0);
    }
}
