//! The OpenAPI document (`GET /api/openapi.json`), generated from the
//! handlers' `#[utoipa::path]` annotations as the router registers them, so
//! a route cannot exist without its entry. This module holds what the
//! annotations share: the document's frame, the security schemes, and the
//! error answers, each with the one error body.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, ToSchema};

use crate::cursor::Cursor;
use crate::error::ErrorResponse;

/// The frame the routes are added to.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "eventfeed",
        description = "A durable event store with a realtime feed. Every error answer, an unknown path (404) \
                       or method (405) included, has the body `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&Frame),
    components(schemas(ErrorResponse, Cursor))
)]
struct Frame;

impl Modify for Frame {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT");
        let bearer = bearer
            .description(Some("A JWT with `sub`, `exp` and the tenant claim (see docs/protocol.md, authentication)."));
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer.build()));
        let query =
            ApiKeyValue::with_description("access_token", "The same JWT, for EventSource, which cannot set headers.");
        components.add_security_scheme("accessToken", SecurityScheme::ApiKey(ApiKey::Query(query)));
        for refusal in REFUSALS {
            components.responses.insert(refusal.name.to_owned(), RefOr::T(refusal.response()));
        }
    }
}

/// One kind of error answer: its status, code and when it is given.
struct Refusal {
    name: &'static str,
    status: u16,
    when: &'static str,
}

impl Refusal {
    fn response(&self) -> Response {
        let body = ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorResponse::name()))).build();
        ResponseBuilder::new().description(self.when).content("application/json", body).build()
    }

    fn answers(&self) -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([(self.status.to_string(), RefOr::Ref(Ref::from_response_name(self.name)))])
    }
}

/// Declares each error answer once: a marker type for `responses(...)` of
/// `#[utoipa::path]` (e.g. `responses((status = 200, body = T), doc::Unauthorized)`)
/// and its entry in the document's `components.responses`.
macro_rules! refusals {
    ($($name:ident = $status:literal, $when:literal;)*) => {
        $(
            #[doc = $when]
            pub struct $name;
            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    Refusal { name: stringify!($name), status: $status, when: $when }.answers()
                }
            }
        )*
        const REFUSALS: &[Refusal] = &[$(Refusal { name: stringify!($name), status: $status, when: $when }),*];
    };
}

refusals! {
    Invalid = 400, "`invalid` (a bad field, body or query parameter) or `invalid_cursor`.";
    Unauthorized = 401, "`unauthorized`: a missing or invalid token; the message names the reason.";
    Forbidden = 403, "`forbidden`: the token lacks the role this needs.";
    NotFound = 404, "`not_found`: no such route.";
    MethodNotAllowed = 405, "`method_not_allowed`: the route has no such method.";
    Conflict = 409, "`conflict`: `expectedVersion` did not match (with `currentVersion`), or the id is used.";
    TooLarge = 413, "`too_large`: the body, `data`, `metadata` or the batch is over its limit.";
    HeadersTooLarge = 431, "`too_large`: more than 100 request headers, or over 64 KiB of them.";
    Internal = 500, "`internal`: the cause is logged, never shown.";
    Unavailable = 503, "`unavailable`: the store cannot be reached right now; retry after `Retry-After` seconds.";
}

/// Answers every route can give, from the middleware in front of all of them.
fn add_middleware_refusals(operation: &mut Operation) {
    operation.responses.responses.extend(HeadersTooLarge::responses());
}

/// The finished document of `routes`: axum's `{*rest}` captures become
/// OpenAPI's `{rest}`, and every operation gets the middleware's answers.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch] {
            operation.as_mut().map(add_middleware_refusals);
        }
        doc.paths.paths.insert(path.replace("{*", "{"), item);
    }
    doc
}

/// The document, built once: building it runs no handler and needs no state.
pub fn openapi() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| finish(super::routes().into_openapi()))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object)))]
pub async fn document() -> Json<&'static OpenApi> {
    Json(openapi())
}

/// The frame the router starts from.
pub fn frame() -> OpenApi {
    <Frame as utoipa::OpenApi>::openapi()
}
