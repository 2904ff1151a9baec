//! Where the HS256 secret comes from: the environment, a file, or (on first
//! start) a random secret generated into the data directory. Never a constant.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::error::AuthError;

/// Name of the generated secret's file inside the data directory.
pub const GENERATED_SECRET_FILE_NAME: &str = "jwt-secret";
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
}

/// The secret from `env_secret`, else `secret_file`, else the data
/// directory's generated secret (created with mode 0600 when absent).
pub fn resolve_secret(
    env_secret: Option<&str>,
    secret_file: Option<&Path>,
    data_dir: &Path,
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
    load_or_generate(data_dir)
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
    let mut bytes = [0u8; GENERATED_SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
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

    #[test]
    fn generates_once_with_private_mode_then_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, src) = resolve_secret(None, None, dir.path()).expect("generate");
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
        let (again, src) = resolve_secret(None, None, dir.path()).expect("reuse");
        assert!(matches!(src, SecretSource::DataDir(_)));
        assert_eq!(first, again);
        let other = tempfile::tempdir().expect("tempdir");
        let (different, _) = resolve_secret(None, None, other.path()).expect("generate");
        assert_ne!(first, different, "secrets are random, not a constant");
    }

    #[test]
    fn environment_wins_over_file_and_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s");
        std::fs::write(&file, "from-file-secret-from-file-secret!!\n").expect("write");
        let (s, src) = resolve_secret(Some("env-secret"), Some(&file), dir.path()).expect("env");
        assert_eq!(
            (s.as_slice(), src),
            (b"env-secret".as_slice(), SecretSource::Environment)
        );
        let (s, _) = resolve_secret(None, Some(&file), dir.path()).expect("file");
        assert_eq!(s, b"from-file-secret-from-file-secret!!");
    }
}
