//! Authentication strategies: how each request proves who sends it.
//!
//! A connector names a strategy (`qimen_sign`, `kingdee`, `api_key`, `bearer`, `basic`,
//! `oauth2_client_credentials`, `login`, `signature`, `none`); at the start of a run its
//! settings are resolved from the environment into [`Secret`]s, once. Signing is delegated to
//! `sign`, which the sandboxes use to verify; sessions live in their strategy's file
//! ([`kingdee`], [`oauth2`], [`login`]), each implementing [`Authorize`]. Nothing here decides
//! retries: the client asks the strategy to [`Authenticator::reauthenticate`] when a response
//! says the session is gone (or, for the token strategies, answers 401), and renews a token
//! [`Authenticator::stale`] says is due before sending.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::config::model::{Auth, KingdeeMode, LoginAuth, OAuth2Auth, SignatureAuth};
use crate::error::{Error, ErrorKind, Result};
use crate::http::transport::{Body, Request, Response, Transport};
use crate::request::Env;
use crate::secret::Secret;
use crate::sign::qimen::{self, SignMethod};
use crate::template::{Leaf, TemplateSet};
use crate::tree;

pub mod kingdee;
pub mod login;
pub mod oauth2;
pub mod signature;
pub mod token;

/// One strategy: add its credentials to a request about to be sent at `now`, and say which
/// session (token generation) the request carries.
pub trait Authorize {
    fn authorize(&self, request: &mut Request, now: DateTime<Utc>) -> Result<Generation>;
}

/// A connector's resolved authentication.
#[derive(Debug)]
pub enum Authenticator {
    None,
    Qimen {
        app_key: String,
        secret: Secret,
        method: SignMethod,
    },
    Kingdee(kingdee::Session),
    ApiKey {
        in_query: bool,
        name: String,
        value: Secret,
    },
    Bearer {
        token: Secret,
    },
    Basic {
        username: String,
        password: Secret,
    },
    OAuth2(oauth2::ClientCredentials),
    Login(login::Session),
    Signature(Box<signature::Signer>),
}

/// Which session a request was sent with, so that concurrent callers that all saw the session
/// expire log in once, not once each.
pub type Generation = u64;

/// Evaluate a connector setting (a literal or a template over `env`).
pub fn setting(leaf: &Leaf, templates: &TemplateSet, env: &Env, what: &str) -> Result<String> {
    match leaf {
        Leaf::Literal(value) => Ok(value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string)),
        Leaf::Template(id) => {
            let scope = crate::template::scope::Scope::named(Vec::new()).with_env(env.clone());
            let value = tree::evaluate_template(*id, templates, scope).map_err(|err| {
                Error::config(format!("cannot work out {what}: {}", err.message))
                    .with_location(err.location)
            })?;
            Ok(value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string))
        }
    }
}

impl Authenticator {
    /// Resolve the connector's `auth` settings with the environment.
    pub fn resolve(
        auth: &Auth,
        templates: &TemplateSet,
        env: &Env,
        connector: &str,
    ) -> Result<Authenticator> {
        let get = |leaf: &Leaf, key: &str| {
            setting(
                leaf,
                templates,
                env,
                &format!("`auth.{key}` of connector `{connector}`"),
            )
        };
        let optional = |leaf: &Option<Leaf>, key: &str| -> Result<String> {
            match leaf {
                Some(leaf) => get(leaf, key),
                None => Ok(String::new()),
            }
        };
        Ok(match auth {
            Auth::None => Authenticator::None,
            Auth::QimenSign {
                app_key,
                secret,
                sign_method,
            } => Authenticator::Qimen {
                app_key: get(app_key, "app_key")?,
                secret: Secret::new(get(secret, "secret")?),
                method: *sign_method,
            },
            Auth::Kingdee(settings) => {
                let app_id = optional(&settings.app_id, "app_id")?;
                let app_secret = optional(&settings.app_secret, "app_secret")?;
                let password = optional(&settings.password, "password")?;
                let mode = match settings.mode {
                    KingdeeMode::Auto if !app_id.is_empty() && !app_secret.is_empty() => {
                        KingdeeMode::AppSignature
                    }
                    KingdeeMode::Auto => KingdeeMode::Password,
                    mode => mode,
                };
                if mode == KingdeeMode::Password && password.is_empty() {
                    return Err(Error::new(ErrorKind::Auth, format!("connector `{connector}` has neither an app id and secret nor a password"))
                        .with_hint("set KINGDEE_APP_ID and KINGDEE_APP_SECRET (app signature) or KINGDEE_PASSWORD (password login)"));
                }
                let lcid = optional(&settings.lcid, "lcid")?;
                let org_num = optional(&settings.org_num, "org_num")?;
                Authenticator::Kingdee(kingdee::Session::new(kingdee::Credentials {
                    mode,
                    acct_id: get(&settings.acct_id, "acct_id")?,
                    username: get(&settings.username, "username")?,
                    app_id,
                    app_secret: Secret::new(app_secret),
                    password: Secret::new(password),
                    lcid: if lcid.is_empty() {
                        2052
                    } else {
                        parse_number(&lcid, "lcid", connector)? as u32
                    },
                    org_num: if org_num.is_empty() {
                        0
                    } else {
                        parse_number(&org_num, "org_num", connector)?
                    },
                }))
            }
            Auth::ApiKey {
                in_query,
                name,
                value,
            } => Authenticator::ApiKey {
                in_query: *in_query,
                name: name.clone(),
                value: Secret::new(get(value, "value")?),
            },
            Auth::Bearer { token } => Authenticator::Bearer {
                token: Secret::new(get(token, "token")?),
            },
            Auth::Basic { username, password } => Authenticator::Basic {
                username: get(username, "username")?,
                password: Secret::new(get(password, "password")?),
            },
            Auth::OAuth2(settings) => oauth2_client(settings, &get, connector)?,
            Auth::Login(settings) => login_session(settings, &get, connector)?,
            Auth::Signature(settings) => signer(settings, &get, env, connector)?,
        })
    }

