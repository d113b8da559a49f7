//! The declarative `signature` strategy: add parameters, render the string to sign from the
//! request, digest it (`sign::digest`) and put the signature in a parameter or header.
//!
//! The templates read the request being sent, so they cannot be evaluated once at the start
//! like other settings: the signer compiles their texts (already checked by `engine check`)
//! into its own strict minijinja environment when the run starts, and renders them per
//! request. The rendering and signing are pure; `now` is a parameter. The secret is exposed
//! to the templates as `secret` and to the MAC as its key, never to a message.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use minijinja::{Environment, UndefinedBehavior, Value, context};

use crate::auth::{Authorize, Generation};
use crate::config::model::SignatureIn;
use crate::error::{Error, Result};
use crate::http::transport::{Body, Request};
use crate::request::Env;
use crate::secret::Secret;
use crate::sign::digest::{self, Algorithm, Encoding};

const STRING_TO_SIGN: &str = "string_to_sign";

pub struct Signer {
    templates: Environment<'static>,
    params: Vec<String>,
    secret: Secret,
    algorithm: Algorithm,
    encoding: Encoding,
    location: SignatureIn,
    name: String,
    env: Env,
    connector: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What `Signer::new` needs besides the templates.
pub struct Settings {
    pub secret: Secret,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub location: SignatureIn,
    pub name: String,
}

impl Signer {
    pub fn new(
        settings: Settings,
        params: &[(String, String)],
        string_to_sign: &str,
        env: &Env,
        connector: &str,
    ) -> Result<Signer> {
        let mut templates = Environment::new();
        templates.set_undefined_behavior(UndefinedBehavior::Strict);
        let compile = |templates: &mut Environment<'static>, name: String, text: &str| {
            templates
                .add_template_owned(name.clone(), text.to_string())
                .map_err(|err| {
                    Error::config(format!(
                        "`auth.{name}` of connector `{connector}` is not a template: {err}"
                    ))
                })
        };
        compile(&mut templates, STRING_TO_SIGN.into(), string_to_sign)?;
        for (name, text) in params {
            compile(&mut templates, format!("params.{name}"), text)?;
        }
        Ok(Signer {
            templates,
            params: params.iter().map(|(name, _)| name.clone()).collect(),
            secret: settings.secret,
            algorithm: settings.algorithm,
            encoding: settings.encoding,
            location: settings.location,
            name: settings.name,
            env: env.clone(),
            connector: connector.to_string(),
        })
    }

    fn render(&self, template: &str, ctx: &Value) -> Result<String> {
        self.templates
            .get_template(template)
            .and_then(|t| t.render(ctx))
            .map_err(|err| {
                Error::config(format!(
                    "cannot work out `auth.{template}` of connector `{}`: {}",
                    self.connector,
                    err.detail().unwrap_or("an error in the template")
                ))
            })
    }

    /// Sign `request` at `now`: add the parameters, then the signature.
    pub fn sign(&self, request: &mut Request, now: DateTime<Utc>) -> Result<()> {
        let url = reqwest::Url::parse(&request.url).map_err(|err| {
            Error::config(format!("`{}` is not a URL", request.url)).with_source(err)
        })?;
        let path = url.path().to_string();
        // The method as the YAML spells it (`GET`, `POST`, …), from its serde name.
        let method = serde_json::to_value(request.method)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        let body = match &request.body {
            Body::Json(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        };
        let scope = |params: Vec<Value>| {
            context! {
                params, body => &body, method => &method, path => &path,
                timestamp => crate::time::wall_clock(now),
                epoch_seconds => now.timestamp(),
                epoch_millis => now.timestamp_millis(),
                secret => self.secret.expose(),
                env => &self.env,
            }
        };
        let mut added = Vec::new();
        let before = scope(sorted(request));
        for name in &self.params {
            added.push((
                name.clone(),
                self.render(&format!("params.{name}"), &before)?,
            ));
        }
        for (name, value) in added {
            let fields = self.parameters(request, SignatureIn::Param);
            fields.retain(|(n, _)| n != &name);
            fields.push((name, value));
        }
        let text = self.render(STRING_TO_SIGN, &scope(sorted(request)))?;
        let signature = digest::sign(
            self.algorithm,
            self.encoding,
            self.secret.expose().as_bytes(),
            text.as_bytes(),
        );
        match self.location {
            SignatureIn::Header => request.headers.push((self.name.clone(), signature)),
            location => self
                .parameters(request, location)
                .push((self.name.clone(), signature)),
        }
        Ok(())
    }

    /// Where parameters go: the form body when the request has one (for `param`), else the query.
    fn parameters<'r>(
        &self,
        request: &'r mut Request,
        location: SignatureIn,
    ) -> &'r mut Vec<(String, String)> {
        match (&mut request.body, location) {
            (Body::Form(fields), SignatureIn::Param) => fields,
            _ => &mut request.query,
        }
    }
}

