//! Bounds on what a YAML file may ask of the parser, checked on yaml-rust2's events before
//! serde_yaml builds any value.
//!
//! A small file can describe a huge document: aliases to an anchor that itself holds aliases
//! expand exponentially, and serde_yaml replays every alias while building its value. Deep
//! block nesting costs time in proportion to its depth for every node. So the events are
//! checked first, in one linear pass: nesting depth, how many aliases there are and how
//! much they expand to, tags (which flows and connectors have no use for), and a second
//! document in the file. The first problem found is reported where it is written.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Tag};
use yaml_rust2::scanner::Marker;

/// How deep collections may nest (serde_yaml's own limit is the same).
pub const MAX_DEPTH: usize = 128;

/// How many aliases (`*name`) a file may use.
pub const MAX_ALIASES: usize = 1_000;

/// How large everything the aliases of a file stand for may be in all, counting one per node
/// plus the characters of every scalar: about a megabyte of YAML.
pub const MAX_ALIAS_EXPANSION: u64 = 1_000_000;

/// Core-schema tags that only say what a plain scalar already is (`!!str 001`).
const CORE_TAGS: &[&str] = &["str", "int", "float", "bool", "null", "seq", "map"];

/// What a file asks beyond the bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    TooDeep,
    TooManyAliases,
    AliasesExpandTooFar,
    Tag(String),
    SecondDocument,
}

impl Problem {
    /// The message and hint of the error.
    pub fn describe(&self) -> (String, String) {
        match self {
            Problem::TooDeep => (
                format!("invalid YAML: nested more than {MAX_DEPTH} levels deep"),
                "flows and connectors need a few levels; look for runaway `[`, `{` or `- `"
                    .to_string(),
            ),
            Problem::TooManyAliases => (
                format!("invalid YAML: more than {MAX_ALIASES} aliases (`*name`)"),
                "repeat the text instead, or move shared values into `vars`".to_string(),
            ),
            Problem::AliasesExpandTooFar => (
                format!(
                    "invalid YAML: the aliases expand to more than {MAX_ALIAS_EXPANSION} nodes and characters"
                ),
                "an alias repeats its anchor's whole value; aliases of anchors that hold aliases multiply".to_string(),
            ),
            Problem::Tag(tag) => (
                format!("invalid YAML: tag `{tag}` is not supported"),
                "remove the tag; to keep a value as text, quote it".to_string(),
            ),
            Problem::SecondDocument => (
                "invalid YAML: a second document (`---`) in one file".to_string(),
                "a flow or connector file holds one YAML document; remove the `---` line or move the rest to its own file".to_string(),
            ),
        }
    }
}

/// Where to point for `problem` found at `marker` in `text`: 1-based line, column and length
/// in characters. A tag's event is marked at the node after the tag, so the tag is looked
/// for before it on the same line.
pub fn place(problem: &Problem, marker: &Marker, text: &str) -> (usize, usize, usize) {
    let (line, column) = (marker.line(), marker.col() + 1);
    if let Problem::Tag(tag) = problem
        && let Some(written) = text.lines().nth(line.wrapping_sub(1))
    {
        let before: String = written.chars().take(marker.col()).collect();
        if let Some(at) = before.rfind(tag.as_str()) {
            return (line, before[..at].chars().count() + 1, tag.chars().count());
        }
    }
    (line, column, 1)
}

/// The running totals of one pass over a file's events.
#[derive(Debug, Default)]
pub struct Bounds {
    /// The weight of every open collection (one per node plus scalar characters), with its anchor.
    open: Vec<(usize, u64)>,
    /// The weight of every anchored node, by anchor id.
    anchors: HashMap<usize, u64>,
    aliases: usize,
    expansion: u64,
    documents: usize,
    /// The first problem and where it is.
    pub problem: Option<(Problem, Marker)>,
}

