//! Which web pages may open `/ws` with a signed-in user's cookie. Browsers send
//! `Origin` on every WebSocket upgrade and a page cannot forge it, so comparing it with
//! the origins this server is *configured* to serve stops a page on another site from
//! riding the cookie into our socket (cross-site WebSocket hijacking). The comparison
//! is of whole origins (scheme, host, port) and never with anything the client sends
//! about itself (`Host`, `X-Forwarded-Host`, `Forwarded`): an attacker's page talking
//! to our address through their own DNS name would otherwise pass.
//!
//! Allowed: the origin of `PUBLIC_URL` and each of `ALLOWED_ORIGINS`. Without
//! `PUBLIC_URL` the server can only know its own listening address, so it allows that
//! and `localhost` / `127.0.0.1` / `[::1]` on the same port (`serve --demo` on
//! 127.0.0.1:8080 works in a browser opened at either name); a server bound to all
//! interfaces then refuses browsers that reach it by another name, which is the cue
//! to set `PUBLIC_URL`. Clients that send no `Origin` (load generators, integrations)
//! are not browsers and carry no ambient cookie worth stealing; they are let through.

use std::net::SocketAddr;

use url::{Origin, Url};

#[derive(Debug, Clone)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
}

#[derive(Debug, thiserror::Error)]
#[error("{name}: {value:?} is not an http(s) origin such as https://support.example.org")]
pub struct BadOrigin {
    name: &'static str,
    value: String,
}

fn parse(name: &'static str, value: &str) -> Result<Origin, BadOrigin> {
    let bad = || BadOrigin {
        name,
        value: value.to_string(),
    };
    let url = Url::parse(value.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad());
    }
    Ok(url.origin())
}

impl OriginPolicy {
    /// `bound` is the address the server really listens on (its port may have been
    /// chosen by the OS); `https` whether it speaks TLS itself.
    pub fn new(
        public_url: Option<&str>,
        allowed_origins: &[String],
        bound: SocketAddr,
        https: bool,
    ) -> Result<OriginPolicy, BadOrigin> {
        let mut allowed = Vec::new();
        match public_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => allowed.push(parse("PUBLIC_URL", url)?),
            None => {
                let scheme = if https { "https" } else { "http" };
                let port = bound.port();
                let mut hosts = vec![
                    "localhost".to_string(),
                    "127.0.0.1".to_string(),
                    "[::1]".to_string(),
                ];
                if !bound.ip().is_unspecified() && !bound.ip().is_loopback() {
                    hosts.push(match bound {
                        SocketAddr::V4(v4) => v4.ip().to_string(),
                        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
                    });
                }
                for host in hosts {
                    allowed.push(parse("BIND_ADDR", &format!("{scheme}://{host}:{port}"))?);
                }
            }
        }
        for extra in allowed_origins.iter().filter(|o| !o.trim().is_empty()) {
            allowed.push(parse("ALLOWED_ORIGINS", extra)?);
        }
        Ok(OriginPolicy { allowed })
    }

    /// Whether a page of this `Origin` header may open the socket.
    pub fn allows(&self, origin: &str) -> bool {
        match Url::parse(origin.trim()) {
            Ok(url) => {
                let origin = url.origin();
                origin.is_tuple() && self.allowed.contains(&origin)
            }
            Err(_) => false,
        }
    }

    /// The allowed origins, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        self.allowed
            .iter()
            .map(Origin::ascii_serialization)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> OriginPolicy {
        OriginPolicy::new(None, &[], "127.0.0.1:8080".parse().unwrap(), false).unwrap()
    }

    #[test]
    fn without_public_url_the_bind_address_and_localhost_are_allowed() {
        let p = local();
        assert!(p.allows("http://127.0.0.1:8080"));
        assert!(p.allows("http://localhost:8080"));
        assert!(p.allows("http://LOCALHOST:8080/"));
        assert!(p.allows("http://[::1]:8080"));
        assert!(!p.allows("https://127.0.0.1:8080"), "the scheme counts");
        assert!(!p.allows("http://127.0.0.1:8081"), "the port counts");
        assert!(!p.allows("http://evil.example:8080"));
        assert!(!p.allows("null"));
        assert!(!p.allows("file:///etc/passwd"));
        let lan = OriginPolicy::new(None, &[], "192.0.2.10:443".parse().unwrap(), true).unwrap();
        assert!(
            lan.allows("https://192.0.2.10"),
            "443 is https' default port"
        );
        assert!(lan.allows("https://localhost"));
        assert!(!lan.allows("http://192.0.2.10:443"));
    }

    #[test]
    fn public_url_replaces_the_defaults_and_allowed_origins_add_to_it() {
        let p = OriginPolicy::new(
            Some("https://support.example.org/app"),
            &["https://wallboard.example.org:8443".into()],
            "0.0.0.0:8080".parse().unwrap(),
            false,
        )
        .unwrap();
        assert!(p.allows("https://support.example.org"));
        assert!(p.allows("https://wallboard.example.org:8443"));
        assert!(!p.allows("http://support.example.org"));
        assert!(!p.allows("http://localhost:8080"));
        assert_eq!(
            p.describe(),
            vec![
                "https://support.example.org".to_string(),
                "https://wallboard.example.org:8443".to_string()
            ]
        );
    }

    #[test]
    fn malformed_configuration_is_refused() {
        let bound = "127.0.0.1:8080".parse().unwrap();
        assert!(OriginPolicy::new(Some("support.example.org"), &[], bound, false).is_err());
        assert!(OriginPolicy::new(None, &["ftp://x.org".into()], bound, false).is_err());
    }
}
