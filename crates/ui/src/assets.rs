//! Static assets carried in the binary, served under content-hashed names with long caching.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    ext: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { name: "app", ext: "css", content_type: "text/css; charset=utf-8", body: include_str!("../assets/app.css") },
    Asset {
        name: "app",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
];

/// `app.css` → `app.1a2b3c4d.css`, computed once.
fn hashed_names() -> &'static Vec<String> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("{}.{}.{}", a.name, &hex::encode(Sha256::digest(a.body.as_bytes()))[..10], a.ext))
            .collect()
    })
}

/// The URL of an asset by its plain name (`app.css`).
pub fn url(plain: &str) -> String {
    ASSETS
        .iter()
        .zip(hashed_names())
        .find(|(a, _)| format!("{}.{}", a.name, a.ext) == plain)
        .map(|(_, hashed)| format!("/assets/{hashed}"))
        .unwrap_or_default()
}

pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().zip(hashed_names()).find(|(_, hashed)| **hashed == file) {
        Some((asset, _)) => {
            let mut resp = asset.body.into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            resp
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_asset_has_a_hashed_url() {
        for plain in ["app.css", "app.js"] {
            let url = super::url(plain);
            assert!(
                url.starts_with("/assets/app.") && url.ends_with(plain.rsplit('.').next().unwrap_or_default()),
                "{plain}: {url:?}"
            );
        }
        assert_eq!(super::url("missing.css"), "");
    }
}
