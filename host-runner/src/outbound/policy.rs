//! Which outbound requests a guest may make: `--outbound-allow` rules.
//!
//! A rule is `[SCHEME://]HOST[:PORT]`. `SCHEME` is `http` or `https` (any of
//! the two when left out); `HOST` is a name (matched without regard to
//! case), `*.NAME` (any name under NAME, not NAME itself), `*` (any host),
//! an IPv4 address or a bracketed IPv6 one; `PORT` is a number or `*`, and
//! when left out it is the scheme's default (80 or 443; both when the scheme
//! is left out too). Spin's `allowed_outbound_hosts` reads the same way.
//!
//! The rules are checked against the request as the guest addressed it
//! (scheme, host and port of its URL), before any name is resolved. With no
//! rules nothing is allowed: a sandbox reaches no network unless told.
//! Pure: no I/O, no Wasmtime.

use std::fmt;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.suffix`: the stored suffix starts with a dot.
    Subdomains(String),
    Exact(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
    /// Left out: the scheme's default.
    Default,
}

/// One `--outbound-allow` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    text: String,
    scheme: Option<Scheme>,
    host: HostPattern,
    port: PortPattern,
}

/// A rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--outbound-allow {rule:?}: {problem} (expected [http://|https://]HOST[:PORT|:*], HOST a name, *.NAME, *, an IP or [IPv6])")]
pub struct RuleError {
    /// The rule as given.
    pub rule: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::str::FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Self, RuleError> {
        let error = |problem: &str| RuleError {
            rule: text.to_string(),
            problem: problem.to_string(),
        };
        let (scheme, rest) = match text.split_once("://") {
            Some(("http", rest)) => (Some(Scheme::Http), rest),
            Some(("https", rest)) => (Some(Scheme::Https), rest),
            Some((other, _)) => {
                return Err(error(&format!("the scheme {other:?} is not http or https")))
            }
            None => (None, text),
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(error("a rule names a host and port, not a path or user"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| error("an IPv6 address is not closed with ]"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| error("not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| error("expected :PORT after ]"))?,
                ),
            };
            (format!("[{addr}]"), port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
                None => (rest.to_ascii_lowercase(), None),
            }
        };
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| error("the port is not a number from 1 to 65535 or *"))?,
            ),
        };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            check_name(suffix).map_err(&error)?;
            HostPattern::Subdomains(format!(".{suffix}"))
        } else {
            if !host.starts_with('[') {
                check_name(&host).map_err(&error)?;
            }
            HostPattern::Exact(host)
        };
        Ok(Rule {
            text: text.to_string(),
            scheme,
            host,
            port,
        })
    }
}

/// A host name or IPv4 address: labels of letters, digits, `-` and `_`.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the host is empty");
    }
    if name.contains('*') {
        return Err("* stands only for a whole host or as *.NAME");
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if ok {
        Ok(())
    } else {
        Err("the host is not a name or an IP address")
    }
}

impl Rule {
    /// Whether the rule allows `scheme://host:port` (`host` as in a URL:
    /// a name, an IPv4 address, or `[IPv6]`).
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if self.scheme.is_some_and(|s| s != scheme) {
            return false;
        }
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
            PortPattern::Default => port == scheme.default_port(),
        };
        if !port_ok {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomains(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => *h == host,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Every `--outbound-allow` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    /// The rules, parsed.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// Whether any rule allows the request.
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        self.rules.iter().any(|r| r.allows(scheme, host, port))
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as given, for the startup line.
    pub fn summary(&self) -> String {
        if self.rules.is_empty() {
            return "outbound HTTP: denied to every host (--outbound-allow grants it)".into();
        }
        let rules: Vec<String> = self.rules.iter().map(Rule::to_string).collect();
        format!("outbound HTTP: allowed to {}", rules.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Scheme::{Http, Https};

    fn rule(text: &str) -> Rule {
        text.parse().unwrap()
    }

    #[test]
    fn ports_default_to_the_scheme() {
        let r = rule("example.com");
        assert!(r.allows(Http, "example.com", 80));
        assert!(r.allows(Https, "EXAMPLE.com", 443));
        assert!(!r.allows(Http, "example.com", 443));
        assert!(!r.allows(Https, "example.com", 8443));
        let r = rule("https://example.com");
        assert!(!r.allows(Http, "example.com", 80));
        assert!(r.allows(Https, "example.com.", 443));
        let r = rule("http://127.0.0.1:*");
        assert!(r.allows(Http, "127.0.0.1", 9));
        assert!(!r.allows(Https, "127.0.0.1", 9));
        let r = rule("127.0.0.1:8080");
        assert!(r.allows(Http, "127.0.0.1", 8080) && r.allows(Https, "127.0.0.1", 8080));
        assert!(!r.allows(Http, "127.0.0.2", 8080));
    }

    #[test]
    fn wildcards_cover_what_they_say() {
        let r = rule("*.example.com:*");
        assert!(r.allows(Https, "api.example.com", 1));
        assert!(r.allows(Https, "a.b.example.com", 1));
        assert!(!r.allows(Https, "example.com", 443));
        assert!(!r.allows(Https, "badexample.com", 443));
        let r = rule("*:*");
        assert!(r.allows(Http, "anything", 1) && r.allows(Https, "[::1]", 2));
        let r = rule("[::1]:8080");
        assert!(r.allows(Http, "[::1]", 8080));
        assert!(!r.allows(Http, "[::2]", 8080));
    }

    #[test]
    fn nothing_is_allowed_without_rules() {
        let list = AllowList::default();
        assert!(!list.allows(Http, "127.0.0.1", 80));
        assert!(list.summary().contains("denied to every host"));
        let list = AllowList::new(vec![rule("a.test"), rule("https://b.test:8443")]);
        assert!(list.allows(Https, "b.test", 8443));
        assert!(!list.allows(Http, "b.test", 8443));
        assert_eq!(
            list.summary(),
            "outbound HTTP: allowed to a.test, https://b.test:8443"
        );
    }

    #[test]
    fn bad_rules_are_explained() {
        for (text, problem) in [
            ("ftp://x", "the scheme \"ftp\" is not http or https"),
            ("x/path", "a rule names a host and port, not a path or user"),
            ("x:0", "the port is not a number from 1 to 65535 or *"),
            ("x:http", "the port is not a number from 1 to 65535 or *"),
            ("a.*.com", "* stands only for a whole host or as *.NAME"),
            ("", "the host is empty"),
            ("[::1", "an IPv6 address is not closed with ]"),
            ("[nope]:1", "not an IPv6 address"),
            ("bad host", "the host is not a name or an IP address"),
        ] {
            let err = text.parse::<Rule>().unwrap_err();
            assert_eq!(err.problem, problem, "{text}");
            assert!(err
                .to_string()
                .starts_with(&format!("--outbound-allow {text:?}: {problem}")));
        }
    }
}
