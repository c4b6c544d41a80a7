//! Registry authentication decisions, free of the network: what a
//! `WWW-Authenticate` challenge asks for, whether credentials may go to the
//! token realm a registry names, and what a token reply holds.
//!
//! The distribution API's token flow lets a registry name any URL as its
//! token "realm", and the client then sends the user's password there.
//! Credentials are bound to one registry (`credentials`), so the realm is
//! held to the same bound: the registry's own host or a sibling under the
//! same parent domain (Docker Hub's `registry-1.docker.io` names
//! `auth.docker.io`), over HTTPS unless the registry itself is a named
//! plain-HTTP one. Anonymous token requests carry no secret and may go to
//! any realm over the registry's scheme or HTTPS.

use std::net::IpAddr;

/// What a registry's `401` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic authentication against the registry itself.
    Basic,
    /// A bearer token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass on, if any.
        service: Option<String>,
    },
}

/// Why a challenge or a token reply cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No challenge of a scheme the distribution API uses.
    #[error("the registry's WWW-Authenticate challenge is not Basic or Bearer: {0:?}")]
    Challenge(String),
    /// The realm is not a URL credentials may go to.
    #[error(
        "the registry named the token realm {realm:?}, {why}; credentials for {registry} \
         are sent only to that registry's host (or a sibling under its parent domain) \
         over HTTPS"
    )]
    Realm {
        /// The realm as the registry named it.
        realm: String,
        /// The registry the credentials are for.
        registry: String,
        /// What is wrong with it.
        why: String,
    },
    /// The token endpoint's answer holds no token.
    #[error("the token endpoint's answer holds no token ({0})")]
    Token(String),
}

/// Reads the challenges of one `WWW-Authenticate` value, preferring Bearer
/// when several are offered.
pub fn parse_challenge(header: &str) -> Result<Challenge, AuthError> {
    let bad = || AuthError::Challenge(header.chars().take(200).collect());
    let challenges = http_auth::parse_challenges(header).map_err(|_| bad())?;
    let mut basic = false;
    for c in &challenges {
        if c.scheme.eq_ignore_ascii_case("bearer") {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            let realm = param("realm").filter(|r| !r.is_empty()).ok_or_else(bad)?;
            return Ok(Challenge::Bearer {
                realm,
                service: param("service"),
            });
        }
        basic |= c.scheme.eq_ignore_ascii_case("basic");
    }
    if basic {
        Ok(Challenge::Basic)
    } else {
        Err(bad())
    }
}

/// The token scope for pulling from (and, with `push`, pushing to) `repository`.
pub fn scope(repository: &str, push: bool) -> String {
    format!(
        "repository:{repository}:{}",
        if push { "pull,push" } else { "pull" }
    )
}

