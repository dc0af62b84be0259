//! JWT verification (CONTRACT.md section 2), shared by the HTTP extractor and
//! the socket connect handler, and the roles a token grants.

use std::collections::HashSet;

use anyhow::Context as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{JwtAlg, JwtConfig};
use crate::error::Error;

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub user_id: String,
    pub username: Option<String>,
    pub roles: HashSet<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

impl Principal {
    fn has(&self, role: &str) -> bool {
        self.roles.contains(role) || self.roles.contains("admin")
    }

    pub fn can_publish(&self) -> bool {
        self.has("publisher") || self.has("service")
    }

    pub fn can_audit(&self) -> bool {
        self.has("auditor")
    }

    /// `service` may set `actor` explicitly.
    pub fn is_service(&self) -> bool {
        self.roles.contains("service")
    }

    pub fn require_publisher(&self) -> Result<(), Error> {
        if self.can_publish() { Ok(()) } else { Err(Error::Forbidden("appending needs the publisher role".into())) }
    }
}

/// Checks tokens with the one configured key and algorithm.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    tenant_claim: String,
    /// Present for HS256 only: lets `eventfeed token` mint development tokens.
    signer: Option<EncodingKey>,
}

impl Verifier {
    /// Builds the verifier; every error names the setting to fix.
    pub fn from_config(cfg: &JwtConfig) -> anyhow::Result<Self> {
        let (alg, key, signer) = match (&cfg.secret, &cfg.public_key) {
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
        };
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &cfg.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &cfg.issuer {
            validation.set_issuer(&[iss]);
        }
        Ok(Verifier { key, validation, tenant_claim: cfg.tenant_claim.clone(), signer })
    }

    /// Verifies a token; the error message names the reason.
    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        let fail = |reason: &str| Error::Unauthorized(reason.to_owned());
        let token = token.trim();
        if token.is_empty() {
            return Err(fail("missing token"));
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation).map_err(|e| {
            fail(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::InvalidAlgorithm => "algorithm not accepted",
                ErrorKind::InvalidIssuer => "wrong issuer",
                ErrorKind::InvalidAudience => "wrong audience",
                ErrorKind::ImmatureSignature => "token not valid yet",
                ErrorKind::MissingRequiredClaim(c) if c == "exp" => "missing exp claim",
                ErrorKind::MissingRequiredClaim(c) if c == "sub" => "missing sub claim",
                ErrorKind::InvalidClaimFormat(_) | ErrorKind::MissingRequiredClaim(_) => "malformed claims",
                _ => "malformed token",
            })
        })?;
        self.principal(data.claims)
    }

    fn principal(&self, claims: Map<String, Value>) -> Result<Principal, Error> {
        #[derive(Deserialize)]
        struct Standard {
            sub: String,
            exp: i64,
            name: Option<String>,
            #[serde(default)]
            roles: Vec<String>,
        }
        let tenant = match claims.get(&self.tenant_claim) {
            Some(Value::String(t)) if !t.is_empty() && t.len() <= 200 => t.clone(),
            Some(_) => return Err(Error::Unauthorized(format!("wrong tenant claim {:?}", self.tenant_claim))),
            None => return Err(Error::Unauthorized(format!("missing tenant claim {:?}", self.tenant_claim))),
        };
        let std: Standard = serde_json::from_value(Value::Object(claims))
            .map_err(|_| Error::Unauthorized("malformed claims (sub, exp, name, roles)".into()))?;
        if std.sub.is_empty() {
            return Err(Error::Unauthorized("missing sub claim".into()));
        }
        Ok(Principal {
            tenant_id: tenant,
            user_id: std.sub,
            username: std.name,
            roles: std.roles.into_iter().collect(),
            exp: std.exp,
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
        if let Some(iss) = self.validation.iss.as_ref().and_then(|s| s.iter().next()) {
            claims.insert("iss".into(), iss.as_str().into());
        }
        if let Some(aud) = self.validation.aud.as_ref().and_then(|s| s.iter().next()) {
            claims.insert("aud".into(), aud.as_str().into());
        }
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, signer)?)
    }
}
