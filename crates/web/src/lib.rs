//! Ferrodesk's HTTP edge: the REST API under `/api/v1` (OpenAPI at `/api/openapi.json`),
//! health endpoints, and the middleware around them. Handlers parse input, ask
//! `core::access::decide`, call the domain and the store; they never contain SQL.

pub mod api;
pub mod auth;
pub mod client;
pub mod error;
pub mod events;
pub mod json;
pub mod metrics;
mod system;
pub mod usecases;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use ferrodesk_store::Store;
use jiff::Timestamp;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest JSON body accepted.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Shared, cheap-to-clone application state. Nothing here is per-node state that others need:
/// everything shared lives in the store.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limits: Limits,
    pub metrics: Arc<metrics::Metrics>,
    pub events: events::Events,
    /// The inbound e-mail pipeline (shared by the API, the CLI and the IMAP poller).
    pub ingest: ferrodesk_mail::ingest::Ingest,
    /// Seals stored secrets (mailbox passwords); `None` when no key is configured.
    pub secrets: Option<ferrodesk_mail::secret::SecretBox>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (none by default).
    pub trusted_proxies: client::TrustedProxies,
    /// Large mail deliveries read at once, at most (each holds its message in memory).
    pub large_deliveries: Arc<tokio::sync::Semaphore>,
    clock: Clock,
}

/// Size limits for uploads.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest single attachment, in bytes.
    pub attachment_bytes: usize,
    /// Most bytes one user may upload in 24 hours.
    pub upload_quota_bytes: i64,
    /// Largest raw e-mail message accepted at all, in bytes (a mailbox's own, smaller limit
    /// keeps larger ones in the quarantine).
    pub message_bytes: usize,
    /// Sign-in attempts one client address may make per 15 minutes (all accounts together).
    pub sign_ins_per_address: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            attachment_bytes: 25 * 1024 * 1024,
            upload_quota_bytes: 1024 * 1024 * 1024,
            message_bytes: ferrodesk_core::mail::MAX_MESSAGE_BYTES.unsigned_abs() as usize,
            sign_ins_per_address: 50,
        }
    }
}

/// The source of "now". Tests may shift it to step time instead of sleeping.
#[derive(Clone, Default)]
pub struct Clock {
    offset: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        let offset = self.offset.load(std::sync::atomic::Ordering::Relaxed);
        let now = Timestamp::now();
        now.checked_add(jiff::SignedDuration::from_micros(offset)).unwrap_or(now)
    }

    /// Moves this clock forward (tests).
    pub fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset.fetch_add(micros, std::sync::atomic::Ordering::Relaxed);
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            ingest: ferrodesk_mail::ingest::Ingest::new(store.clone(), Default::default()),
            secrets: None,
            trusted_proxies: client::TrustedProxies::default(),
            large_deliveries: Arc::new(tokio::sync::Semaphore::new(ferrodesk_mail::ingest::LARGE_AT_ONCE)),
            store,
            limits: Limits::default(),
            metrics: Arc::default(),
            events: events::Events::default(),
            clock: Clock::default(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// The API router with its middleware.
pub fn build_router(state: AppState) -> Router {
    build_router_with(state, Router::new())
}

/// The whole application: the API plus `extra` routes (the HTML UI), with the middleware.
pub fn build_router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (api, _) = api::router().split_for_parts();
    let limits_state = state.clone();
    let metrics_state = state.clone();
    let proxies = state.trusted_proxies.clone();
    Router::new()
        .merge(system::router())
        .merge(api)
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(metrics_state, metrics::track))
        .fallback(system::route_not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(limits_state, system::refuse_announced_oversize))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(CatchPanicLayer::custom(system::panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(move |req: &axum::http::Request<axum::body::Body>| {
            // The path only: queries can carry one-time tokens, which never reach the logs.
            let client = proxies.client_of(req.extensions(), req.headers()).map(|c| c.to_string()).unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), %client)
        }))
}

/// Serves the app on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: Router<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let events = state.events.clone();
    let app = build_router_with(state, extra).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Live-update streams never end by themselves: close them when shutdown starts.
    let shutdown = async move {
        shutdown.await;
        events.close();
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
