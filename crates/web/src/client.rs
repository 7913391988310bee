//! The client's address, for sign-in throttling and logs: the connecting peer, or — only when
//! the peer is one of the admin's trusted reverse proxies — the nearest address named in
//! `X-Forwarded-For` that is not itself a trusted proxy. Anyone can write the header, so it is
//! never read from a peer that is not trusted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::AppState;
use crate::error::ApiError;

/// The reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// Reads a comma-separated list such as `10.0.0.5, 192.168.1.0/24, ::1`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("{item:?} is not an address or a range like 10.0.0.0/8"))?,
            };
            nets.push(net);
        }
        Ok(Self(Arc::new(nets)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from the nearest hop outwards while
    /// the hop is a trusted proxy, the first address that is not (or the farthest one named).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            // What our proxy appended is an address; anything else ends the walk where it is.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }

    /// The client of a request, from its connection (in its extensions) and headers.
    pub fn client_of(&self, extensions: &axum::http::Extensions, headers: &HeaderMap) -> Option<IpAddr> {
        let ConnectInfo(peer) = extensions.get::<ConnectInfo<SocketAddr>>()?;
        Some(self.client(peer.ip(), headers))
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip())).ok().map(canonical)
}

/// IPv4 peers of a dual-stack socket arrive as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address as an extractor.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state
            .trusted_proxies
            .client_of(&parts.extensions, &parts.headers)
            .map(ClientAddr)
            .ok_or_else(|| ApiError::internal("the connection's address is unknown"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.5, 192.168.0.0/16, ::1").unwrap_or_default();
        let cases: &[(&str, &[&str], &str)] = &[
            // An untrusted peer's header is ignored.
            ("203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            // Our proxy appended the real client; what the client wrote before it is ignored.
            ("10.0.0.5", &["1.1.1.1, 198.51.100.7"], "198.51.100.7"),
            // Two proxies of ours in a row, over two header lines.
            ("10.0.0.5", &["1.1.1.1, 198.51.100.7", "192.168.3.4"], "198.51.100.7"),
            // A port, IPv6 in brackets, IPv4-mapped peers.
            ("10.0.0.5", &["198.51.100.7:4431"], "198.51.100.7"),
            ("::ffff:10.0.0.5", &["[2001:db8::7]:443"], "2001:db8::7"),
            ("::1", &["2001:db8::8"], "2001:db8::8"),
            // Garbage where our proxy's entry should be: the proxy itself is the client.
            ("10.0.0.5", &["1.1.1.1, not-an-address"], "10.0.0.5"),
            // No header: the proxy.
            ("10.0.0.5", &[], "10.0.0.5"),
            // Only proxies named: the farthest.
            ("10.0.0.5", &["192.168.1.1, 192.168.1.2"], "192.168.1.1"),
        ];
        for (peer, values, expected) in cases {
            assert_eq!(proxies.client(ip(peer), &headers(values)), ip(expected), "{peer} {values:?}");
        }
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.5"), &headers(&["1.2.3.4"])), ip("10.0.0.5"));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse(" ").is_ok_and(|p| p.is_empty()));
    }
}
