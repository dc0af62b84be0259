//! JWT verification (docs/protocol.md, authentication), shared by the HTTP extractor and
//! the socket connect handler, and the roles a token grants. The key and the
//! validation rules come from the configuration in `auth/keys.rs`.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, EncodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::Error;

mod keys;

/// Where a request may carry its token besides the `Authorization: Bearer`
/// header, by transport (docs/protocol.md, authentication).
pub enum Carrier<'a> {
    /// The HTTP API: the header only.
    Header,
    /// Server-Sent Events: the header, else the query's `?access_token=` (a
    /// browser's `EventSource` cannot set headers).
    EventSource { access_token: Option<&'a str> },
    /// A Socket.IO handshake: its `auth.token`, else the query's `?token=`,
    /// else the header.
    Handshake { auth_token: Option<&'a str>, query_token: Option<&'a str> },
}

/// The token of a request: from the first place its transport allows that
/// holds one. Every transport takes its token here, so each accepted form
/// and their order are stated once.
pub fn token<'a>(headers: &'a HeaderMap, carrier: Carrier<'a>) -> Result<&'a str, Error> {
    let found = match carrier {
        Carrier::Header => bearer(headers),
        Carrier::EventSource { access_token } => bearer(headers).or(access_token),
        Carrier::Handshake { auth_token, query_token } => auth_token.or(query_token).or_else(|| bearer(headers)),
    };
    found.ok_or_else(|| Error::Unauthorized("missing token".into()))
}

/// The bearer token of an `Authorization` header, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

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

    /// `service` and `admin` may address an event to some users only.
    pub fn can_set_audience(&self) -> bool {
        self.has("service")
    }

    /// Time left until `exp`; zero once it has passed. Never overflows,
    /// whatever `exp` says (an `exp` of `i64::MAX` is valid forever).
    pub fn expires_in(&self) -> Duration {
        let left_ms = self.exp.saturating_mul(1000).saturating_sub(chrono::Utc::now().timestamp_millis());
        Duration::from_millis(left_ms.max(0) as u64)
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
    /// `iss` and `aud` a token must carry, when configured.
    issuer: Option<String>,
    audience: Option<String>,
    /// Present for HS256 only: lets `eventfeed token` mint development tokens.
    signer: Option<EncodingKey>,
}

