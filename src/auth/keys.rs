//! The verifier's key, algorithm and validation rules, from the
//! configuration; and minting development tokens with the same key.

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Map;

use super::Verifier;
use crate::config::{JwtAlg, JwtConfig};

impl Verifier {
    /// Builds the verifier; every error names the setting to fix.
    pub fn from_config(cfg: &JwtConfig) -> anyhow::Result<Self> {
        let (alg, key, signer) = key(cfg)?;
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // `nbf`, `iss` and `aud` are checked in `principal`, which also
        // refuses them when they have the wrong JSON type.
        validation.validate_aud = false;
        validation.validate_nbf = false;
        Ok(Verifier {
            key,
            validation,
            tenant_claim: cfg.tenant_claim.clone(),
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            signer,
        })
    }

    /// Mints an HS256 token for development (`eventfeed token`).
    pub fn mint(
        &self,
        tenant: &str,
        user: &str,
        name: Option<&str>,
        roles: &[String],
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let signer = self
            .signer
            .as_ref()
            .context("minting needs EVENTFEED_JWT_SECRET (HS256); with a public key, tokens come from your issuer")?;
        let mut claims = Map::new();
        claims.insert("sub".into(), user.into());
        claims.insert(self.tenant_claim.clone(), tenant.into());
        claims.insert("exp".into(), (chrono::Utc::now().timestamp() + ttl_secs).into());
        if let Some(name) = name {
            claims.insert("name".into(), name.into());
        }
        claims.insert("roles".into(), roles.into());
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), iss.as_str().into());
        }
        if let Some(aud) = &self.audience {
            claims.insert("aud".into(), aud.as_str().into());
        }
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, signer)?)
    }
}

/// The configured algorithm and verification key, and for HS256 the key
/// that signs development tokens.
fn key(cfg: &JwtConfig) -> anyhow::Result<(Algorithm, DecodingKey, Option<EncodingKey>)> {
    Ok(match (&cfg.secret, &cfg.public_key) {
        (Some(_), Some(_)) => {
            anyhow::bail!("both EVENTFEED_JWT_SECRET and EVENTFEED_JWT_PUBLIC_KEY are set: set only one")
        }
        (Some(secret), None) => {
            let alg = cfg.alg.unwrap_or(JwtAlg::HS256);
            anyhow::ensure!(
                alg == JwtAlg::HS256,
                "EVENTFEED_JWT_ALG={alg:?} needs EVENTFEED_JWT_PUBLIC_KEY, not a secret"
            );
            anyhow::ensure!(!secret.0.is_empty(), "EVENTFEED_JWT_SECRET is empty: set a long random string");
            let bytes = secret.0.as_bytes();
            (Algorithm::HS256, DecodingKey::from_secret(bytes), Some(EncodingKey::from_secret(bytes)))
        }
        (None, Some(path)) => {
            let pem = std::fs::read(path).with_context(|| {
                format!("cannot read EVENTFEED_JWT_PUBLIC_KEY file {}: check the path", path.display())
            })?;
            let (alg, key) = match cfg.alg.unwrap_or(JwtAlg::RS256) {
                JwtAlg::RS256 => (Algorithm::RS256, DecodingKey::from_rsa_pem(&pem)),
                JwtAlg::ES256 => (Algorithm::ES256, DecodingKey::from_ec_pem(&pem)),
                JwtAlg::HS256 => {
                    anyhow::bail!("EVENTFEED_JWT_ALG=HS256 needs EVENTFEED_JWT_SECRET, not a key file")
                }
            };
            let key = key.with_context(|| {
                format!("{} is not a PEM public key for {alg:?}: check EVENTFEED_JWT_PUBLIC_KEY", path.display())
            })?;
            (alg, key, None)
        }
        (None, None) => {
            anyhow::bail!("no JWT key: set EVENTFEED_JWT_SECRET (HS256) or EVENTFEED_JWT_PUBLIC_KEY (RS256/ES256)")
        }
    })
}
