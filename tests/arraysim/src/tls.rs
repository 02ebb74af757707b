//! TLS for the simulator. Without user-supplied files it creates, once per state dir, a private CA
//! (`ca.pem`, what clients pin) and a server certificate signed by it for 127.0.0.1, localhost, ::1
//! and any extra names. Reusing them across restarts keeps already-configured clients verifying.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::persist::write_atomic;
use crate::spec::TlsFiles;

/// Paths of the TLS material the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The PEM clients should trust: the generated CA, or the user's chain.
    pub ca_cert: PathBuf,
    pub cert_chain: PathBuf,
    pub key: PathBuf,
}

pub fn tls_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("tls")
}

/// Returns the material to serve, generating it under `<state>/tls/` if absent.
pub fn ensure_material(
    state_dir: &Path,
    files: Option<&TlsFiles>,
    extra_sans: &[String],
) -> Result<TlsMaterial> {
    if let Some(files) = files {
        return Ok(TlsMaterial {
            ca_cert: files.cert.clone(),
            cert_chain: files.cert.clone(),
            key: files.key.clone(),
        });
    }
    let dir = tls_dir(state_dir);
    let material = TlsMaterial {
        ca_cert: dir.join("ca.pem"),
        cert_chain: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    if material.ca_cert.exists() && material.cert_chain.exists() && material.key.exists() {
        return Ok(material);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (ca_pem, chain_pem, key_pem) = generate(extra_sans)?;
    write_atomic(&material.key, key_pem.as_bytes())?;
    write_atomic(&material.cert_chain, chain_pem.as_bytes())?;
    write_atomic(&material.ca_cert, ca_pem.as_bytes())?;
    Ok(material)
}

/// A fresh CA and a server certificate signed by it: (CA PEM, server chain PEM, server key PEM).
fn generate(extra_sans: &[String]) -> Result<(String, String, String)> {
    let ca_key = KeyPair::generate().context("generating CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "flashvol-arraysim CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).context("self-signing CA")?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names = vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra_sans.iter().cloned());
    let server_key = KeyPair::generate().context("generating server key")?;
    let mut server_params = CertificateParams::new(names).context("server certificate names")?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "flashvol-arraysim");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .context("signing server certificate")?;
    let chain = format!("{}{}", server_cert.pem(), ca_cert.pem());
    Ok((ca_cert.pem(), chain, server_key.serialize_pem()))
}

pub fn server_config(material: &TlsMaterial) -> Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&material.cert_chain)
        .with_context(|| format!("reading {}", material.cert_chain.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", material.cert_chain.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no certificate",
        material.cert_chain.display()
    );
    let key = PrivateKeyDer::from_pem_file(&material.key)
        .with_context(|| format!("reading key {}", material.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