/// Every query and form parameter, sorted by name (bytes; a stable sort keeps repeats in
/// order), as `{name, value}` maps.
fn sorted(request: &Request) -> Vec<Value> {
    let form = match &request.body {
        Body::Form(fields) => fields.as_slice(),
        _ => &[],
    };
    let mut all: Vec<&(String, String)> = request.query.iter().chain(form).collect();
    all.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    all.into_iter()
        .map(|(name, value)| {
            Value::from(BTreeMap::from([
                ("name", name.clone()),
                ("value", value.clone()),
            ]))
        })
        .collect()
}

impl Authorize for Signer {
    fn authorize(&self, request: &mut Request, now: DateTime<Utc>) -> Result<Generation> {
        self.sign(request, now)?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Authenticator;
    use crate::config::raw::HttpMethod;
    use crate::sign::qimen::SignMethod;

    /// The Qimen signature written with the `signature` strategy, for `sign_method`.
    fn qimen_as_signature(sign_method: &str) -> String {
        let (wrap, algorithm) = match sign_method {
            "md5" => ("{{ secret }}", "md5"),
            "hmac" => ("", "hmac-md5"),
            _ => ("", "hmac-sha256"),
        };
        format!(
            r#"name: qimen_declared
base_url: "http://router"
auth:
  strategy: signature
  secret: "{{{{ env.WDT_APP_SECRET }}}}"
  params:
    app_key: "{{{{ env.WDT_APP_KEY }}}}"
    timestamp: "{{{{ timestamp }}}}"
    sign_method: {sign_method}
  string_to_sign: >-
    {wrap}{{% for p in params if p.value and p.name != 'sign' %}}{{{{ p.name }}}}{{{{ p.value }}}}{{% endfor %}}{{{{ body }}}}{wrap}
  algorithm: {algorithm}
  encoding: hex_upper
  signature: {{ in: param, name: sign }}
envelope:
  success: "true"
  message: "'x'"
operations: {{}}
"#
        )
    }

    fn requests() -> Vec<Request> {
        let pairs = |items: &[(&str, &str)]| {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let form = pairs(&[
            ("method", "wdt.stockin.order.query.refund"),
            ("format", "json"),
            ("v", "2.0"),
            ("target_app_key", "87654321"),
            ("sid", "test2"),
            ("start_time", "2024-01-01 00:00:00"),
            ("empty", ""),
            ("page_no", "0"),
            ("page_size", "40"),
        ]);
        let request = |query, body| Request {
            method: HttpMethod::Post,
            url: "http://router/qm".into(),
            query,
            headers: Vec::new(),
            body,
        };
        vec![
            request(Vec::new(), Body::Form(form.clone())),
            request(form.clone(), Body::Json(br#"{"a":"\u4e2d 1"}"#.to_vec())),
            request(pairs(&[("method", "x.y"), ("名", "值")]), Body::None),
        ]
    }

    #[test]
    fn qimen_written_as_a_signature_sends_byte_identical_requests() {
        let env: Env = [
            ("WDT_APP_SECRET", "test_secret"),
            ("WDT_APP_KEY", "12345678"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let now = crate::time::parse_instant("2024-01-01 12:00:00").unwrap();
        for method in SignMethod::ALL {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("qimen_declared.yaml");
            std::fs::write(&file, qimen_as_signature(method.as_str())).unwrap();
            let loaded = crate::config::load_connector(&file);
            assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
            let standalone = loaded.value.unwrap();
            let declared = Authenticator::resolve(
                &standalone.connector.auth,
                &standalone.templates,
                &env,
                "qimen_declared",
            )
            .unwrap();
            let built_in = Authenticator::Qimen {
                app_key: "12345678".into(),
                secret: Secret::new("test_secret"),
                method,
            };
            for request in requests() {
                let (mut ours, mut theirs) = (request.clone(), request);
                declared.apply(&mut ours, now).unwrap();
                built_in.apply(&mut theirs, now).unwrap();
                assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{method}");
            }
        }
    }

    #[test]
    fn the_signature_goes_in_a_header_over_the_method_path_and_body() {
        let settings = Settings {
            secret: Secret::new("k"),
            algorithm: Algorithm::HmacSha256,
            encoding: Encoding::Base64,
            location: SignatureIn::Header,
            name: "X-Signature".into(),
        };
        let template = "{{ method }}\n{{ path }}\n{{ epoch_seconds }}\n{{ body }}";
        let signer = Signer::new(settings, &[], template, &Env::new(), "c").unwrap();
        let mut request = Request {
            method: HttpMethod::Post,
            url: "http://h/v1/items?x=1".into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Json(b"{}".to_vec()),
        };
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        signer.sign(&mut request, now).unwrap();
        let expected = digest::sign(
            Algorithm::HmacSha256,
            Encoding::Base64,
            b"k",
            b"POST\n/v1/items\n1700000000\n{}",
        );
        assert_eq!(request.headers, [("X-Signature".to_string(), expected)]);
        assert!(request.query.is_empty());
    }
}