/// Checks the realm a registry named. `registry` is `host[:port]` as in the
/// reference, `plain_http` whether it is spoken to over HTTP, and
/// `with_credentials` whether a password would be sent. Returns the realm
/// as a URL to request.
pub fn check_realm(
    realm: &str,
    registry: &str,
    plain_http: bool,
    with_credentials: bool,
) -> Result<url::Url, AuthError> {
    let refuse = |why: &str| AuthError::Realm {
        realm: realm.chars().take(200).collect(),
        registry: registry.to_string(),
        why: why.to_string(),
    };
    let url = url::Url::parse(realm).map_err(|e| refuse(&format!("which is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("a URL with user information"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| refuse("a URL without a host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    match url.scheme() {
        "https" => {}
        "http" if plain_http => {}
        "http" => return Err(refuse("over plain HTTP for an HTTPS registry")),
        other => return Err(refuse(&format!("with the scheme {other:?}"))),
    }
    if !with_credentials {
        return Ok(url);
    }
    let registry_host = host_of(registry);
    if !same_site(&host, &registry_host) {
        return Err(refuse(&format!("on the host {host}")));
    }
    if url.scheme() == "http" && host != registry_host {
        return Err(refuse("over plain HTTP on another host"));
    }
    Ok(url)
}

/// The host part of `host[:port]` (brackets of an IPv6 literal removed), lowercased.
fn host_of(registry: &str) -> String {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host.to_ascii_lowercase()
}

/// Whether `realm` is `registry`, a subdomain of it, or a sibling under the
/// same parent domain of at least two labels. Addresses match only exactly.
fn same_site(realm: &str, registry: &str) -> bool {
    if realm == registry {
        return true;
    }
    if realm.parse::<IpAddr>().is_ok() || registry.parse::<IpAddr>().is_ok() {
        return false;
    }
    if realm.ends_with(&format!(".{registry}")) {
        return true;
    }
    let parent = |h: &str| h.split_once('.').map(|(_, p)| p.to_string());
    match (parent(realm), parent(registry)) {
        (Some(a), Some(b)) => a == b && a.contains('.'),
        _ => false,
    }
}

/// The token in a token endpoint's JSON answer (`token`, else `access_token`).
pub fn token_from_reply(body: &[u8]) -> Result<String, AuthError> {
    #[derive(serde::Deserialize)]
    struct Reply {
        token: Option<String>,
        access_token: Option<String>,
    }
    let reply: Reply =
        serde_json::from_slice(body).map_err(|e| AuthError::Token(format!("not JSON: {e}")))?;
    reply
        .token
        .or(reply.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::Token("no token or access_token field".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_prefer_bearer_and_need_a_realm() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#
            )
            .unwrap(),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert!(matches!(
            parse_challenge(r#"Basic realm="x", Bearer realm="https://r/t""#).unwrap(),
            Challenge::Bearer { .. }
        ));
        assert!(parse_challenge(r#"Bearer service="x""#).is_err());
        assert!(parse_challenge("Negotiate").is_err());
        assert!(parse_challenge("").is_err());
    }

    #[test]
    fn credentials_go_only_to_the_registry_or_its_siblings() {
        let ok = |realm, registry| check_realm(realm, registry, false, true).is_ok();
        assert!(ok("https://ghcr.io/token", "ghcr.io"));
        assert!(ok("https://auth.docker.io/token", "registry-1.docker.io"));
        assert!(ok("https://auth.docker.io/token", "docker.io"));
        assert!(ok("https://127.0.0.1:9000/token", "127.0.0.1:5000"));
        assert!(ok("https://[::1]:9000/token", "[::1]:5000"));
        assert!(ok("https://GHCR.io/token", "ghcr.io:443"));
        assert!(!ok("https://attacker.example/token", "ghcr.io"));
        assert!(!ok("https://localhost:9000/token", "127.0.0.1:5000"));
        assert!(!ok("https://127.0.0.2/token", "127.0.0.1:5000"));
        // A parent of one label is a top-level domain, not a site.
        assert!(!ok("https://evil.io/token", "ghcr.io"));
        assert!(!ok("https://ghcr.io.evil.example/token", "ghcr.io"));
        assert!(!ok("https://user:pw@ghcr.io/token", "ghcr.io"));
        assert!(!ok("ftp://ghcr.io/token", "ghcr.io"));
        assert!(!ok("/token", "ghcr.io"));
    }

    #[test]
    fn plain_http_realms_only_for_plain_http_registries_on_their_own_host() {
        let check = |realm, plain, creds| check_realm(realm, "127.0.0.1:5000", plain, creds);
        let err = check("http://127.0.0.1:5000/token", false, true).unwrap_err();
        assert!(
            err.to_string()
                .contains("over plain HTTP for an HTTPS registry"),
            "{err}"
        );
        assert!(check("http://127.0.0.1:5000/token", false, false).is_err());
        assert!(check("http://127.0.0.1:9000/token", true, true).is_ok());
        let err =
            check_realm("http://auth.example.com/t", "reg.example.com", true, true).unwrap_err();
        assert!(
            err.to_string().contains("plain HTTP on another host"),
            "{err}"
        );
    }

    #[test]
    fn anonymous_token_requests_may_go_to_any_realm() {
        assert!(check_realm("https://auth.example/t", "ghcr.io", false, false).is_ok());
        assert!(check_realm("http://auth.example/t", "127.0.0.1:5000", true, false).is_ok());
    }

    #[test]
    fn token_replies() {
        assert_eq!(token_from_reply(br#"{"token":"abc"}"#).unwrap(), "abc");
        assert_eq!(
            token_from_reply(br#"{"access_token":"xyz","expires_in":300}"#).unwrap(),
            "xyz"
        );
        assert!(token_from_reply(br#"{"token":""}"#).is_err());
        assert!(token_from_reply(b"<html>").is_err());
        assert_eq!(
            scope("vecproc/vector-service", false),
            "repository:vecproc/vector-service:pull"
        );
        assert_eq!(scope("a/b", true), "repository:a/b:pull,push");
    }
}
