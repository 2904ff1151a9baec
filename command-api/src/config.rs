//! Server configuration that is not HTTP-specific: the data directory's
//! layout and where the JWT keys come from.

use std::path::{Path, PathBuf};

use crate::auth::secret::{resolve_secret, SecretHome, SecretSource};
use crate::auth::{AuthError, JwtAlgorithm, JwtAuth};

/// Directory of the event store inside the data directory.
pub const STORE_DIR_NAME: &str = "store";
/// Environment variable holding the HS256 secret.
pub const JWT_SECRET_ENV: &str = "TICKETLOG_JWT_SECRET";

/// Where the event store lives inside `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_DIR_NAME)
}

/// How tokens are verified (and, for HS256, issued).
#[derive(Debug, Clone)]
pub enum JwtConfig {
    /// HS256: secret from the environment, a file, or generated in the data dir.
    Secret {
        /// The secret from `TICKETLOG_JWT_SECRET`, if set.
        env_secret: Option<String>,
        /// `--jwt-secret-file`.
        secret_file: Option<PathBuf>,
    },
    /// EdDSA or RS256 with an outside issuer's public key (PEM file).
    PublicKey {
        /// The one accepted algorithm.
        algorithm: JwtAlgorithm,
        /// The PEM file.
        path: PathBuf,
    },
}

/// Builds the verifier; the string says where the key came from (for the
/// startup log; never the key itself).
pub fn build_jwt(
    config: &JwtConfig,
    home: &SecretHome,
    token_ttl_secs: u64,
) -> Result<(JwtAuth, String), AuthError> {
    match config {
        JwtConfig::Secret {
            env_secret,
            secret_file,
        } => {
            let (secret, source) =
                resolve_secret(env_secret.as_deref(), secret_file.as_deref(), home)?;
            let auth = JwtAuth::hs256(&secret, token_ttl_secs)?;
            let from = match source {
                SecretSource::Environment => format!("HS256, secret from {JWT_SECRET_ENV}"),
                SecretSource::File(p) => format!("HS256, secret from {}", p.display()),
                SecretSource::DataDir(p) => format!("HS256, secret from {}", p.display()),
                SecretSource::Generated(p) => {
                    format!("HS256, new random secret stored in {}", p.display())
                }
                SecretSource::Store => "HS256, secret from the database".to_string(),
            };
            Ok((auth, from))
        }
        JwtConfig::PublicKey { algorithm, path } => {
            let pem = std::fs::read(path)
                .map_err(|e| AuthError::Key(format!("cannot read {}: {e}", path.display())))?;
            let auth = JwtAuth::public_key(*algorithm, &pem, token_ttl_secs)?;
            Ok((
                auth,
                format!(
                    "{algorithm:?}, public key from {} (verify only)",
                    path.display()
                ),
            ))
        }
    }
}
