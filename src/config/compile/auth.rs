//! Compiling a connector's `auth` section: each strategy's raw settings into its
//! [`Auth`] variant, with every mistake `check` can see reported at its key (an unknown
//! algorithm or placement, a token URL that is not http(s), a login token given two ways).
//! Settings are templates over `env` (the `signature` templates see the request too); they
//! are resolved once per run by `auth::Authenticator::resolve`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::{Compiler, Context};
use crate::config::model::{
    Auth, KingdeeAuth, KingdeeMode, LoginAuth, LoginToken, OAuth2Auth, PlaceIn, Placement,
    SignatureAuth, SignatureIn,
};
use crate::config::raw::{HttpMethod, RawAuth, RawLoginRequest, RawLoginToken, RawPlacement};
use crate::config::yaml::{Document, YamlPath};
use crate::error::did_you_mean;
use crate::sign::digest::{Algorithm, Encoding as DigestEncoding};

pub(super) fn compile_auth(cx: &mut Compiler, doc: &Document, raw: &RawAuth) -> Auth {
    let path = YamlPath::root().key("auth");
    let settings = Context::ConnectorSettings;
    let leaf =
        |cx: &mut Compiler, key: &str, text: &str| cx.leaf(doc, &path.key(key), text, settings);
    match raw {
        RawAuth::None => Auth::None,
        RawAuth::QimenSign {
            app_key,
            secret,
            sign_method,
        } => {
            let sign_method = match sign_method.as_deref().unwrap_or("md5").parse() {
                Ok(method) => method,
                Err(_) => {
                    let given = sign_method.clone().unwrap_or_default();
                    let hint = did_you_mean(&given, ["md5", "hmac", "hmac-sha256"])
                        .map_or("one of `md5`, `hmac`, `hmac-sha256`".to_string(), |s| {
                            format!("did you mean `{s}`?")
                        });
                    cx.error(
                        format!("unknown `sign_method` `{given}`"),
                        doc.locate(&path.key("sign_method")),
                        Some(hint),
                    );
                    crate::sign::qimen::SignMethod::Md5
                }
            };
            Auth::QimenSign {
                app_key: leaf(cx, "app_key", app_key),
                secret: leaf(cx, "secret", secret),
                sign_method,
            }
        }
        RawAuth::Kingdee {
            mode,
            acct_id,
            username,
            app_id,
            app_secret,
            password,
            lcid,
            org_num,
        } => {
            let mode = match mode.as_deref().unwrap_or("auto") {
                "auto" => KingdeeMode::Auto,
                "app_signature" => KingdeeMode::AppSignature,
                "password" => KingdeeMode::Password,
                other => {
                    let hint = did_you_mean(other, ["auto", "app_signature", "password"]).map_or(
                        "one of `auto`, `app_signature`, `password`".to_string(),
                        |s| format!("did you mean `{s}`?"),
                    );
                    cx.error(
                        format!("unknown Kingdee auth `mode` `{other}`"),
                        doc.locate(&path.key("mode")),
                        Some(hint),
                    );
                    KingdeeMode::Auto
                }
            };
            if mode == KingdeeMode::AppSignature && (app_id.is_none() || app_secret.is_none()) {
                cx.error(
                    "`mode: app_signature` needs `app_id` and `app_secret`",
                    doc.locate_key(&path.key("mode")),
                    None,
                );
            }
            if mode == KingdeeMode::Password && password.is_none() {
                cx.error(
                    "`mode: password` needs `password`",
                    doc.locate_key(&path.key("mode")),
                    None,
                );
            }
            let optional = |cx: &mut Compiler, key: &str, text: &Option<String>| {
                text.as_ref().map(|t| leaf(cx, key, t))
            };
            Auth::Kingdee(Box::new(KingdeeAuth {
                mode,
                acct_id: leaf(cx, "acct_id", acct_id),
                username: leaf(cx, "username", username),
                app_id: optional(cx, "app_id", app_id),
                app_secret: optional(cx, "app_secret", app_secret),
                password: optional(cx, "password", password),
                lcid: optional(cx, "lcid", lcid),
                org_num: optional(cx, "org_num", org_num),
            }))
        }
        RawAuth::ApiKey {
            location,
            name,
            value,
        } => {
            let in_query = match location.as_deref().unwrap_or("header") {
                "header" => false,
                "query" => true,
                other => {
                    cx.error(
                        format!("`in` is `header` or `query`, not `{other}`"),
                        doc.locate(&path.key("in")),
                        None,
                    );
                    false
                }
            };
            Auth::ApiKey {
                in_query,
                name: name.clone(),
                value: leaf(cx, "value", value),
            }
        }
        RawAuth::Bearer { token } => Auth::Bearer {
            token: leaf(cx, "token", token),
        },
        RawAuth::Basic { username, password } => Auth::Basic {
            username: leaf(cx, "username", username),
            password: leaf(cx, "password", password),
        },
        RawAuth::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
            audience,
            client_auth,
        } => {
            check_endpoint(cx, doc, &path.key("token_url"), token_url);
            let basic = match client_auth.as_deref().unwrap_or("client_secret_post") {
                "client_secret_post" => false,
                "client_secret_basic" => true,
                other => {
                    unknown_choice(cx, doc, &path.key("client_auth"), other, &CLIENT_AUTHS);
                    false
                }
            };
            let optional = |cx: &mut Compiler, key: &str, text: &Option<String>| {
                text.as_ref().map(|t| leaf(cx, key, t))
            };
            Auth::OAuth2(Box::new(OAuth2Auth {
                token_url: leaf(cx, "token_url", token_url),
                client_id: leaf(cx, "client_id", client_id),
                client_secret: leaf(cx, "client_secret", client_secret),
                scope: optional(cx, "scope", scope),
                audience: optional(cx, "audience", audience),
                basic,
            }))
        }
        RawAuth::Login {
            request,
            token,
            send,
        } => compile_login(cx, doc, &path, request, token, send),
        RawAuth::Signature {
            secret,
            params,
            string_to_sign,
            algorithm,
            encoding,
            signature,
        } => {
            let signing = Context::Signature;
            let algorithm = Algorithm::from_name(algorithm).unwrap_or_else(|| {
                unknown_choice(
                    cx,
                    doc,
                    &path.key("algorithm"),
                    algorithm,
                    &Algorithm::NAMES,
                );
                Algorithm::Md5
            });
            let encoding_name = encoding.as_deref().unwrap_or("hex_upper");
            let encoding = DigestEncoding::from_name(encoding_name).unwrap_or_else(|| {
                unknown_choice(
                    cx,
                    doc,
                    &path.key("encoding"),
                    encoding_name,
                    &DigestEncoding::NAMES,
                );
                DigestEncoding::HexUpper
            });
            let place = path.key("signature");
            let location = match signature.location.as_deref().unwrap_or("param") {
                "param" => SignatureIn::Param,
                "query" => SignatureIn::Query,
                "header" => SignatureIn::Header,
                other => {
                    unknown_choice(
                        cx,
                        doc,
                        &place.key("in"),
                        other,
                        &["param", "query", "header"],
                    );
                    SignatureIn::Param
                }
            };
            // Compiled here so that `check` reports syntax and names; the signer compiles
            // the same texts again at the run's start, as they read the request.
            let mut added = Vec::new();
            for (name, value) in params {
                let at = path.key("params").key(name);
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.to_string(),
                    _ => {
                        cx.error(
                            format!("parameter `{name}` must be a text, number or boolean"),
                            doc.locate(&at),
                            None,
                        );
                        continue;
                    }
                };
                cx.leaf(doc, &at, &text, signing);
                added.push((name.clone(), text));
            }
            cx.leaf(doc, &path.key("string_to_sign"), string_to_sign, signing);
            Auth::Signature(Box::new(SignatureAuth {
                secret: leaf(cx, "secret", secret),
                params: added,
                string_to_sign: string_to_sign.clone(),
                algorithm,
                encoding,
                location,
                name: signature.name.clone(),
            }))
        }
    }
}