    /// The token generation to renew before the next request: none yet, or due to expire.
    pub fn stale(&self) -> Option<Generation> {
        match self {
            Authenticator::OAuth2(client) => client.stale(),
            Authenticator::Login(session) => session.stale(),
            _ => None,
        }
    }

    /// The endpoint this strategy fetches its token or session from when it is given as a
    /// whole URL (it may be on another host than the API, behind another proxy, or none).
    pub fn endpoint_url(&self) -> Option<&str> {
        let url = match self {
            Authenticator::OAuth2(client) => client.token_url(),
            Authenticator::Login(session) => session.path(),
            _ => return None,
        };
        (url.starts_with("http://") || url.starts_with("https://")).then_some(url)
    }

    /// Whether an HTTP 401 means "renew the token and repeat", rather than an answer.
    pub fn renews_on_401(&self) -> bool {
        matches!(self, Authenticator::OAuth2(_) | Authenticator::Login(_))
    }

    /// Log in before the first request, where the strategy needs a session up front.
    pub async fn start(&self, transport: &Transport, base_url: &str) -> Result<()> {
        match self {
            Authenticator::Kingdee(session) => session.start(transport, base_url).await,
            // Fetched up front so that refused credentials stop the run before it reads.
            Authenticator::OAuth2(_) | Authenticator::Login(_) => match self.stale() {
                Some(generation) => self.reauthenticate(transport, base_url, generation).await,
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Add credentials to a request about to be sent; `now` is the signing time.
    pub fn apply(&self, request: &mut Request, now: DateTime<Utc>) -> Result<Generation> {
        match self {
            Authenticator::None => {}
            Authenticator::Qimen {
                app_key,
                secret,
                method,
            } => sign_qimen(request, app_key, secret, *method, now),
            Authenticator::Kingdee(session) => return session.apply(request, now),
            Authenticator::OAuth2(client) => return client.authorize(request, now),
            Authenticator::Login(session) => return session.authorize(request, now),
            Authenticator::Signature(signer) => return signer.authorize(request, now),
            Authenticator::ApiKey {
                in_query: true,
                name,
                value,
            } => request
                .query
                .push((name.clone(), value.expose().to_string())),
            Authenticator::ApiKey {
                in_query: false,
                name,
                value,
            } => request
                .headers
                .push((name.clone(), value.expose().to_string())),
            Authenticator::Bearer { token } => request
                .headers
                .push(("Authorization".into(), format!("Bearer {}", token.expose()))),
            Authenticator::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()));
                request
                    .headers
                    .push(("Authorization".into(), format!("Basic {encoded}")));
            }
        }
        Ok(0)
    }

    /// Remember what a response says about the session (cookies).
    pub fn observe(&self, response: &Response) {
        if let Authenticator::Kingdee(session) = self {
            session.observe(response);
        }
    }

    /// The session a request used (`used`) is gone: make the next request carry a fresh one.
    /// Strategies without sessions cannot recover: the credentials are refused.
    pub async fn reauthenticate(
        &self,
        transport: &Transport,
        base_url: &str,
        used: Generation,
    ) -> Result<()> {
        match self {
            Authenticator::Kingdee(session) => {
                session.reauthenticate(transport, base_url, used).await
            }
            Authenticator::OAuth2(client) => client.reauthenticate(transport, base_url, used).await,
            Authenticator::Login(session) => {
                session.reauthenticate(transport, base_url, used).await
            }
            _ => Err(Error::new(
                ErrorKind::Auth,
                "the API refused the credentials",
            )),
        }
    }
}

/// Where an auth endpoint (`text`: an http(s) URL, or a path on `base_url`) is.
pub fn endpoint(base_url: &str, text: &str, who: &str) -> Result<String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.to_string())
    } else if text.starts_with('/') {
        Ok(crate::http::transport::join_url(base_url, text))
    } else {
        Err(Error::config(format!(
            "{who} is at `{text}`, not an http(s) URL or a path starting with `/`"
        )))
    }
}

type Get<'a> = dyn Fn(&Leaf, &str) -> Result<String> + 'a;

