//! Verifying and issuing JWTs. Exactly one algorithm is accepted, fixed by
//! configuration: HS256 with a shared secret (the default, and the only mode
//! in which this server also issues tokens), or EdDSA / RS256 with the public
//! key of an outside identity provider.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use event_store::Principal;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::claims::{Claims, VerifiedClaims, TOKEN_AUDIENCE, TOKEN_ISSUER};
use super::error::AuthError;

/// Longest token accepted; anything bigger is rejected before parsing.
pub const TOKEN_BYTES_MAX: usize = 8 * 1024;
/// Shortest HS256 secret accepted (RFC 7518 asks for at least the hash size).
pub const HS256_SECRET_BYTES_MIN: usize = 32;
/// Clock skew tolerated on `exp` and `nbf`.
pub const CLOCK_LEEWAY_SECS: u64 = 30;
/// Verified tokens remembered (exact bytes → principal and expiry), so a
/// client reusing its token skips the signature check; cleared when full.
pub const VERIFIED_TOKENS_CACHED_MAX: usize = 10_000;
/// Default lifetime of an issued token.
pub const TOKEN_TTL_SECS_DEFAULT: u64 = 8 * 3600;

/// The algorithms a deployment may choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// Ed25519 signatures, verified with a public key.
    EdDsa,
    /// RSA PKCS#1 v1.5 SHA-256, verified with a public key.
    Rs256,
}

impl FromStr for JwtAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Ok(JwtAlgorithm::Hs256),
            "EDDSA" => Ok(JwtAlgorithm::EdDsa),
            "RS256" => Ok(JwtAlgorithm::Rs256),
            other => Err(format!(
                "unsupported JWT algorithm {other:?} (HS256, EdDSA, RS256)"
            )),
        }
    }
}

impl JwtAlgorithm {
    fn library(self) -> Algorithm {
        match self {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
        }
    }
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A token that passed every check: its principal and what revocation
/// checks need (its id and when it was issued).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// Who it names.
    pub principal: Principal,
    /// `exp`, seconds since the epoch.
    pub exp: u64,
    /// `jti`, if the issuer gave one (the built-in issuer always does).
    pub jti: Option<String>,
    /// When it was issued, in milliseconds since the epoch: the UUID v7
    /// `jti`'s time when it agrees with `iat` (the built-in issuer's
    /// tokens, so a password change and a login in the same second are
    /// told apart), else `iat` itself; `None` without `iat`.
    pub issued_at_ms: Option<u64>,
}

impl VerifiedToken {
    /// When it expires.
    pub fn expires_at(&self) -> Result<DateTime<Utc>, AuthError> {
        DateTime::<Utc>::from_timestamp(i64::try_from(self.exp).unwrap_or(i64::MAX), 0)
            .ok_or_else(|| AuthError::InvalidToken("exp out of range".into()))
    }
}

/// Milliseconds per second, for `iat` (seconds) against instants in ms.
const MILLIS_PER_SEC: u64 = 1_000;

fn issued_at_ms(iat: Option<u64>, jti: Option<&str>) -> Option<u64> {
    let iat_ms = iat?.saturating_mul(MILLIS_PER_SEC);
    let from_jti = jti
        .and_then(|j| uuid::Uuid::parse_str(j).ok())
        .and_then(|id| id.get_timestamp())
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            secs.saturating_mul(MILLIS_PER_SEC) + u64::from(nanos / 1_000_000)
        });
    match from_jti {
        Some(ms) if ms / MILLIS_PER_SEC == iat_ms / MILLIS_PER_SEC => Some(ms),
        _ => Some(iat_ms),
    }
}

/// Verifies tokens and, in HS256 mode, issues them.
pub struct JwtAuth {
    algorithm: JwtAlgorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    token_ttl_secs: u64,
    verified: Mutex<HashMap<Box<str>, VerifiedToken>>,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("JwtAuth")
            .field("algorithm", &self.algorithm)
            .field("issues_tokens", &self.encoding.is_some())
            .field("token_ttl_secs", &self.token_ttl_secs)
            .finish()
    }
}