const CLIENT_AUTHS: [&str; 2] = ["client_secret_post", "client_secret_basic"];

/// Report `given` at `at` as not one of `choices`, with a "did you mean".
fn unknown_choice(cx: &mut Compiler, doc: &Document, at: &YamlPath, given: &str, choices: &[&str]) {
    let listed = choices
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = did_you_mean(given, choices.iter().copied())
        .map_or(format!("one of {listed}"), |s| {
            format!("did you mean `{s}`?")
        });
    let key = at.to_string();
    let key = key.rsplit('.').next().unwrap_or(&key).to_string();
    cx.error(
        format!("unknown `{key}` `{given}`"),
        doc.locate(at),
        Some(hint),
    );
}

/// An endpoint of the auth strategy (a token URL, a login path): an http(s) URL or a path on
/// the connector's `base_url`. A template is checked when it is resolved, at the run's start.
fn check_endpoint(cx: &mut Compiler, doc: &Document, at: &YamlPath, text: &str) {
    if text.contains("{{") {
        return;
    }
    let fine = text.starts_with("http://") || text.starts_with("https://") || text.starts_with('/');
    if !fine {
        cx.error(
            format!("`{text}` is not an http(s) URL or a path starting with `/`"),
            doc.locate(at),
            Some("write a full URL such as `https://auth.example.com/token`, or a path such as `/token` on the connector's `base_url`".into()),
        );
    }
}

