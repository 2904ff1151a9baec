//! Where the HS256 secret comes from: the environment, a file, or (on first
//! start) a random secret generated into the data directory, or into the
//! database when the store is PostgreSQL (so that every node of a cluster
//! shares it). Never a constant.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use event_store::KvTree;
use rand::RngCore;

use super::error::AuthError;

/// Name of the generated secret's file inside the data directory.
pub const GENERATED_SECRET_FILE_NAME: &str = "jwt-secret";
/// Side tree of the generated secret when it lives in the store.
pub const SECRETS_TREE_NAME: &str = "secrets";
/// Key of the generated HS256 secret in [`SECRETS_TREE_NAME`].
pub const GENERATED_SECRET_KEY: &[u8] = b"jwt-hs256";
/// Random bytes in a generated secret.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// Where the secret was found, for the startup log (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `TICKETLOG_JWT_SECRET`.
    Environment,
    /// A file named on the command line.
    File(PathBuf),
    /// Read from the data directory, generated there earlier.
    DataDir(PathBuf),
    /// Generated now and stored in the data directory.
    Generated(PathBuf),
    /// Read from the store's side tree (generated there by the first
    /// process that needed it).
    Store,
}

/// Where a generated secret is kept.
#[derive(Clone)]
pub enum SecretHome {
    /// A file in the data directory (the embedded store's node).
    DataDir(PathBuf),
    /// A side tree of a shared store (PostgreSQL).
    Store(Arc<dyn KvTree>),
}

/// The secret from `env_secret`, else `secret_file`, else the generated
/// secret of `home` (created when absent: a file with mode 0600, or the
/// first value any process stores in the tree).
pub fn resolve_secret(
    env_secret: Option<&str>,
    secret_file: Option<&Path>,
    home: &SecretHome,
) -> Result<(Vec<u8>, SecretSource), AuthError> {
    if let Some(s) = env_secret.filter(|s| !s.trim().is_empty()) {
        return Ok((s.trim().as_bytes().to_vec(), SecretSource::Environment));
    }
    if let Some(path) = secret_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthError::Key(format!("cannot read {}: {e}", path.display())))?;
        return Ok((
            text.trim().as_bytes().to_vec(),
            SecretSource::File(path.to_path_buf()),
        ));
    }
    match home {
        SecretHome::DataDir(dir) => load_or_generate(dir),
        SecretHome::Store(tree) => {
            let stored = tree
                .insert_if_absent(GENERATED_SECRET_KEY, random_hex().as_bytes())
                .map_err(|e| AuthError::Key(format!("cannot read the stored secret: {e}")))?;
            Ok((stored, SecretSource::Store))
        }
    }
}

/// A new random secret, hex-encoded.
fn random_hex() -> String {
    let mut bytes = [0u8; GENERATED_SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_or_generate(data_dir: &Path) -> Result<(Vec<u8>, SecretSource), AuthError> {
    let path = data_dir.join(GENERATED_SECRET_FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => return Ok((text.trim().as_bytes().to_vec(), SecretSource::DataDir(path))),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(AuthError::Key(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| AuthError::Key(format!("cannot create {}: {e}", data_dir.display())))?;
    let hex = random_hex();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(hex.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| AuthError::Key(format!("cannot write {}: {e}", path.display())))?;
            Ok((hex.into_bytes(), SecretSource::Generated(path)))
        }
        // Another process won the race: use its secret.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| AuthError::Key(format!("cannot read {}: {e}", path.display())))?;
            Ok((text.trim().as_bytes().to_vec(), SecretSource::DataDir(path)))
        }
        Err(e) => Err(AuthError::Key(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(dir: &Path) -> SecretHome {
        SecretHome::DataDir(dir.to_path_buf())
    }

    #[test]
    fn a_store_keeps_the_first_generated_secret() {
        let tree: Arc<dyn KvTree> = Arc::new(event_store::testing::MemoryTree::default());
        let home = SecretHome::Store(tree.clone());
        let (first, src) = resolve_secret(None, None, &home).expect("generate");
        assert_eq!(
            (first.len(), src),
            (GENERATED_SECRET_BYTES * 2, SecretSource::Store)
        );
        let (again, _) = resolve_secret(None, None, &home).expect("reuse");
        assert_eq!(first, again);
        let other = SecretHome::Store(Arc::new(event_store::testing::MemoryTree::default()));
        let (different, _) = resolve_secret(None, None, &other).expect("generate");
        assert_ne!(first, different, "secrets are random, not a constant");
    }

    #[test]
    fn generates_once_with_private_mode_then_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, src) = resolve_secret(None, None, &home(dir.path())).expect("generate");
        assert!(matches!(src, SecretSource::Generated(_)));
        assert_eq!(first.len(), GENERATED_SECRET_BYTES * 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(GENERATED_SECRET_FILE_NAME))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, src) = resolve_secret(None, None, &home(dir.path())).expect("reuse");
        assert!(matches!(src, SecretSource::DataDir(_)));
        assert_eq!(first, again);
        let other = tempfile::tempdir().expect("tempdir");
        let (different, _) = resolve_secret(None, None, &home(other.path())).expect("generate");
        assert_ne!(first, different, "secrets are random, not a constant");
    }

    #[test]
    fn environment_wins_over_file_and_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s");
        std::fs::write(&file, "from-file-secret-from-file-secret!!\n").expect("write");
        let (s, src) =
            resolve_secret(Some("env-secret"), Some(&file), &home(dir.path())).expect("env");
        assert_eq!(
            (s.as_slice(), src),
            (b"env-secret".as_slice(), SecretSource::Environment)
        );
        let (s, _) = resolve_secret(None, Some(&file), &home(dir.path())).expect("file");
        assert_eq!(s, b"from-file-secret-from-file-secret!!");
    }
}
