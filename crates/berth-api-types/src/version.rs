//! API versions: the `/v1.xx/` path prefix and the `API-Version` header.

use std::fmt;
use std::str::FromStr;

/// A Docker API version such as `1.50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    /// The oldest version berthd accepts.
    pub const MIN: ApiVersion = ApiVersion {
        major: 1,
        minor: 24,
    };
    /// The version berthd implements (what the docker CLI 28 speaks).
    pub const CURRENT: ApiVersion = ApiVersion {
        major: 1,
        minor: 50,
    };

    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let (a, b) = s
            .split_once('.')
            .ok_or_else(|| format!("invalid API version {s:?}"))?;
        let major = a
            .parse()
            .map_err(|_| format!("invalid API version {s:?}"))?;
        let minor = b
            .parse()
            .map_err(|_| format!("invalid API version {s:?}"))?;
        Ok(ApiVersion { major, minor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let v: ApiVersion = "v1.41".parse().unwrap();
        assert_eq!(v, ApiVersion::new(1, 41));
        assert!(v < ApiVersion::CURRENT && v > ApiVersion::MIN);
        assert!("1.x".parse::<ApiVersion>().is_err());
        assert_eq!(ApiVersion::CURRENT.to_string(), "1.50");
    }
}
