//! Prometheus metrics: request counts and latency histograms by route template, and ticket
//! counts by status (from the database, so every node reports the same numbers).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Latency {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// In-process request statistics of this node.
#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (method, route) → latency histogram.
    latency: Mutex<BTreeMap<(String, String), Latency>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry((method.to_owned(), route.to_owned())).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// Renders this node's request statistics in the Prometheus text format.
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP ferrodesk_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE ferrodesk_http_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "ferrodesk_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP ferrodesk_http_request_duration_seconds Time to answer, by method and route.");
        let _ = writeln!(out, "# TYPE ferrodesk_http_request_duration_seconds histogram");
        if let Ok(l) = self.latency.lock() {
            for ((method, route), h) in l.iter() {
                let labels = format!("method=\"{method}\",route=\"{route}\"");
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "ferrodesk_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ =
                    writeln!(out, "ferrodesk_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "ferrodesk_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "ferrodesk_http_request_duration_seconds_count{{{labels}}} {}", h.count);
            }
        }
    }
}

/// Middleware: times each request and records it under its route template (never the raw
/// path, which would carry ids and explode the number of series).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` for admins and supervisors (scrape with an API token as bearer).
pub(crate) async fn metrics(State(state): State<AppState>, Auth(actor): Auth) -> Result<Response, ApiError> {
    use ferrodesk_core::user::Role;
    if !matches!(actor.role, Role::Admin | Role::Supervisor) {
        return Err(ApiError::forbidden());
    }
    let mut out = String::new();
    state.metrics.render(&mut out);
    let _ = writeln!(out, "# HELP ferrodesk_tickets Tickets by status.");
    let _ = writeln!(out, "# TYPE ferrodesk_tickets gauge");
    for (status, n) in state.store.ticket_counts().await? {
        let _ = writeln!(out, "ferrodesk_tickets{{status=\"{status}\"}} {n}");
    }
    let mut resp = out.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("GET", "/api/v1/tickets", 200, 0.003);
        m.record("GET", "/api/v1/tickets", 200, 0.3);
        m.record("GET", "/api/v1/tickets", 404, 0.0001);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("ferrodesk_http_requests_total{method=\"GET\",route=\"/api/v1/tickets\",status=\"200\"} 2"),
            "{out}"
        );
        assert!(out.contains("le=\"0.001\"} 1"), "{out}");
        assert!(out.contains("le=\"0.005\"} 2"), "{out}");
        assert!(out.contains("le=\"0.5\"} 3"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3"), "{out}");
    }
}
