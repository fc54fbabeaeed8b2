//! The console's certificate: loaded from `server.tls_cert` / `server.tls_key` (PEM), generated
//! self-signed (rcgen) when neither file exists, reloaded on SIGHUP. The key file is written
//! with mode 0600 and never read back into logs; the certificate's SHA-256 fingerprint is
//! logged so an operator can check what the browser shows.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// Why the certificate could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// One of the two files is there, the other is not.
    #[error(
        "{present} exists but {missing} does not: give both (server.tls_cert, server.tls_key) or neither (a self-signed pair is then generated)"
    )]
    HalfPair {
        /// The file found.
        present: String,
        /// The file missing.
        missing: String,
    },
    /// The files exist and `gen-certs` was not told to replace them.
    #[error("{0} already exists (pass --force to replace it)")]
    Exists(String),
    /// Reading, writing or parsing failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rcgen refused the host names.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The names a generated certificate is valid for: `localhost`, the loopback addresses, the
/// bind address when it is a specific one, and `extra` (configured or given), without
/// duplicates.
pub fn host_names(bind: &str, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let specific = !matches!(bind, "" | "0.0.0.0" | "::" | "[::]");
    let candidates = extra
        .iter()
        .map(String::as_str)
        .chain(specific.then_some(bind));
    for name in candidates {
        let name = name.trim().trim_start_matches('[').trim_end_matches(']');
        if !name.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Writes a new self-signed certificate and its key for `names`; returns the certificate's
/// fingerprint. The key file gets mode 0600; missing folders are created.
pub fn generate(cert: &Path, key: &Path, names: &[String]) -> Result<String, TlsError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    for path in [cert, key] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        }
    }
    write_file(key, made.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert, made.cert.pem().as_bytes(), 0o644)?;
    Ok(fingerprint(made.cert.der()))
}

/// Writes `bytes` to `path` (replacing it) with `mode`, through a temporary file and a rename
/// so a reader never sees half a file.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| file_error(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| file_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
}

/// The SHA-256 fingerprint of a certificate, as browsers show it (`AB:CD:...`).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint of the first certificate in a PEM file.
pub fn file_fingerprint(cert: &Path) -> Result<String, TlsError> {
    let der = CertificateDer::from_pem_file(cert).map_err(|e| file_error(cert, e))?;
    Ok(fingerprint(&der))
}

/// What [`ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertOrigin {
    /// The configured files were there.
    Loaded,
    /// Neither file existed: a self-signed pair was written.
    Generated,
}

/// Makes sure the pair exists: generated for `names` when neither file does; an error when
/// only one does. Returns what happened and the certificate's fingerprint.
pub fn ensure(cert: &Path, key: &Path, names: &[String]) -> Result<(CertOrigin, String), TlsError> {
    match (cert.exists(), key.exists()) {
        (true, true) => Ok((CertOrigin::Loaded, file_fingerprint(cert)?)),
        (false, false) => Ok((CertOrigin::Generated, generate(cert, key, names)?)),
        (true, false) => Err(TlsError::HalfPair {
            present: cert.display().to_string(),
            missing: key.display().to_string(),
        }),
        (false, true) => Err(TlsError::HalfPair {
            present: key.display().to_string(),
            missing: cert.display().to_string(),
        }),
    }
}

/// `claude-pool gen-certs`: writes a new self-signed pair (refusing to replace existing files
/// unless `force`); returns the fingerprint.
pub fn gen_certs(
    cert: &Path,
    key: &Path,
    names: &[String],
    force: bool,
) -> Result<String, TlsError> {
    if !force {
        for path in [cert, key] {
            if path.exists() {
                return Err(TlsError::Exists(path.display().to_string()));
            }
        }
    }
    generate(cert, key, names)
}

/// The rustls configuration of the listener, from the PEM files (HTTP/2 and HTTP/1.1).
pub async fn load(cert: &Path, key: &Path) -> Result<RustlsConfig, TlsError> {
    RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| file_error(cert, e))
}

/// On every SIGHUP: read the certificate files again. A pair that does not load is logged and
/// the current one kept.
pub fn reload_on_hangup(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; certificate reload disabled");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match config.reload_from_pem_file(&cert, &key).await {
                Ok(()) => match file_fingerprint(&cert) {
                    Ok(fp) => tracing::info!(sha256 = %fp, "admin console certificate reloaded"),
                    Err(e) => {
                        tracing::warn!(error = %e, "certificate reloaded; fingerprint unreadable")
                    }
                },
                Err(e) => tracing::error!(
                    cert = %cert.display(),
                    error = %e,
                    "certificate reload failed; keeping the current certificate"
                ),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_the_bind_address_and_the_configured_hosts_once() {
        assert_eq!(
            host_names("0.0.0.0", &["pool.example".into(), "LOCALHOST".into()]),
            ["localhost", "127.0.0.1", "::1", "pool.example"]
        );
        assert_eq!(
            host_names("10.0.0.5", &[]),
            ["localhost", "127.0.0.1", "::1", "10.0.0.5"]
        );
    }

    #[test]
    fn a_generated_pair_has_a_private_key_file_and_a_stable_fingerprint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (
            dir.path().join("c/server.crt"),
            dir.path().join("c/server.key"),
        );
        let (origin, fp) = ensure(&cert, &key, &host_names("", &[])).unwrap();
        assert_eq!(origin, CertOrigin::Generated);
        assert_eq!(fp.len(), 32 * 3 - 1);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            ensure(&cert, &key, &[]).unwrap(),
            (CertOrigin::Loaded, fp.clone())
        );
        assert!(matches!(
            gen_certs(&cert, &key, &[], false),
            Err(TlsError::Exists(_))
        ));
        let new = gen_certs(&cert, &key, &["h".into()], true).unwrap();
        assert_ne!(new, fp);
        std::fs::remove_file(&key).unwrap();
        let e = ensure(&cert, &key, &[]).unwrap_err().to_string();
        assert!(e.contains("server.key") && e.contains("neither"), "{e}");
    }
}
