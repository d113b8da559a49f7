//! Reading and checking the alerts file into [`Alerts`]: every problem at once, located.
//!
//! The file is read with positions (`config::yaml`), its shape checked against the schema of
//! `alert::raw` (`config::shape`), then names, spans and templates are checked: settings are
//! strict templates that may read `env` only, compiled here, so that a typo in a webhook
//! URL is an error of `engine check`, not a silent miss at 3 a.m.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use chrono::Duration;
use minijinja::{UndefinedBehavior, Value};
use serde_json::Value as Json;

use crate::alert::raw::{ChannelKind, EventKind, RawAlerts, RawChannel};
use crate::config::yaml::{Document, YamlPath};
use crate::config::{self, Loaded};
use crate::error::{Error, Location, did_you_mean};
use crate::request::Env;
use crate::template::scope::Scope;
use crate::template::{Builder, Leaf, Origin, TemplateSet};

/// Reasons a `parked` message quotes unless `max_reasons` says otherwise.
const DEFAULT_MAX_REASONS: usize = 5;

/// The JSON Schema of the alerts file (also shipped as `schemas/alerts.schema.json`).
pub fn alerts_schema() -> Json {
    serde_json::to_value(schemars::schema_for!(RawAlerts)).expect("schemas serialise")
}

/// The alerts file, checked.
#[derive(Debug)]
pub struct Alerts {
    pub channels: Vec<Channel>,
    pub rules: Vec<Rule>,
    pub stale_after: Option<Duration>,
    pub max_reasons: usize,
    templates: TemplateSet,
}

/// One webhook; its settings are compiled templates, evaluated when an alert is sent.
#[derive(Debug)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    /// Where its `url` is written, for `check`'s notes.
    pub location: Location,
    url: Leaf,
    secret: Option<Leaf>,
    headers: Vec<(String, Leaf)>,
}

#[derive(Debug)]
pub struct Rule {
    pub events: Vec<EventKind>,
    pub channels: Vec<String>,
    pub flows: Option<Vec<String>>,
}

/// A channel's settings, evaluated (secrets in clear: never print).
pub struct Settings {
    pub url: String,
    pub secret: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Alerts {
    /// The enabled channels that `event` of `flow` goes to, each once, in declaration order.
    pub fn channels_for(&self, flow: &str, event: EventKind) -> Vec<&Channel> {
        let names: BTreeSet<&str> = self
            .rules
            .iter()
            .filter(|rule| rule.events.contains(&event))
            .filter(|rule| {
                rule.flows
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|f| f == flow))
            })
            .flat_map(|rule| rule.channels.iter().map(String::as_str))
            .collect();
        self.channels
            .iter()
            .filter(|channel| channel.enabled && names.contains(channel.name.as_str()))
            .collect()
    }

    /// Whether any rule sends `event` (of any flow).
    pub fn wants(&self, event: EventKind) -> bool {
        self.rules.iter().any(|rule| rule.events.contains(&event))
    }

    /// Environment variables `channel` reads that `env` lacks (without a `default`).
    pub fn missing_env(&self, channel: &Channel, env: &Env) -> Vec<String> {
        let mut missing = BTreeSet::new();
        let leaves = std::iter::once(&channel.url)
            .chain(&channel.secret)
            .chain(channel.headers.iter().map(|(_, leaf)| leaf));
        for leaf in leaves {
            if let Leaf::Template(id) = leaf {
                let source = self.templates.source(*id);
                for name in self.templates.undeclared(*id) {
                    let Some(var) = name.strip_prefix("env.") else {
                        continue;
                    };
                    let defaulted = source.contains(&format!("env.{var} | default"))
                        || source.contains(&format!("env.{var}|default"));
                    if !env.contains_key(var) && !defaulted {
                        missing.insert(var.to_string());
                    }
                }
            }
        }
        missing.into_iter().collect()
    }

    /// Evaluate `channel`'s settings with `env`.
    pub fn settings(&self, channel: &Channel, env: &Env) -> Result<Settings, String> {
        let eval = |leaf: &Leaf| -> Result<String, String> {
            match leaf {
                Leaf::Literal(json) => Ok(json.as_str().unwrap_or_default().to_string()),
                Leaf::Template(id) => {
                    let scope = Scope::named(Vec::new()).with_env(env.clone());
                    let value = self
                        .templates
                        .eval(*id, &Value::from_object(scope))
                        .map_err(|err| format!("a setting cannot be evaluated: {}", err.kind()))?;
                    Ok(value.to_string())
                }
            }
        };
        Ok(Settings {
            url: eval(&channel.url)?,
            secret: channel.secret.as_ref().map(eval).transpose()?,
            headers: channel
                .headers
                .iter()
                .map(|(name, leaf)| Ok((name.clone(), eval(leaf)?)))
                .collect::<Result<_, String>>()?,
        })
    }
}