impl JwtAuth {
    /// HS256 with a shared secret: verifies and issues.
    pub fn hs256(secret: &[u8], token_ttl_secs: u64) -> Result<Self, AuthError> {
        if secret.len() < HS256_SECRET_BYTES_MIN {
            return Err(AuthError::Key(format!(
                "HS256 secret must be at least {HS256_SECRET_BYTES_MIN} bytes"
            )));
        }
        Ok(JwtAuth {
            algorithm: JwtAlgorithm::Hs256,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            validation: validation(JwtAlgorithm::Hs256),
            token_ttl_secs,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// EdDSA or RS256 with an outside issuer's public key (PEM): verifies only.
    pub fn public_key(
        algorithm: JwtAlgorithm,
        pem: &[u8],
        token_ttl_secs: u64,
    ) -> Result<Self, AuthError> {
        let decoding = match algorithm {
            JwtAlgorithm::EdDsa => DecodingKey::from_ed_pem(pem),
            JwtAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
            JwtAlgorithm::Hs256 => {
                return Err(AuthError::Key(
                    "HS256 takes a secret, not a public key".into(),
                ))
            }
        }
        .map_err(|e| AuthError::Key(format!("cannot read public key: {e}")))?;
        Ok(JwtAuth {
            algorithm,
            decoding,
            encoding: None,
            validation: validation(algorithm),
            token_ttl_secs,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The one accepted algorithm.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// Whether this server can issue tokens (HS256 mode).
    pub fn issues_tokens(&self) -> bool {
        self.encoding.is_some()
    }

    /// The lifetime of issued tokens.
    pub fn token_ttl_secs(&self) -> u64 {
        self.token_ttl_secs
    }

    /// The principal a token names, if the token is valid in every respect.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_with_expiry(token).map(|(p, _)| p)
    }

    /// [`Self::verify`], also returning when the token expires (the live
    /// feed closes a socket whose token ran out).
    pub fn verify_with_expiry(&self, token: &str) -> Result<(Principal, DateTime<Utc>), AuthError> {
        let verified = self.verify_token(token)?;
        let expires = verified.expires_at()?;
        Ok((verified.principal, expires))
    }

    /// Everything a valid token says (signature, algorithm, claims and
    /// expiry checked); revocation is the caller's next question.
    pub fn verify_token(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(AuthError::InvalidToken(format!(
                "token over {TOKEN_BYTES_MAX} bytes"
            )));
        }
        let now = jsonwebtoken::get_current_timestamp();
        let cached = self.cache().get(token).cloned();
        match cached {
            // Same bytes as a token that passed every check; only time moves.
            Some(v) if v.exp.saturating_add(CLOCK_LEEWAY_SECS) >= now => Ok(v),
            Some(_) => Err(AuthError::InvalidToken("expired".into())),
            None => {
                let data = decode::<VerifiedClaims>(token, &self.decoding, &self.validation)
                    .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
                let exp = data.claims.exp;
                let issued_at_ms = issued_at_ms(data.claims.iat, data.claims.jti.as_deref());
                let jti = data.claims.jti.clone();
                let principal = data.claims.into_principal()?;
                let verified = VerifiedToken {
                    principal,
                    exp,
                    jti,
                    issued_at_ms,
                };
                verified.expires_at()?;
                let mut cache = self.cache();
                if cache.len() >= VERIFIED_TOKENS_CACHED_MAX {
                    cache.clear();
                }
                cache.insert(token.into(), verified.clone());
                Ok(verified)
            }
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, VerifiedToken>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signs a token for `principal`, valid from `now` for the configured TTL.
    pub fn issue(
        &self,
        principal: &Principal,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, AuthError> {
        let key = self.encoding.as_ref().ok_or(AuthError::IssuingDisabled)?;
        let iat = u64::try_from(now.timestamp()).unwrap_or(0);
        let exp = iat.saturating_add(self.token_ttl_secs);
        let claims = Claims {
            sub: principal.user_id.to_string(),
            tenant: principal.tenant.clone(),
            role: principal.role.as_str().to_string(),
            exp,
            iat,
            iss: TOKEN_ISSUER.into(),
            aud: TOKEN_AUDIENCE.into(),
            name: (!principal.name.is_empty()).then(|| principal.name.clone()),
            // The jti's time is `now` to the millisecond (see `issued_at_ms`).
            jti: Some(
                uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                    uuid::NoContext,
                    iat,
                    now.timestamp_subsec_nanos(),
                ))
                .to_string(),
            ),
        };
        let token = encode(&Header::new(self.algorithm.library()), &claims, key)
            .map_err(|e| AuthError::Key(e.to_string()))?;
        let expires_at = DateTime::<Utc>::from_timestamp(i64::try_from(exp).unwrap_or(i64::MAX), 0)
            .unwrap_or(now);
        Ok(IssuedToken { token, expires_at })
    }
}

fn validation(algorithm: JwtAlgorithm) -> Validation {
    let mut v = Validation::new(algorithm.library());
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    v.set_audience(&[TOKEN_AUDIENCE]);
    v.set_issuer(&[TOKEN_ISSUER]);
    v.leeway = CLOCK_LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use event_store::Role;
    use serde_json::json;
    use uuid::Uuid;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-only";
    // A throwaway Ed25519 pair generated for these tests only.
    const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDp8g7D6rpWIk7lg36yS1ohvWIvjxSGbt1kq9tyu8Ow+\n-----END PRIVATE KEY-----\n";
    const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA5yVTEa96ntoZxG4sSrQuy3xBYBDl74/u0I+kmTbjlkc=\n-----END PUBLIC KEY-----\n";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims() -> serde_json::Value {
        json!({"sub": Uuid::now_v7().to_string(), "tenant": "demo", "role": "agent",
               "exp": now() + 600, "iat": now(), "iss": "ticketlog", "aud": "ticketlog"})
    }

    fn sign(value: &serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            value,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("sign")
    }

    fn with(mut value: serde_json::Value, key: &str, v: serde_json::Value) -> serde_json::Value {
        value[key] = v;
        value
    }

    fn without(mut value: serde_json::Value, key: &str) -> serde_json::Value {
        value.as_object_mut().expect("object").remove(key);
        value
    }

    #[test]
    fn issued_tokens_verify_to_the_same_principal() {
        let auth = JwtAuth::hs256(SECRET, 3600).expect("auth");
        let p = Principal {
            user_id: Uuid::now_v7(),
            tenant: "demo".into(),
            role: Role::Technician,
            name: "dave".into(),
        };
        let issued = auth.issue(&p, Utc::now()).expect("issue");
        assert_eq!(auth.verify(&issued.token).expect("verify"), p);
        assert!(issued.expires_at > Utc::now());
    }

    #[test]
    fn valid_hand_made_token_is_a_principal_by_claims_alone() {
        let auth = JwtAuth::hs256(SECRET, 3600).expect("auth");
        let p = auth.verify(&sign(&claims())).expect("valid");
        assert_eq!(p.role, Role::Agent);
        assert_eq!(p.name, "");
    }

    #[test]
    fn rejects_every_bad_token() {
        let auth = JwtAuth::hs256(SECRET, 3600).expect("auth");
        let good = sign(&claims());
        let parts: Vec<&str> = good.split('.').collect();
        let other_key = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"another-secret-another-secret-another"),
        )
        .expect("sign");
        let tampered = {
            let payload = base64url(
                serde_json::to_string(&with(claims(), "role", json!("admin")))
                    .expect("json")
                    .as_bytes(),
            );
            format!("{}.{}.{}", parts[0], payload, parts[2])
        };
        let alg_none = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT"}"#),
            base64url(serde_json::to_string(&claims()).expect("json").as_bytes())
        );
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims(),
            &EncodingKey::from_secret(SECRET),
        )
        .expect("sign");
        let cases: Vec<(&str, String)> = vec![
            ("alg none", alg_none),
            ("wrong alg", hs512),
            ("wrong key", other_key),
            ("tampered payload", tampered),
            ("expired", sign(&with(claims(), "exp", json!(now() - 3600)))),
            ("missing exp", sign(&without(claims(), "exp"))),
            ("missing sub", sign(&without(claims(), "sub"))),
            ("missing aud", sign(&without(claims(), "aud"))),
            ("missing iss", sign(&without(claims(), "iss"))),
            ("missing tenant", sign(&without(claims(), "tenant"))),
            ("missing role", sign(&without(claims(), "role"))),
            ("wrong aud", sign(&with(claims(), "aud", json!("other")))),
            ("wrong iss", sign(&with(claims(), "iss", json!("evil")))),
            (
                "string exp",
                sign(&with(claims(), "exp", json!((now() + 600).to_string()))),
            ),
            (
                "unknown role",
                sign(&with(claims(), "role", json!("superuser"))),
            ),
            ("non-uuid sub", sign(&with(claims(), "sub", json!("alice")))),
            (
                "not yet valid",
                sign(&with(claims(), "nbf", json!(now() + 3600))),
            ),
            ("two segments", format!("{}.{}", parts[0], parts[1])),
            ("four segments", format!("{good}.{}", parts[2])),
            (
                "bad base64",
                format!("{}.{}!!.{}", parts[0], parts[1], parts[2]),
            ),
            (
                "oversized",
                sign(&with(claims(), "pad", json!("x".repeat(16 * 1024)))),
            ),
            ("empty", String::new()),
            ("garbage", "not-a-jwt".into()),
        ];
        for (name, token) in cases {
            assert!(
                matches!(auth.verify(&token), Err(AuthError::InvalidToken(_))),
                "{name} must be rejected"
            );
        }
    }

