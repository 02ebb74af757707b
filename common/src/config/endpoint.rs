//! How an array is reached: its management [`Endpoint`] (and what makes two endpoints the same
//! array) and its [`ApiToken`], which never shows in `Debug`, `Display` or errors.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An array API token. Never shown by `Debug` or `Display`; [`ApiToken::expose`] is the one way out,
/// used only to build the authentication request.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself, for the login request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A management endpoint: a host name, IPv4 or IPv6 address, with an optional port.
///
/// Accepted forms: `array1.example.com`, `10.0.0.5`, `10.0.0.5:8443`, `fd00::5`, `[fd00::5]`,
/// `[fd00::5]:8443`, each optionally prefixed by `https://`. Host names are kept lower-case and
/// addresses in their canonical form, so [`Endpoint::same_array_as`] only has to compare
/// [`Endpoint::authority`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    host: String,
    port: Option<u16>,
}

impl Endpoint {
    pub const DEFAULT_PORT: u16 = 443;

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(Self::DEFAULT_PORT)
    }

    /// Whether the user wrote a port (`Display` shows it only then).
    pub fn has_explicit_port(&self) -> bool {
        self.port.is_some()
    }

    /// `host:port`, with IPv6 addresses bracketed: what goes into a URL.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port())
        } else {
            format!("{}:{}", self.host, self.port())
        }
    }

    /// `https://host:port`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.authority())
    }

    /// The same array: same host (case-insensitive, as parsed) and port (443 when not written).
    /// `10.0.0.5`, `https://10.0.0.5:443/` and `10.0.0.5:443` are one array; `10.0.0.5:8443` is
    /// another.
    pub fn same_array_as(&self, other: &Endpoint) -> bool {
        self.host == other.host && self.port() == other.port()
    }
}

impl fmt::Display for Endpoint {
    /// As the user wrote it in spirit: the port only when it is not 443.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.host.contains(':')) {
            (None, _) => f.write_str(&self.host),
            (Some(p), true) => write!(f, "[{}]:{p}", self.host),
            (Some(p), false) => write!(f, "{}:{p}", self.host),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        if s.starts_with("http://") {
            return Err("arrays are managed over HTTPS only; use https:// or no scheme".into());
        }
        let s = s
            .strip_prefix("https://")
            .unwrap_or(s)
            .trim_end_matches('/');
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.contains('/') || s.contains('@') || s.chars().any(char::is_whitespace) {
            return Err(format!("{raw:?} is not a host, IP address or host:port"));
        }
        let parse_port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{raw:?} has an invalid port {p:?}"))
        };
        if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{raw:?} has an unclosed '['"))?;
            let ip: std::net::Ipv6Addr = addr
                .parse()
                .map_err(|_| format!("{raw:?}: {addr:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => {
                    Some(parse_port(after.strip_prefix(':').ok_or_else(|| {
                        format!("{raw:?}: expected ':port' after ']'")
                    })?)?)
                }
            };
            return Ok(Self {
                host: ip.to_string(),
                port,
            });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self {
                host: ip.to_string(),
                port: None,
            });
        }
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(parse_port(p)?)),
            None => (s, None),
        };
        let valid_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid_name {
            return Err(format!("{raw:?} is not a valid host name or IP address"));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        for (raw, authority) in [
            ("array1.example.com", "array1.example.com:443"),
            ("10.0.0.5:8443", "10.0.0.5:8443"),
            ("fd00::5", "[fd00::5]:443"),
            ("[fd00::5]", "[fd00::5]:443"),
            ("[fd00::5]:8443", "[fd00::5]:8443"),
            ("https://Array1:444/", "array1:444"),
        ] {
            let ep: Endpoint = raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(ep.authority(), authority, "{raw}");
        }
        for bad in [
            "",
            "http://a",
            "a:0",
            "a:99999",
            "[fd00::5",
            "a b",
            "a/b",
            "-a",
            "[1.2.3.4]",
        ] {
            assert!(
                bad.parse::<Endpoint>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn one_array_however_its_endpoint_is_written() {
        let ep = |s: &str| s.parse::<Endpoint>().expect("endpoint");
        assert!(ep("10.0.0.5").same_array_as(&ep("https://10.0.0.5:443/")));
        assert!(ep("Array1.Example.com").same_array_as(&ep("array1.example.com:443")));
        assert!(ep("fd00::5").same_array_as(&ep("[FD00:0::5]:443")));
        assert!(!ep("10.0.0.5").same_array_as(&ep("10.0.0.5:8443")));
        assert!(!ep("10.0.0.5").same_array_as(&ep("10.0.0.6")));
        assert!(!ep("10.0.0.5").has_explicit_port() && ep("10.0.0.5:443").has_explicit_port());
    }
}
