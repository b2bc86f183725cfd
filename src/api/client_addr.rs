//! Who the client is, by address, for the rate limits and the fraud rules: the peer, or, for a request forwarded by
//! one of `server.trusted_proxies`, the right-most `X-Forwarded-For` hop that is not a trusted proxy (the left-most
//! hops are whatever the client wrote). An IPv6 client counts per /64, one subscriber's allocation, so rotating
//! addresses within it buys nothing.
use super::AppState;
use super::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, request::Parts};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The client's address as the limits count it.
pub struct ClientAddr(pub IpAddr);

pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if is_trusted(&peer) {
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
        for hop in forwarded.join(",").rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
            client = ip;
            if !is_trusted(&ip) {
                break;
            }
        }
    }
    counted(client)
}

fn counted(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or_else(|| ApiError::internal("no peer address"))?;
        Ok(Self(resolve(peer, &parts.headers, &state.trusted_proxies)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop_and_ipv6_counts_per_64() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let lb: IpAddr = "10.0.0.2".parse().unwrap();
        let forged = headers("1.2.3.4, 203.0.113.7, 10.0.0.9");
        assert_eq!(resolve(lb, &forged, &proxies), "203.0.113.7".parse::<IpAddr>().unwrap());
        // From anyone else the header is the client's own word: ignored.
        let direct: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(resolve(direct, &forged, &proxies), direct);
        assert_eq!(resolve(lb, &forged, &[]), lb);
        let v6 = headers("2001:db8:1:2:aaaa::1");
        assert_eq!(resolve(lb, &v6, &proxies), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(resolve(lb, &headers("garbage"), &proxies), lb);
    }
}
