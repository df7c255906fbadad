//! TLS for HTTPS and TLS listeners: a self-signed certificate for the load balancer's DNS name
//! (and localhost, 127.0.0.1), whatever certificate ARN the listener names — ACM is not
//! emulated, and clients are expected to skip verification (curl -k) or trust it explicitly.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// `http`: an HTTPS listener (offers h2 and http/1.1 by ALPN); otherwise a TLS (NLB) listener,
/// which forwards bytes and offers no application protocol.
pub fn acceptor(dns_name: &str, http: bool) -> Result<TlsAcceptor, String> {
    let names = vec![
        dns_name.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .map_err(|e| e.to_string())?;
    let mut config = config;
    config.alpn_protocols = if http {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        Vec::new()
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}
