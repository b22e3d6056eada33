//! The investigator's workspace (`web/`, built into `web/dist/` and compiled into the
//! binary): served at `/` by every query node (`camtrail query`, `camtrail serve`), over the
//! same API as everyone else. Two endpoints exist for it:
//!
//! - `GET /v1/whoami`: the signed-in user's name and role, the display time zone and the
//!   operator's tile server (if any): what the page needs to show the right screens;
//! - `GET /v1/basemap`: the offline base map ([`crate::render::basemap`]), gzip when the
//!   browser accepts it.
//!
//! Neither carries personal data, so neither is audited (like `/v1/cameras/{id}`); both
//! need a valid token. Pages and assets need none: they hold no data. Every page answer
//! carries a strict Content-Security-Policy (no inline script or style, nothing from
//! another origin but the configured tile server's images).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use camtrail_common::http::ApiError;
use camtrail_storage::{AuditLog, Store};
use serde_json::json;

use crate::http::{HttpState, caller};

/// The built workspace (`npm run build` in `web/`; the bundle is committed, and the test
/// command checks it matches a fresh build).
#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
struct Assets;

/// What the workspace needs from the node's configuration.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// An XYZ tile server to draw under the vector layers (`https://pgis/{z}/{x}/{y}.png`).
    pub tile_url: Option<String>,
    /// The Content-Security-Policy of every page and asset.
    pub csp: String,
}

impl WebSettings {
    /// Settings for `tile_url` (already validated by the config): the policy allows images
    /// from its origin and nothing else from outside.
    pub fn new(tile_url: Option<String>) -> Self {
        let tiles = tile_url
            .as_deref()
            .and_then(origin_of)
            .map(|origin| format!(" {origin}"))
            .unwrap_or_default();
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: \
             data:{tiles}; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Self { tile_url, csp }
    }
}

/// `https://host:port` of a URL, if it is an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() || host.contains(['{', '}', '@', ' ', '\'', ';']) {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

/// Whether an `Accept-Encoding` value accepts gzip: `gzip` or `*` with a q-value above 0
/// (`gzip;q=0` refuses it; an explicit `gzip` entry overrides `*`).
pub fn accepts_gzip(accept: &str) -> bool {
    let mut star = None;
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => return q > 0.0,
            "*" => star = Some(q > 0.0),
            _ => {}
        }
    }
    star.unwrap_or(false)
}

/// The workspace's routes, merged into the query node's router.
pub fn router<S: Store, A: AuditLog>(state: Arc<HttpState<S, A>>) -> Router {
    Router::new()
        .route("/", get(index::<S, A>))
        .route("/index.html", get(index::<S, A>))
        .route("/assets/{file}", get(asset::<S, A>))
        .route("/v1/whoami", get(whoami::<S, A>))
        .route("/v1/basemap", get(basemap::<S, A>))
        .with_state(state)
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// An embedded file with the page headers, or 404.
fn serve_file(settings: &WebSettings, file: &str, headers: &HeaderMap) -> Response {
    let Some(found) = Assets::get(file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&found.metadata.sha256_hash()[..12]));
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let csp = HeaderValue::from_str(&settings.csp)
        .unwrap_or(HeaderValue::from_static("default-src 'none'"));
    let common = [
        (header::CONTENT_SECURITY_POLICY, csp),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // Revalidated every time (cheap: an ETag), so a new binary's page is never mixed
        // with an old one's script.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        ),
    ];
    if unchanged {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(file)),
        )],
        found.data.into_owned(),
    )
        .into_response()
}

async fn index<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    headers: HeaderMap,
) -> Response {
    serve_file(&state.web, "index.html", &headers)
}

async fn asset<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve_file(&state.web, &format!("assets/{file}"), &headers)
}

async fn whoami<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match caller(&state, &headers, addr) {
        Ok(caller) => {
            let limits = state.service.limits();
            axum::Json(json!({
                "user": caller.principal.user,
                "role": caller.principal.role.as_str(),
                "time_zone": state.zone.name(),
                "tile_url": state.web.tile_url,
                "limits": {
                    "scene_radius_m": limits.scene_radius_m,
                    "max_scene_radius_m": limits.max_scene_radius_m,
                    "scene_window_ms": limits.scene_window_ms,
                    "max_scene_window_ms": limits.max_scene_window_ms,
                    "max_track_window_ms": limits.max_track_window_ms,
                },
            }))
            .into_response()
        }
        Err(error) => ApiError(error).into_response(),
    }
}

async fn basemap<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = caller(&state, &headers, addr) {
        return ApiError(error).into_response();
    }
    let map = state.map();
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let bytes = map.basemap();
    let mut response = if gzip {
        (
            [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
            bytes.gzip.clone(),
        )
            .into_response()
    } else {
        bytes.json.clone().into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_give_an_origin_for_the_policy() {
        assert_eq!(
            origin_of("https://pgis.example:8443/tiles/{z}/{x}/{y}.png").as_deref(),
            Some("https://pgis.example:8443")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://a'; script-src *"), None);
        assert_eq!(origin_of("ftp://x/{z}"), None);
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("gzip;q=0, *"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn the_policy_forbids_inline_script_and_other_origins() {
        let plain = WebSettings::new(None);
        assert!(plain.csp.contains("script-src 'self';"));
        assert!(!plain.csp.contains("unsafe"));
        let tiles = WebSettings::new(Some("https://pgis.example/{z}/{x}/{y}.png".into()));
        assert!(
            tiles
                .csp
                .contains("img-src 'self' blob: data: https://pgis.example;")
        );
    }

    #[test]
    fn the_built_page_and_its_assets_are_embedded() {
        let index = Assets::get("index.html").expect("web/dist/index.html is built");
        let page = String::from_utf8_lossy(&index.data);
        assert!(page.contains("assets/app.js"), "{page}");
        assert!(!page.contains("<script>"), "no inline script");
        assert!(Assets::get("assets/app.js").is_some());
        assert!(Assets::get("assets/app.css").is_some());
    }
}