    #[test]
    fn eddsa_mode_accepts_only_eddsa_from_that_key() {
        let auth =
            JwtAuth::public_key(JwtAlgorithm::EdDsa, ED_PUBLIC.as_bytes(), 3600).expect("auth");
        assert!(!auth.issues_tokens());
        let key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("key");
        let token = encode(&Header::new(Algorithm::EdDSA), &claims(), &key).expect("sign");
        assert!(auth.verify(&token).is_ok());
        // An HS256 token signed with the public key's bytes (key confusion) is refused.
        let confused = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(ED_PUBLIC.as_bytes()),
        )
        .expect("sign");
        assert!(auth.verify(&confused).is_err());
        let p = Principal {
            user_id: Uuid::now_v7(),
            tenant: "demo".into(),
            role: Role::Agent,
            name: String::new(),
        };
        assert!(matches!(
            auth.issue(&p, Utc::now()),
            Err(AuthError::IssuingDisabled)
        ));
    }

    #[test]
    fn cached_tokens_still_expire_and_failures_are_not_cached() {
        let auth = JwtAuth::hs256(SECRET, 3600).expect("auth");
        let soon = sign(&with(claims(), "exp", json!(now() + 1)));
        assert!(auth.verify(&soon).is_ok());
        assert!(auth.verify(&soon).is_ok(), "served from the cache");
        // Pretend time passed beyond exp + leeway by caching an old expiry.
        let mut old = auth.verify_token(&soon).expect("ok");
        old.exp = now() - CLOCK_LEEWAY_SECS - 1;
        auth.cache().insert(soon.clone().into(), old);
        assert!(
            auth.verify(&soon).is_err(),
            "a cached token past its expiry is refused"
        );
        let bad = sign(&with(claims(), "role", json!("superuser")));
        assert!(auth.verify(&bad).is_err());
        assert!(auth.verify(&bad).is_err());
        assert!(!auth.cache().contains_key(bad.as_str()));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtAuth::hs256(b"short", 60).is_err());
    }

    /// Base64url without padding, as JWT segments are written.
    fn base64url(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}
