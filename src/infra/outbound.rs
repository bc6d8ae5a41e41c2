//! Outbound HTTP to addresses users chose (webhook endpoints): only http(s), and never to
//! loopback, private, link-local (cloud metadata included), multicast or otherwise special
//! addresses unless allowed. Names are checked when they resolve, by the client's own
//! resolver, so a name that changes its address after a check (DNS rebinding) is still
//! refused at connect time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target is refused; safe to show (names no resolved address).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    #[error("must be an absolute http:// or https:// URL")]
    Scheme,
    #[error("must not point at a loopback, private, link-local, multicast or metadata address")]
    Private,
    #[error("must be an https:// URL (WEBHOOK_REQUIRE_HTTPS)")]
    Insecure,
}

/// Whether `ip` is an address an outside endpoint can never have.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 metadata included
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible
                || first == 0x2001 && v6.segments()[1] == 0xdb8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64
        }
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, the metadata address included
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240
}

/// Checks a URL before it is stored or called: http(s) (only https when `require_https`),
/// and unless `allow_private` a public address. A name that does not resolve now is accepted
/// (it may resolve later); the resolver checks it again on every connection.
pub async fn check_url(
    url: &str,
    allow_private: bool,
    require_https: bool,
) -> Result<reqwest::Url, TargetRefused> {
    let url = reqwest::Url::parse(url).map_err(|_| TargetRefused::Scheme)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetRefused::Scheme);
    }
    if require_https && url.scheme() != "https" {
        return Err(TargetRefused::Insecure);
    }
    let Some(host) = url.host_str().map(str::to_owned) else {
        return Err(TargetRefused::Scheme);
    };
    if allow_private {
        return Ok(url);
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return if is_private(ip) {
            Err(TargetRefused::Private)
        } else {
            Ok(url)
        };
    }
    let port = url.port_or_known_default().unwrap_or(443);
    // A resolver that does not answer soon is treated like a name that does not resolve.
    let lookup = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::lookup_host((host.as_str(), port)),
    );
    match lookup.await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.iter().any(|a| is_private(a.ip())) {
                Err(TargetRefused::Private)
            } else {
                Ok(url)
            }
        }
        Ok(Err(_)) | Err(_) => Ok(url),
    }
}

/// Resolves names with the system resolver and keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await;
            let addrs: Vec<SocketAddr> = match found {
                Ok(addrs) => addrs.filter(|a| !is_private(a.ip())).collect(),
                Err(e) => return Err(Box::new(e) as BoxError),
            };
            if addrs.is_empty() {
                return Err(Box::new(TargetRefused::Private) as BoxError);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client for user-chosen targets: no redirects, bounded by `timeout`, and (unless
/// `allow_private`) a resolver that refuses private addresses. IP literals skip resolvers:
/// callers check them with [`check_url`] before each request.
pub fn client(timeout: Duration, allow_private: bool) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .no_proxy()
        .user_agent(concat!("hsq-config-webhooks/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the webhook HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_are_private() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_at_private_addresses_are_refused() {
        for url in [
            "http://127.0.0.1/x",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest",
            "https://10.0.0.1/",
            "http://localhost:9/",
        ] {
            assert_eq!(
                check_url(url, false, false).await,
                Err(TargetRefused::Private),
                "{url}"
            );
        }
        assert_eq!(
            check_url("ftp://example.com/", false, false).await,
            Err(TargetRefused::Scheme)
        );
        assert_eq!(
            check_url("http://hooks.example.com/", false, true).await,
            Err(TargetRefused::Insecure)
        );
        assert!(check_url("http://127.0.0.1/x", true, false).await.is_ok());
        assert!(
            check_url("https://hooks.example.com/x", false, true)
                .await
                .is_ok()
        );
    }
}