fn oauth2_client(settings: &OAuth2Auth, get: &Get, connector: &str) -> Result<Authenticator> {
    let optional = |leaf: &Option<Leaf>, key: &str| leaf.as_ref().map(|l| get(l, key)).transpose();
    let token_url = get(&settings.token_url, "token_url")?;
    endpoint(
        "",
        &token_url,
        &format!("the token endpoint of connector `{connector}`"),
    )?;
    let credentials = oauth2::Credentials {
        token_url,
        client_id: get(&settings.client_id, "client_id")?,
        client_secret: Secret::new(get(&settings.client_secret, "client_secret")?),
        scope: optional(&settings.scope, "scope")?,
        audience: optional(&settings.audience, "audience")?,
        basic: settings.basic,
    };
    Ok(Authenticator::OAuth2(oauth2::ClientCredentials::new(
        credentials,
        connector,
    )))
}

fn login_session(settings: &LoginAuth, get: &Get, connector: &str) -> Result<Authenticator> {
    let fields = |fields: &[(String, Leaf)], key: &str| -> Result<Vec<(String, Secret)>> {
        fields
            .iter()
            .map(|(name, leaf)| {
                let value = get(leaf, &format!("request.{key}.{name}"))?;
                Ok((name.clone(), Secret::new(value)))
            })
            .collect()
    };
    let request = login::LoginRequest {
        method: settings.method,
        path: get(&settings.path, "request.path")?,
        form: fields(&settings.form, "form")?,
        json: fields(&settings.json, "json")?,
    };
    endpoint(
        "",
        &request.path,
        &format!("the login of connector `{connector}`"),
    )?;
    let token = match &settings.token {
        crate::config::model::LoginToken::Body(path) => {
            crate::config::model::LoginToken::Body(path.clone())
        }
        crate::config::model::LoginToken::Cookie(name) => {
            crate::config::model::LoginToken::Cookie(name.clone())
        }
    };
    Ok(Authenticator::Login(login::Session::new(
        request,
        token,
        settings.send.clone(),
        connector,
    )))
}

fn signer(
    settings: &SignatureAuth,
    get: &Get,
    env: &Env,
    connector: &str,
) -> Result<Authenticator> {
    let resolved = signature::Settings {
        secret: Secret::new(get(&settings.secret, "secret")?),
        algorithm: settings.algorithm,
        encoding: settings.encoding,
        location: settings.location,
        name: settings.name.clone(),
    };
    let signer = signature::Signer::new(
        resolved,
        &settings.params,
        &settings.string_to_sign,
        env,
        connector,
    )?;
    Ok(Authenticator::Signature(Box::new(signer)))
}

fn parse_number(text: &str, key: &str, connector: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| {
        Error::config(format!(
            "`auth.{key}` of connector `{connector}` must be a number, not `{text}`"
        ))
    })
}

/// Qimen/TOP: add the system parameters and sign every parameter (form, query and any raw body).
fn sign_qimen(
    request: &mut Request,
    app_key: &str,
    secret: &Secret,
    method: SignMethod,
    now: DateTime<Utc>,
) {
    let system = [
        ("app_key".to_string(), app_key.to_string()),
        ("timestamp".to_string(), crate::time::wall_clock(now)),
        ("sign_method".to_string(), method.as_str().to_string()),
    ];
    let fields = match &mut request.body {
        Body::Form(fields) => fields,
        _ => &mut request.query,
    };
    for (name, value) in system {
        fields.retain(|(n, _)| n != &name);
        fields.push((name, value));
    }
    let mut all: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in request.query.iter().chain(match &request.body {
        Body::Form(fields) => fields.iter(),
        _ => [].iter(),
    }) {
        all.insert(name, value);
    }
    let raw_body: &[u8] = match &request.body {
        Body::Json(bytes) => bytes,
        _ => b"",
    };
    let sign = qimen::sign_with_body(all, raw_body, secret.expose(), method);
    match &mut request.body {
        Body::Form(fields) => fields.push(("sign".into(), sign)),
        _ => request.query.push(("sign".into(), sign)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::HttpMethod;

    #[test]
    fn qimen_requests_carry_the_system_parameters_and_the_spec_signature() {
        let mut request = Request {
            method: HttpMethod::Post,
            url: "http://router/qm".into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Form(
                [
                    ("method", "wdt.stockin.order.query.refund"),
                    ("format", "json"),
                    ("v", "2.0"),
                    ("target_app_key", "87654321"),
                    ("sid", "test2"),
                    ("start_time", "2024-01-01 00:00:00"),
                    ("end_time", "2024-01-01 23:59:59"),
                    ("page_no", "0"),
                    ("page_size", "40"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
        };
        let auth = Authenticator::Qimen {
            app_key: "12345678".into(),
            secret: Secret::new("test_secret"),
            method: SignMethod::Md5,
        };
        let now = crate::time::parse_instant("2024-01-01 12:00:00").unwrap();
        auth.apply(&mut request, now).unwrap();
        let Body::Form(fields) = &request.body else {
            panic!("a form")
        };
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("timestamp"), Some("2024-01-01 12:00:00"));
        assert_eq!(get("app_key"), Some("12345678"));
        // The test vector of spec §2.3.
        assert_eq!(get("sign"), Some("C659C284B1E8836251F1AA50BF933259"));
    }
}
