//! Password hashing with argon2id (the crate's default parameters).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use super::error::AuthError;

/// Random bytes in a password salt.
pub const SALT_BYTES: usize = 16;
/// Longest password accepted (argon2 would take more, but a login body should not).
pub const PASSWORD_BYTES_MAX: usize = 1024;

/// Shortest new password accepted by a password change (`POST
/// /api/v1/me/password`, `ticketlog user passwd`), in characters.
pub const NEW_PASSWORD_CHARS_MIN: usize = 10;

/// Whether `password` may become a user's new password: at least
/// [`NEW_PASSWORD_CHARS_MIN`] characters, at most [`PASSWORD_BYTES_MAX`]
/// bytes, not only whitespace.
pub fn validate_new_password(password: &str) -> Result<(), AuthError> {
    let ok = password.chars().count() >= NEW_PASSWORD_CHARS_MIN
        && password.len() <= PASSWORD_BYTES_MAX
        && !password.trim().is_empty();
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidField {
            field: "new",
            reason: format!(
                "{NEW_PASSWORD_CHARS_MIN} characters to {PASSWORD_BYTES_MAX} bytes, not only spaces"
            ),
        })
    }
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.is_empty() || password.len() > PASSWORD_BYTES_MAX {
        return Err(AuthError::InvalidField {
            field: "password",
            reason: format!("1..{PASSWORD_BYTES_MAX} bytes"),
        });
    }
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (false on a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify() {
        let a = hash_password("demo").expect("hash");
        let b = hash_password("demo").expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("demo", &a));
        assert!(!verify_password("Demo", &a));
        assert!(!verify_password("demo", "not a hash"));
    }

    #[test]
    fn new_passwords_have_a_minimum_length() {
        assert!(validate_new_password(&"x".repeat(NEW_PASSWORD_CHARS_MIN)).is_ok());
        assert!(validate_new_password(&"x".repeat(NEW_PASSWORD_CHARS_MIN - 1)).is_err());
        assert!(validate_new_password(&" ".repeat(NEW_PASSWORD_CHARS_MIN)).is_err());
        assert!(validate_new_password(&"x".repeat(PASSWORD_BYTES_MAX + 1)).is_err());
    }
}