/// Read and check the alerts file.
pub fn load(file: &Path) -> Loaded<Alerts> {
    let mut loaded = Loaded {
        value: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        sources: Vec::new(),
    };
    let (read, errors, text) = config::read_checked::<RawAlerts>(file, &alerts_schema());
    loaded.errors = errors;
    if let Some(text) = text {
        loaded.sources.push((file.to_path_buf(), text));
    }
    let Some((doc, raw)) = read else {
        return loaded;
    };
    let mut cx = Compiler {
        doc: &doc,
        builder: Builder::new(UndefinedBehavior::Strict, Arc::new(Default::default())),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let (channels, rules, stale_after) = cx.alerts(&raw);
    loaded.errors = cx.errors;
    loaded.warnings = cx.warnings;
    if loaded.errors.is_empty() {
        loaded.value = Some(Alerts {
            channels,
            rules,
            stale_after,
            max_reasons: raw.max_reasons.unwrap_or(DEFAULT_MAX_REASONS),
            templates: cx.builder.build(),
        });
    }
    loaded
}

struct Compiler<'a> {
    doc: &'a Document,
    builder: Builder,
    errors: Vec<Error>,
    warnings: Vec<Error>,
}

impl Compiler<'_> {
    fn error(&mut self, message: String, path: &YamlPath, hint: Option<String>) {
        let mut error = Error::config(message).with_location(self.doc.locate(path));
        if let Some(hint) = hint {
            error = error.with_hint(hint);
        }
        self.errors.push(error);
    }

    /// The channels, rules and `stale_after` of the file.
    fn alerts(&mut self, raw: &RawAlerts) -> (Vec<Channel>, Vec<Rule>, Option<Duration>) {
        let root = YamlPath::root();
        let stale_after =
            raw.stale_after
                .as_ref()
                .and_then(|text| match crate::time::parse_span(text) {
                    Ok(span) if span > Duration::zero() => Some(span),
                    Ok(_) => {
                        self.error(
                            format!("`stale_after: {text}` must be longer than zero"),
                            &root.key("stale_after"),
                            None,
                        );
                        None
                    }
                    Err(message) => {
                        self.error(message, &root.key("stale_after"), None);
                        None
                    }
                });
        let channels = raw
            .channels
            .iter()
            .map(|(name, channel)| self.channel(name, channel, &root.key("channels").key(name)))
            .collect();
        let mut used = BTreeSet::new();
        let mut rules = Vec::new();
        for (index, rule) in raw.rules.iter().enumerate() {
            let path = root.key("rules").index(index);
            if rule.events.is_empty() {
                self.error(
                    "a rule without `events` sends nothing".into(),
                    &path.key("events"),
                    Some("list some of `failed`, `parked`, `unsettled`, `stale`".into()),
                );
            }
            if rule.channels.is_empty() {
                self.error(
                    "a rule without `channels` sends nothing".into(),
                    &path.key("channels"),
                    Some("name channels declared under `channels`".into()),
                );
            }
            if rule.events.contains(&EventKind::Stale)
                && stale_after.is_none()
                && raw.stale_after.is_none()
            {
                let at = rule
                    .events
                    .iter()
                    .position(|e| *e == EventKind::Stale)
                    .unwrap_or(0);
                self.error(
                    "the `stale` event needs `stale_after`".into(),
                    &path.key("events").index(at),
                    Some("add `stale_after: 6h` at the top of the file".into()),
                );
            }
            for (at, name) in rule.channels.iter().enumerate() {
                if raw.channels.contains_key(name) {
                    used.insert(name.clone());
                    continue;
                }
                let hint = match did_you_mean(name, raw.channels.keys().map(String::as_str)) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => "declare it under `channels`".to_string(),
                };
                self.error(
                    format!("unknown channel `{name}`"),
                    &path.key("channels").index(at),
                    Some(hint),
                );
            }
            rules.push(Rule {
                events: rule.events.clone(),
                channels: rule.channels.clone(),
                flows: rule.flows.clone(),
            });
        }
        for name in raw.channels.keys().filter(|name| !used.contains(*name)) {
            self.warnings.push(
                Error::config(format!(
                    "channel `{name}` is in no rule: nothing is sent to it"
                ))
                .with_location(self.doc.locate_key(&root.key("channels").key(name))),
            );
        }
        (channels, rules, stale_after)
    }

    fn channel(&mut self, name: &str, raw: &RawChannel, path: &YamlPath) -> Channel {
        if raw.kind == ChannelKind::Wecom && raw.secret.is_some() {
            self.error(
                "WeCom robots are not signed: `secret` has no use here".into(),
                &path.key("secret"),
                Some("remove `secret`; the `key` in the webhook URL is the credential".into()),
            );
        }
        if raw.kind != ChannelKind::Webhook && !raw.headers.is_empty() {
            self.error(
                format!(
                    "`headers` are for `type: webhook` only, not `{}`",
                    raw.kind.as_str()
                ),
                &path.key("headers"),
                None,
            );
        }
        let url = self.setting(&path.key("url"), &raw.url);
        if let Leaf::Literal(Json::String(text)) = &url {
            match reqwest::Url::parse(text) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                    if parsed.query().is_some() || raw.kind == ChannelKind::Feishu {
                        self.warnings.push(
                            Error::config(format!("the URL of channel `{name}` is written out, token included"))
                                .with_location(self.doc.locate(&path.key("url")))
                                .with_hint("read the token from the environment: `…{{ env.NAME }}`"),
                        );
                    }
                }
                _ => self.error(
                    format!("`{text}` is not an http(s) URL"),
                    &path.key("url"),
                    Some("write the robot's webhook address, e.g. `https://oapi.dingtalk.com/robot/send?access_token={{ env.DINGTALK_TOKEN }}`".into()),
                ),
            }
        }
        let secret = raw.secret.as_ref().map(|text| {
            let leaf = self.setting(&path.key("secret"), text);
            if matches!(leaf, Leaf::Literal(_)) {
                self.warnings.push(
                    Error::config(format!("the secret of channel `{name}` is written out"))
                        .with_location(self.doc.locate(&path.key("secret")))
                        .with_hint(
                            "read it from the environment: `secret: \"{{ env.DINGTALK_SECRET }}\"`",
                        ),
                );
            }
            leaf
        });
        let headers = raw
            .headers
            .iter()
            .map(|(header, text)| {
                (
                    header.clone(),
                    self.setting(&path.key("headers").key(header), text),
                )
            })
            .collect();
        Channel {
            name: name.to_string(),
            kind: raw.kind,
            enabled: raw.enabled.unwrap_or(true),
            location: self.doc.locate(&path.key("url")),
            url,
            secret,
            headers,
        }
    }

    /// Compile a setting: a literal, or a template that reads `env` only.
    fn setting(&mut self, path: &YamlPath, text: &str) -> Leaf {
        let origin = Origin {
            location: self.doc.locate(path),
            path: path.clone(),
        };
        match self.builder.string_leaf(text, origin) {
            Ok(Leaf::Template(id)) => {
                for name in self.builder.undeclared_of(id) {
                    if name != "env" && !name.starts_with("env.") {
                        let root = name.split('.').next().unwrap_or(&name).to_string();
                        self.error(
                            format!("`{root}` is not defined here: alert settings read `env` only"),
                            path,
                            Some("write `{{ env.NAME }}`".into()),
                        );
                    }
                }
                Leaf::Template(id)
            }
            Ok(literal) => literal,
            Err(err) => {
                self.errors.push(
                    Error::config(format!("invalid template: {}", err.message)).with_location(
                        self.doc
                            .locate_in_scalar(path, err.line, err.column, err.len),
                    ),
                );
                Leaf::Literal(Json::String(String::new()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Loaded<Alerts> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alerts.yaml");
        std::fs::write(&file, text).unwrap();
        load(&file)
    }

    const FILE: &str = r#"
channels:
  a: { type: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={{ env.A }}" }
  b: { type: webhook, url: "{{ env.B | default('https://example.com/x') }}", headers: { X-Key: "{{ env.K }}" } }
  off: { type: feishu, url: "https://open.feishu.cn/open-apis/bot/v2/hook/{{ env.F }}", enabled: false }
rules:
  - { events: [failed, parked], channels: [a, b, off] }
  - { events: [parked], channels: [a], flows: [refund] }
  - { events: [stale], channels: [b], flows: [orders] }
stale_after: 90m
"#;

    #[test]
    fn rules_pick_enabled_channels_once_per_event_and_flow() {
        let alerts = load_text(FILE).value.expect("a valid file");
        assert_eq!(alerts.stale_after, Some(Duration::minutes(90)));
        let names = |flow: &str, event| -> Vec<String> {
            alerts
                .channels_for(flow, event)
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        for (flow, event, expected) in [
            ("refund", EventKind::Parked, vec!["a", "b"]),
            ("refund", EventKind::Failed, vec!["a", "b"]),
            ("refund", EventKind::Stale, vec![]),
            ("orders", EventKind::Stale, vec!["b"]),
            ("refund", EventKind::Unsettled, vec![]),
        ] {
            assert_eq!(names(flow, event), expected, "{flow} {event:?}");
        }
    }

    #[test]
    fn settings_read_the_environment_and_name_what_is_missing() {
        let alerts = load_text(FILE).value.expect("a valid file");
        let env: Env = [("A".to_string(), "k-1".to_string())].into();
        let [a, b, _] = &alerts.channels[..] else {
            panic!("three channels")
        };
        assert!(alerts.missing_env(a, &env).is_empty());
        assert_eq!(
            alerts.settings(a, &env).unwrap().url,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1"
        );
        // `B` has a default; `K` has none.
        assert_eq!(alerts.missing_env(b, &env), vec!["K".to_string()]);
        let env: Env = [("K".to_string(), "h".to_string())].into();
        let settings = alerts.settings(b, &env).unwrap();
        assert_eq!(settings.url, "https://example.com/x");
        assert_eq!(
            settings.headers,
            vec![("X-Key".to_string(), "h".to_string())]
        );
    }
}