fn compile_login(
    cx: &mut Compiler,
    doc: &Document,
    path: &YamlPath,
    request: &RawLoginRequest,
    token: &RawLoginToken,
    send: &RawPlacement,
) -> Auth {
    let settings = Context::ConnectorSettings;
    let at = path.key("request");
    check_endpoint(cx, doc, &at.key("path"), &request.path);
    let fields = |cx: &mut Compiler, key: &str, map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(name, text)| {
                let leaf = cx.leaf(doc, &at.key(key).key(name), text, settings);
                (name.clone(), leaf)
            })
            .collect::<Vec<_>>()
    };
    let form = fields(cx, "form", &request.form);
    let json = fields(cx, "json", &request.json);
    if !form.is_empty() && !json.is_empty() {
        cx.error(
            "the login request has both `form` and `json`",
            doc.locate_key(&at.key("json")),
            Some("a request has one body: keep the one the API expects".into()),
        );
    }
    let token_at = path.key("token");
    let token = match (&token.path, &token.cookie) {
        (Some(text), None) => cx
            .json_path(doc, &token_at.key("path"), text)
            .map_or(LoginToken::Cookie(String::new()), LoginToken::Body),
        (None, Some(name)) => LoginToken::Cookie(name.clone()),
        _ => {
            cx.error(
                "`token` needs exactly one of `path` (a JSONPath into the body) and `cookie`",
                doc.locate_key(&token_at),
                Some(
                    "e.g. `token: { path: $.access_token }` or `token: { cookie: SESSIONID }`"
                        .into(),
                ),
            );
            LoginToken::Cookie(String::new())
        }
    };
    let send_at = path.key("send");
    let location = match send.location.as_deref().unwrap_or("header") {
        "header" => PlaceIn::Header,
        "query" => PlaceIn::Query,
        "cookie" => PlaceIn::Cookie,
        other => {
            unknown_choice(
                cx,
                doc,
                &send_at.key("in"),
                other,
                &["header", "query", "cookie"],
            );
            PlaceIn::Header
        }
    };
    let value = send.value.as_deref().unwrap_or("{{ token }}");
    let (prefix, suffix) = match TOKEN_SLOT.find(value) {
        Some(slot) if TOKEN_SLOT.find_iter(value).count() == 1 => (
            value[..slot.start()].to_string(),
            value[slot.end()..].to_string(),
        ),
        _ => {
            cx.error(
                format!("`{value}` must hold `{{{{ token }}}}` once, where the token goes"),
                doc.locate(&send_at.key("value")),
                Some("e.g. `Bearer {{ token }}`".into()),
            );
            (String::new(), String::new())
        }
    };
    Auth::Login(Box::new(LoginAuth {
        method: request.method.unwrap_or(HttpMethod::Post),
        path: cx.leaf(doc, &at.key("path"), &request.path, settings),
        form,
        json,
        token,
        send: Placement {
            location,
            name: send.name.clone(),
            prefix,
            suffix,
        },
    }))
}

static TOKEN_SLOT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*token\s*\}\}").expect("valid regex"));
