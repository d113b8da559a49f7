//! Which proxy, if any, carries a connector's requests.
//!
//! `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (or their lower-case forms) are
//! read the way curl reads them, by the matcher reqwest itself uses. The decision is made
//! once per connector, from its base URL, and once for a token or login endpoint on another
//! origin, from its own URL: a connector talks to those origins only (redirects to another are
//! never followed), so the run header can say truthfully which way each goes. Pure: the variables come in as a map, and a proxy prints without the
//! credentials its URL may carry.

use hyper::Uri;
use hyper_util::client::proxy::matcher::Matcher;

use crate::error::{Error, ErrorKind, Result};
use crate::request::Env;

/// The proxy settings of the environment.
pub struct Proxies(Matcher);

/// A proxy a connector goes through.
#[derive(Clone)]
pub struct Proxy {
    /// `scheme://host:port`, never the credentials.
    pub shown: String,
    proxy: reqwest::Proxy,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Proxy").field(&self.shown).finish()
    }
}

impl Proxy {
    pub fn reqwest(&self) -> reqwest::Proxy {
        self.proxy.clone()
    }
}

/// The first of `names` that is set.
fn first<'a>(env: &'a Env, names: [&str; 2]) -> &'a str {
    names
        .iter()
        .find_map(|name| env.get(*name))
        .map_or("", String::as_str)
}

impl Proxies {
    /// The proxies `env` names. Under CGI (`REQUEST_METHOD` set) the variables are ignored,
    /// since a request header can set `HTTP_PROXY` there ("httpoxy").
    pub fn from_env(env: &Env) -> Proxies {
        if env.contains_key("REQUEST_METHOD") {
            return Proxies::none();
        }
        Proxies(
            Matcher::builder()
                .all(first(env, ["ALL_PROXY", "all_proxy"]))
                .http(first(env, ["HTTP_PROXY", "http_proxy"]))
                .https(first(env, ["HTTPS_PROXY", "https_proxy"]))
                .no(first(env, ["NO_PROXY", "no_proxy"]))
                .build(),
        )
    }

    pub fn none() -> Proxies {
        Proxies(Matcher::builder().build())
    }

    /// The proxy requests to `url` go through, if any.
    pub fn for_url(&self, url: &str) -> Result<Option<Proxy>> {
        let Ok(uri) = url.parse::<Uri>() else {
            return Ok(None);
        };
        let Some(intercept) = self.0.intercept(&uri) else {
            return Ok(None);
        };
        let proxy_uri = intercept.uri();
        let scheme = proxy_uri.scheme_str().unwrap_or("http");
        let authority = proxy_uri.authority().map_or("", |a| a.as_str());
        let shown = format!("{scheme}://{authority}");
        let unusable = |why: String| {
            Error::new(
                ErrorKind::Network,
                format!("cannot use the proxy `{shown}` set in the environment: {why}"),
            )
            .with_hint("unset HTTP_PROXY/HTTPS_PROXY/ALL_PROXY, or add the API's host to NO_PROXY")
        };
        if scheme != "http" && scheme != "https" {
            return Err(unusable(format!(
                "engine speaks to HTTP proxies only, not `{scheme}`"
            )));
        }
        let mut proxy =
            reqwest::Proxy::all(proxy_uri.to_string()).map_err(|err| unusable(err.to_string()))?;
        if let Some(auth) = intercept.basic_auth() {
            proxy = proxy.custom_http_auth(auth.clone());
        }
        Ok(Some(Proxy { shown, proxy }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(vars: &[(&str, &str)], url: &str) -> Option<String> {
        let env: Env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::from_env(&env)
            .for_url(url)
            .unwrap()
            .map(|proxy| proxy.shown)
    }

    type Vars = &'static [(&'static str, &'static str)];

    #[test]
    fn the_proxy_of_a_url_follows_the_variables_as_curl_reads_them() {
        let cases: &[(Vars, &str, Option<&str>)] = &[
            (&[], "https://api.example.com", None),
            (
                &[("HTTP_PROXY", "http://p:3128")],
                "http://api.example.com/x",
                Some("http://p:3128"),
            ),
            // HTTP_PROXY does not carry https.
            (
                &[("HTTP_PROXY", "http://p:3128")],
                "https://api.example.com",
                None,
            ),
            (
                &[("https_proxy", "http://p:8080")],
                "https://api.example.com",
                Some("http://p:8080"),
            ),
            (
                &[("ALL_PROXY", "http://p:1")],
                "https://api.example.com",
                Some("http://p:1"),
            ),
            // Credentials are used, never shown.
            (
                &[("ALL_PROXY", "http://user:s3cret@p:3128")],
                "http://api.example.com",
                Some("http://p:3128"),
            ),
            (
                &[("ALL_PROXY", "http://p:1"), ("NO_PROXY", "example.com")],
                "https://api.example.com",
                None,
            ),
            (
                &[("ALL_PROXY", "http://p:1"), ("no_proxy", "127.0.0.0/8")],
                "http://127.0.0.1:9000/router",
                None,
            ),
            (
                &[("ALL_PROXY", "http://p:1"), ("NO_PROXY", "other.com")],
                "https://api.example.com",
                Some("http://p:1"),
            ),
            // httpoxy: under CGI a request header could have set HTTP_PROXY.
            (
                &[("HTTP_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")],
                "http://api.example.com",
                None,
            ),
        ];
        for (vars, url, expected) in cases {
            assert_eq!(shown(vars, url).as_deref(), *expected, "{vars:?} for {url}");
        }
    }

    #[test]
    fn a_socks_proxy_is_refused_by_name() {
        let env: Env = [("ALL_PROXY".to_string(), "socks5://u:pw@p:1080".to_string())]
            .into_iter()
            .collect();
        let err = Proxies::from_env(&env)
            .for_url("https://api.example.com")
            .unwrap_err();
        assert!(
            err.message().contains("`socks5://p:1080`"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("pw"), "{}", err.message());
    }
}