impl Bounds {
    /// Account for one event; the first problem found is kept in `problem`.
    pub fn observe(&mut self, event: &Event, marker: Marker) {
        if self.problem.is_some() {
            return;
        }
        let found = match event {
            Event::DocumentStart => {
                self.documents += 1;
                (self.documents > 1).then_some(Problem::SecondDocument)
            }
            Event::Scalar(value, _, anchor, tag) => self.tag(tag.as_ref()).or_else(|| {
                self.node(*anchor, 1 + value.len() as u64);
                None
            }),
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                self.tag(tag.as_ref()).or_else(|| {
                    self.open.push((*anchor, 1));
                    (self.open.len() > MAX_DEPTH).then_some(Problem::TooDeep)
                })
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, weight)) = self.open.pop() {
                    self.node(anchor, weight);
                }
                None
            }
            Event::Alias(id) => {
                let weight = self.anchors.get(id).copied().unwrap_or(1);
                self.aliases += 1;
                self.expansion = self.expansion.saturating_add(weight);
                self.add(weight);
                if self.aliases > MAX_ALIASES {
                    Some(Problem::TooManyAliases)
                } else if self.expansion > MAX_ALIAS_EXPANSION {
                    Some(Problem::AliasesExpandTooFar)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(problem) = found {
            self.problem = Some((problem, marker));
        }
    }

    fn tag(&self, tag: Option<&Tag>) -> Option<Problem> {
        let tag = tag?;
        let core = tag.handle == "tag:yaml.org,2002:" && CORE_TAGS.contains(&tag.suffix.as_str());
        let non_specific = tag.handle.is_empty() && tag.suffix == "!";
        if core || non_specific {
            return None;
        }
        let shown = match tag.handle.as_str() {
            "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
            "" | "!" => format!("!{}", tag.suffix.trim_start_matches('!')),
            handle => format!("{handle}{}", tag.suffix),
        };
        Some(Problem::Tag(shown))
    }

    /// A finished node of `weight`, remembered if anchored and added to its parent.
    fn node(&mut self, anchor: usize, weight: u64) {
        if anchor > 0 {
            self.anchors.insert(anchor, weight);
        }
        self.add(weight);
    }

    fn add(&mut self, weight: u64) {
        if let Some((_, parent)) = self.open.last_mut() {
            *parent = parent.saturating_add(weight);
        }
    }
}

#[cfg(test)]
mod tests {
    use yaml_rust2::parser::{MarkedEventReceiver, Parser};

    use super::*;

    struct Receiver(Bounds);

    impl MarkedEventReceiver for Receiver {
        fn on_event(&mut self, event: Event, marker: Marker) {
            self.0.observe(&event, marker);
        }
    }

    fn problem(text: &str) -> Option<(Problem, usize, usize)> {
        let mut receiver = Receiver(Bounds::default());
        let _ = Parser::new_from_str(text).load(&mut receiver, true);
        receiver.0.problem.map(|(problem, marker)| {
            let (line, column, _) = place(&problem, &marker, text);
            (problem, line, column)
        })
    }

    #[test]
    fn ordinary_files_are_within_bounds() {
        assert_eq!(problem("a: &x [1, 2]\nb: *x\nc: !!str 001\nd: ! 1\n"), None);
        assert_eq!(problem("---\na: 1\n...\n"), None);
    }

    #[test]
    fn each_bound_is_reported_where_it_is_crossed() {
        let nested = format!("a:\n  {}1\n", "- ".repeat(MAX_DEPTH + 5));
        assert_eq!(problem(&nested).map(|p| p.0), Some(Problem::TooDeep));
        let many = format!("a: &x 1\nb: [{}]\n", vec!["*x"; MAX_ALIASES + 1].join(", "));
        assert_eq!(problem(&many).map(|p| p.0), Some(Problem::TooManyAliases));
        let big = format!(
            "a: &x {}\nb: [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\n",
            "y".repeat(100_000)
        );
        assert_eq!(problem(&big), Some((Problem::AliasesExpandTooFar, 2, 41)));
        let mut exponential = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n".to_string();
        for (name, previous) in [
            ("b", "a"),
            ("c", "b"),
            ("d", "c"),
            ("e", "d"),
            ("f", "e"),
            ("g", "f"),
        ] {
            exponential.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{previous}"); 10].join(", ")
            ));
        }
        assert_eq!(
            problem(&exponential).map(|p| p.0),
            Some(Problem::AliasesExpandTooFar)
        );
        assert_eq!(
            problem("a: 1\nb: !foo 2\n"),
            Some((Problem::Tag("!foo".into()), 2, 4))
        );
        assert_eq!(
            problem("a: !!binary aGk=\n").map(|p| p.0),
            Some(Problem::Tag("!!binary".into()))
        );
        assert_eq!(
            problem("a: 1\n---\nb: 2\n"),
            Some((Problem::SecondDocument, 2, 1))
        );
    }
}