impl Verifier {
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
                ErrorKind::MissingRequiredClaim(c) if c == "exp" => "missing exp claim",
                ErrorKind::MissingRequiredClaim(c) if c == "sub" => "missing sub claim",
                ErrorKind::InvalidClaimFormat(_) | ErrorKind::MissingRequiredClaim(_) => "malformed claims",
                _ => "malformed token",
            })
        })?;
        // A critical extension is one this server does not understand (RFC 7515 4.1.11).
        if data.header.crit.is_some() {
            return Err(fail("the crit header is not supported"));
        }
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
        self.check_registered(&claims)?;
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
        crate::event::storable(
            "sub, name and tenant",
            &[&std.sub, &tenant, std.name.as_deref().unwrap_or("")].concat(),
        )?;
        Ok(Principal {
            tenant_id: tenant,
            user_id: std.sub,
            username: std.name,
            roles: std.roles.into_iter().collect(),
            exp: std.exp,
        })
    }

    /// `nbf` must be a number in the past; `iss` and `aud`, when configured,
    /// must be present and match (`aud` may be a list containing ours).
    fn check_registered(&self, claims: &Map<String, Value>) -> Result<(), Error> {
        let fail = |reason: &str| Err(Error::Unauthorized(reason.to_owned()));
        let now = chrono::Utc::now().timestamp() as f64;
        match claims.get("nbf") {
            None => {}
            Some(Value::Number(nbf)) if nbf.as_f64().is_some_and(|nbf| nbf <= now) => {}
            Some(Value::Number(_)) => return fail("token not valid yet"),
            Some(_) => return fail("malformed claims (nbf)"),
        }
        if let Some(issuer) = &self.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == issuer => {}
                None => return fail("missing iss claim"),
                Some(_) => return fail("wrong issuer"),
            }
        }
        if let Some(audience) = &self.audience {
            let ours = |v: &Value| v.as_str() == Some(audience.as_str());
            match claims.get("aud") {
                Some(aud @ Value::String(_)) if ours(aud) => {}
                Some(Value::Array(list)) if list.iter().any(ours) => {}
                None => return fail("missing aud claim"),
                Some(_) => return fail("wrong audience"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use jsonwebtoken::{Algorithm, Header};

    use super::*;
    use crate::config::{JwtConfig, Secret};

    const SECRET: &str = "unit-test-secret";

    fn verifier(issuer: Option<&str>, audience: Option<&str>) -> Verifier {
        let cfg = JwtConfig {
            secret: Some(Secret(SECRET.into())),
            public_key: None,
            alg: None,
            tenant_claim: "tenant_id".into(),
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
        };
        Verifier::from_config(&cfg).unwrap()
    }

    fn sign(header: Header, claims: Value) -> String {
        let mut base = json!({ "sub": "u1", "tenant_id": "acme", "exp": chrono::Utc::now().timestamp() + 60 });
        base.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
        jsonwebtoken::encode(&header, &base, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
    }

    fn refusal(v: &Verifier, token: &str) -> String {
        match v.verify(token) {
            Ok(p) => panic!("accepted {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn nbf_must_be_a_number_in_the_past() {
        let v = verifier(None, None);
        let now = chrono::Utc::now().timestamp();
        let hs = || Header::new(Algorithm::HS256);
        assert!(v.verify(&sign(hs(), json!({ "nbf": now - 5 }))).is_ok());
        assert!(refusal(&v, &sign(hs(), json!({ "nbf": now + 120 }))).contains("not valid yet"));
        assert!(refusal(&v, &sign(hs(), json!({ "nbf": "yesterday" }))).contains("malformed claims"));
    }

    #[test]
    fn configured_issuer_and_audience_are_required_strings() {
        let v = verifier(Some("https://id.example"), Some("eventfeed"));
        let hs = || Header::new(Algorithm::HS256);
        let good = json!({ "iss": "https://id.example", "aud": "eventfeed" });
        assert!(v.verify(&sign(hs(), good)).is_ok());
        assert!(v.verify(&sign(hs(), json!({ "iss": "https://id.example", "aud": ["x", "eventfeed"] }))).is_ok());
        let refused = [
            (json!({ "aud": "eventfeed" }), "missing iss"),
            (json!({ "iss": "https://id.example" }), "missing aud"),
            (json!({ "iss": 7, "aud": "eventfeed" }), "wrong issuer"),
            (json!({ "iss": ["https://id.example"], "aud": "eventfeed" }), "wrong issuer"),
            (json!({ "iss": "https://id.example", "aud": 7 }), "wrong audience"),
            (json!({ "iss": "https://id.example", "aud": ["x"] }), "wrong audience"),
        ];
        for (claims, reason) in refused {
            let message = refusal(&v, &sign(hs(), claims.clone()));
            assert!(message.contains(reason), "{claims}: {message}");
        }
        // Unconfigured, they are not looked at.
        assert!(verifier(None, None).verify(&sign(hs(), json!({ "iss": 7, "aud": 7 }))).is_ok());
    }

    #[test]
    fn a_crit_header_is_refused() {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["exp".into()]);
        assert!(refusal(&verifier(None, None), &sign(header, json!({}))).contains("crit"));
    }

    #[test]
    fn expiry_never_overflows() {
        let v = verifier(None, None);
        let forever = v.verify(&sign(Header::new(Algorithm::HS256), json!({ "exp": i64::MAX }))).unwrap();
        assert!(forever.expires_in() > Duration::from_secs(100 * 365 * 24 * 3600));
        let soon = Principal { exp: chrono::Utc::now().timestamp() + 30, ..forever.clone() };
        assert!(soon.expires_in() <= Duration::from_secs(30) && soon.expires_in() > Duration::from_secs(20));
        let past = Principal { exp: i64::MIN, ..forever };
        assert!(past.expires_in().is_zero());
    }

    #[test]
    fn each_transport_takes_its_token_from_its_places_in_order() {
        let mut headers = HeaderMap::new();
        let none = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer from-header".parse().unwrap());
        let take = |headers, carrier| token(headers, carrier).ok();
        let handshake = |auth_token, query_token| Carrier::Handshake { auth_token, query_token };
        let event_source = |access_token| Carrier::EventSource { access_token };

        assert_eq!(take(&headers, Carrier::Header), Some("from-header"));
        assert_eq!(take(&headers, event_source(Some("query"))), Some("from-header"));
        assert_eq!(take(&none, event_source(Some("query"))), Some("query"));
        assert_eq!(take(&headers, handshake(Some("auth"), Some("query"))), Some("auth"));
        assert_eq!(take(&headers, handshake(None, Some("query"))), Some("query"));
        assert_eq!(take(&headers, handshake(None, None)), Some("from-header"));
        for carrier in [Carrier::Header, event_source(None), handshake(None, None)] {
            let refused = token(&none, carrier).unwrap_err().to_string();
            assert!(refused.contains("missing token"), "{refused}");
        }
    }
}
