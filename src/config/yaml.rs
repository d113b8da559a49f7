//! YAML documents that remember where every key and value came from.
//!
//! serde_yaml gives the values (and the syntax errors, with their positions); a second pass
//! over yaml-rust2's marked events records the line and column of every key and value by
//! path (`source.params.start_time`, `mapping.FEntity.$item.FMaterialId`). Everything that
//! reports a problem in a config file asks a [`Document`] where the offending node is.
//! This module knows nothing about flows or connectors.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::config::yaml_limits::{Bounds, MAX_DEPTH};
use crate::config::yaml_syntax::{
    HUGE_INTEGER, flow_nesting_beyond, quoted_len, span_location, strip_position, syntax_error,
    too_deep, unclosed_quote_before,
};
use crate::error::{Error, Location};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root, e.g. `mapping.FEntity.$item.FMaterialId` or `operations.q.params`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> YamlPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        YamlPath(segments)
    }

    pub fn index(&self, index: usize) -> YamlPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        YamlPath(segments)
    }

    pub fn parent(&self) -> Option<YamlPath> {
        let (_, rest) = self.0.split_last()?;
        Some(YamlPath(rest.to_vec()))
    }

    pub fn last_key(&self) -> Option<&str> {
        match self.0.last()? {
            Segment::Key(key) => Some(key),
            Segment::Index(_) => None,
        }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// How a scalar was written, which decides where its text starts on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    Quoted,
    /// `|` or `>`: the text starts on the next line, at `value.column`.
    Block,
    /// A mapping, a sequence or an alias.
    Container,
}

/// A place in the file: 1-based line and column (in characters), and a length in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct NodePosition {
    /// Where the key of this node is, when it is a mapping value.
    pub key: Option<Span>,
    /// Where the value starts.
    pub value: Span,
    pub style: ScalarStyle,
}

/// A parsed YAML file with positions.
#[derive(Debug)]
pub struct Document {
    pub file: PathBuf,
    pub text: String,
    pub value: serde_yaml::Value,
    positions: HashMap<YamlPath, NodePosition>,
}

impl Document {
    /// Parse `text` (the contents of `file`); a syntax error comes back located.
    pub fn parse(file: &Path, text: String) -> Result<Document, Error> {
        // libyaml takes time in proportion to the depth for every token of a flow collection:
        // a file nested thousands deep would take minutes to be refused, so it is refused first.
        if let Some((line, column)) = flow_nesting_beyond(&text, MAX_DEPTH) {
            return Err(too_deep(Location::new(file, line, column, 1)));
        }
        // yaml-rust2's events first: they are read in linear time without expanding aliases,
        // so a file beyond the bounds (see `yaml_limits`) is refused before serde_yaml builds it.
        let mut recorder = Recorder::new(&text);
        let _ = Parser::new_from_str(&text).load(&mut recorder, true);
        if let Some((problem, marker)) = recorder.bounds.problem.take() {
            let (message, hint) = problem.describe();
            let (line, column, len) = crate::config::yaml_limits::place(&problem, &marker, &text);
            let location = Location::new(file, line, column, len);
            return Err(Error::config(message)
                .with_location(location)
                .with_hint(hint));
        }
        let parsed = serde_yaml::from_str::<serde_yaml::Value>(&text);
        if let Err(err) = &parsed
            && err.to_string().contains("recursion limit exceeded")
        {
            // Nested blocks (which the scan above does not count) hit serde_yaml's own limit.
            return Err(too_deep(match err.location() {
                Some(l) => Location::new(file, l.line(), l.column(), 1),
                None => Location::file_only(file),
            }));
        }
        // When serde_yaml accepted the text, yaml-rust2 almost always did too; if it did not,
        // problems are reported at the file level rather than not at all.
        let value = match parsed {
            Ok(value) => value,
            Err(err) => return Err(recorder.explain(file, &text, &err)),
        };
        Ok(Document {
            file: file.to_path_buf(),
            positions: recorder.positions,
            text,
            value,
        })
    }

    /// Read and parse a file.
    pub fn read(file: &Path) -> Result<Document, Error> {
        let bytes = crate::config::file::read_bounded(
            file,
            "YAML file",
            crate::config::file::MAX_CONFIG_BYTES,
        )?;
        let text = String::from_utf8(bytes).map_err(|err| {
            let (line, column) =
                crate::config::file::position_of_invalid_utf8(err.as_bytes(), err.utf8_error());
            Error::config(format!("`{}` is not UTF-8 text", file.display()))
                .with_location(Location::new(file, line, column, 1))
                .with_hint("save it as UTF-8 (e.g. `iconv -f GBK -t UTF-8`)")
        })?;
        Document::parse(file, text)
    }

    pub fn position(&self, path: &YamlPath) -> Option<&NodePosition> {
        self.positions.get(path)
    }

    /// Where to point for a problem with the value at `path`: the value for scalars, the key
    /// for mappings and sequences, else the nearest ancestor that has a position.
    pub fn locate(&self, path: &YamlPath) -> Location {
        let mut current = Some(path.clone());
        while let Some(path) = current {
            if let Some(position) = self.positions.get(&path) {
                let span = match (position.style, position.key) {
                    (ScalarStyle::Container, Some(key)) => key,
                    _ => position.value,
                };
                return self.location(span);
            }
            current = path.parent();
        }
        Location::new(&self.file, 1, 1, 0)
    }

    /// Where to point for a problem with the key of `path` (an unknown or misspelt key).
    pub fn locate_key(&self, path: &YamlPath) -> Location {
        match self.positions.get(path).and_then(|position| position.key) {
            Some(span) => self.location(span),
            None => self.locate(path),
        }
    }

    /// Where a position inside a template leaf is in the file. `line` is 1-based within the
    /// template's text; `column` is 1-based in characters.
    pub fn locate_in_scalar(
        &self,
        path: &YamlPath,
        line: usize,
        column: usize,
        len: usize,
    ) -> Location {
        let Some(position) = self.positions.get(path) else {
            return self.locate(path);
        };
        let value = position.value;
        let (line, column) = match position.style {
            ScalarStyle::Plain if line <= 1 => (value.line, value.column + column - 1),
            ScalarStyle::Quoted if line <= 1 => (value.line, value.column + column),
            ScalarStyle::Block => (value.line + line - 1, value.column + column - 1),
            // A quoted or plain scalar folded over several lines: the line is right, the column is approximate.
            _ => (value.line + line - 1, column),
        };
        self.location(Span { line, column, len })
    }

    fn location(&self, span: Span) -> Location {
        Location::new(&self.file, span.line, span.column, span.len)
    }
}

enum Frame {
    Map {
        path: YamlPath,
        key: Option<(String, Span)>,
        /// The keys seen so far, to find duplicates (which serde_yaml places at the mapping).
        seen: HashMap<String, Span>,
    },
    Seq {
        path: YamlPath,
        next: usize,
    },
    /// A complex (non-scalar) key being skipped, with its nesting depth.
    SkipKey {
        depth: usize,
    },
}

/// A key written twice in one mapping.
struct Duplicate {
    mapping: YamlPath,
    key: String,
    first: Span,
    again: Span,
}

struct Recorder<'a> {
    text: &'a str,
    /// The byte offset where each line starts.
    line_starts: Vec<usize>,
    /// The last place looked up (line, column in characters, byte offset), so that looking up
    /// places in order along a long line costs the length of the line once, not each time.
    cursor: (usize, usize, usize),
    bounds: Bounds,
    /// Past the first document, whose positions are all that is recorded.
    done: bool,
    stack: Vec<Frame>,
    positions: HashMap<YamlPath, NodePosition>,
    duplicates: Vec<Duplicate>,
}

impl<'a> Recorder<'a> {
    fn new(text: &'a str) -> Recorder<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Recorder {
            text,
            line_starts,
            cursor: (0, 0, 0),
            bounds: Bounds::default(),
            done: false,
            stack: Vec::new(),
            positions: HashMap::new(),
            duplicates: Vec::new(),
        }
    }

    /// A located error for a document serde_yaml refused, pointing where the mistake was
    /// made rather than where the parser noticed it when that can be told.
    fn explain(&self, file: &Path, text: &str, err: &serde_yaml::Error) -> Error {
        let message = err.to_string();
        if message.contains("duplicate entry") {
            let named = self
                .duplicates
                .iter()
                .find(|d| message.contains(&format!("key {:?}", d.key)));
            if let Some(duplicate) = named.or(self.duplicates.first()) {
                let place = if duplicate.mapping.is_root() {
                    "the top level".to_string()
                } else {
                    format!("`{}`", duplicate.mapping)
                };
                return Error::config(format!("duplicate key `{}` in {place}", duplicate.key))
                    .with_location(span_location(file, duplicate.again))
                    .with_hint(format!(
                        "`{}` is first defined at {}:{}; keep one of them",
                        duplicate.key, duplicate.first.line, duplicate.first.column
                    ));
            }
        }
        if let Some(found) = HUGE_INTEGER.captures(&message) {
            // serde_yaml cannot hold integers beyond 64 bits and says so in its own terms.
            let what = found
                .name("path")
                .map_or("a number".to_string(), |p| format!("`{}`", p.as_str()));
            let location = match err.location() {
                Some(l) => {
                    Location::new(file, l.line(), l.column(), found["number"].chars().count())
                }
                None => Location::file_only(file),
            };
            return Error::config(format!(
                "{what} is far too large: `{}`",
                &found["number"]
            ))
            .with_location(location)
            .with_hint("whole numbers go up to 64 bits: write one in the range the setting accepts, or quote it to keep it as text");
        }
        if let Some(error_line) = err.location().map(|l| l.line())
            && let Some(open) = unclosed_quote_before(text, error_line)
        {
            return Error::config("invalid YAML: this quote is not closed on its line")
                .with_location(span_location(file, open))
                .with_hint(format!(
                    "the quoted text runs on to line {error_line}, where YAML fails ({}); close the quote",
                    strip_position(err).split(", while").next().unwrap_or_default()
                ));
        }
        syntax_error(file, text, err)
    }

    /// The text from `marker` on (to the end of the file: a caller reads only what it needs,
    /// since finding the end of a long line for every node would take quadratic time).
    fn rest_of_line(&mut self, marker: &Marker) -> &'a str {
        let (line, column) = (marker.line(), marker.col());
        let Some(&line_start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        if self.cursor.0 != line || self.cursor.1 > column {
            self.cursor = (line, 0, line_start);
        }
        let (_, mut at, mut byte) = self.cursor;
        let mut chars = self.text[byte..].chars();
        while at < column {
            match chars.next() {
                Some(c) if c != '\n' => {
                    byte += c.len_utf8();
                    at += 1;
                }
                _ => break,
            }
        }
        self.cursor = (line, at, byte);
        &self.text[byte..]
    }

    fn scalar_span(&mut self, marker: &Marker, style: TScalarStyle, value: &str) -> Span {
        let line = marker.line();
        let column = marker.col() + 1;
        let rest = self.rest_of_line(marker);
        let len = match style {
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => quoted_len(rest),
            TScalarStyle::Literal | TScalarStyle::Folded => {
                let line = rest.split('\n').next().unwrap_or_default();
                line.trim_end().chars().count()
            }
            _ => {
                let first = value
                    .lines()
                    .next()
                    .map_or(0, |first| first.chars().count());
                rest.chars().take(first).take_while(|c| *c != '\n').count()
            }
        };
        Span {
            line,
            column,
            len: len.max(1),
        }
    }

    /// The path a new value takes, and the key span if it is a mapping value.
    fn next_path(&mut self) -> Option<(YamlPath, Option<Span>)> {
        match self.stack.last_mut() {
            None => Some((YamlPath::root(), None)),
            Some(Frame::Map { path, key, .. }) => {
                let (key, span) = key.take()?;
                Some((path.key(&key), Some(span)))
            }
            Some(Frame::Seq { path, next }) => {
                let index = *next;
                *next += 1;
                Some((path.index(index), None))
            }
            Some(Frame::SkipKey { .. }) => None,
        }
    }

    fn record(&mut self, path: YamlPath, key: Option<Span>, value: Span, style: ScalarStyle) {
        // A container's first child gives the container a better value position than its start marker.
        if let Some(parent) = path.parent()
            && let Some(position) = self.positions.get_mut(&parent)
            && position.style == ScalarStyle::Container
            && position.key.is_none()
            && position.value.len == 0
        {
            position.value = key.unwrap_or(value);
        }
        self.positions
            .insert(path, NodePosition { key, value, style });
    }

    fn container_start(&mut self, marker: &Marker, is_map: bool) {
        if let Some(Frame::SkipKey { depth }) = self.stack.last_mut() {
            *depth += 1;
            return;
        }
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            // A mapping or sequence used as a key (e.g. an unquoted `{{ x }}`): skip it.
            self.stack.push(Frame::SkipKey { depth: 1 });
            return;
        }
        let Some((path, key)) = self.next_path() else {
            return;
        };
        // A flow collection starts at its bracket, which is the place to point at; a block
        // collection's start marker is refined by its first child (see `record`).
        let bracket = self.rest_of_line(marker).starts_with(['[', '{']);
        let value = Span {
            line: marker.line(),
            column: marker.col() + 1,
            len: usize::from(bracket),
        };
        self.record(path.clone(), key, value, ScalarStyle::Container);
        self.stack.push(if is_map {
            Frame::Map {
                path,
                key: None,
                seen: HashMap::new(),
            }
        } else {
            Frame::Seq { path, next: 0 }
        });
    }

    fn container_end(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::SkipKey { depth }) if *depth > 1 => *depth -= 1,
            Some(Frame::SkipKey { .. }) => {
                self.stack.pop();
                // The complex key is done; its value gets a placeholder key name.
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    *key = Some((
                        "<complex key>".to_string(),
                        Span {
                            line: 0,
                            column: 0,
                            len: 0,
                        },
                    ));
                }
            }
            _ => {
                self.stack.pop();
            }
        }
    }
}

impl MarkedEventReceiver for Recorder<'_> {
    fn on_event(&mut self, event: Event, marker: Marker) {
        self.bounds.observe(&event, marker);
        // Past the bounds, recording would only cost time (deep paths are long to copy).
        if self.done || self.bounds.problem.is_some() {
            return;
        }
        match event {
            Event::DocumentEnd => self.done = true,
            Event::Scalar(value, style, _, _) => {
                if matches!(self.stack.last(), Some(Frame::SkipKey { .. })) {
                    return;
                }
                let mut span = self.scalar_span(&marker, style, &value);
                if let Some(Frame::Map {
                    path,
                    key: key @ None,
                    seen,
                }) = self.stack.last_mut()
                {
                    match seen.get(&value) {
                        Some(first) => self.duplicates.push(Duplicate {
                            mapping: path.clone(),
                            key: value.clone(),
                            first: *first,
                            again: span,
                        }),
                        None => {
                            seen.insert(value.clone(), span);
                        }
                    }
                    *key = Some((value, span));
                    return;
                }
                let Some((path, key)) = self.next_path() else {
                    return;
                };
                // An empty value (`mapping:` with nothing after it) is marked where the next
                // token starts, often lines below; the place to point at is its key.
                if value.is_empty()
                    && style == TScalarStyle::Plain
                    && let Some(key) = key
                {
                    span = key;
                }
                let style = match style {
                    TScalarStyle::Plain => ScalarStyle::Plain,
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => ScalarStyle::Quoted,
                    _ => ScalarStyle::Block,
                };
                self.record(path, key, span, style);
            }
            Event::Alias(_) => {
                if matches!(self.stack.last(), Some(Frame::SkipKey { .. })) {
                    return;
                }
                if let Some((path, key)) = self.next_path() {
                    let value = Span {
                        line: marker.line(),
                        column: marker.col() + 1,
                        len: 1,
                    };
                    self.record(path, key, value, ScalarStyle::Container);
                }
            }
            Event::MappingStart(..) => self.container_start(&marker, true),
            Event::SequenceStart(..) => self.container_start(&marker, false),
            Event::MappingEnd | Event::SequenceEnd => self.container_end(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse(Path::new("t.yaml"), text.to_string()).unwrap()
    }

    fn at(location: Location) -> (usize, usize, usize) {
        (location.line, location.column, location.len)
    }

    #[test]
    fn scalars_keys_and_sequence_items_are_located() {
        let d = doc(
            "source:\n  params:\n    a: \"x {{ y }}\"\n    b: plain text\n  list:\n    - 1\n    - k: v\n",
        );
        let params = YamlPath::root().key("source").key("params");
        assert_eq!(at(d.locate(&params.key("a"))), (3, 8, 11));
        assert_eq!(at(d.locate_key(&params.key("a"))), (3, 5, 1));
        assert_eq!(at(d.locate(&params.key("b"))), (4, 8, 10));
        assert_eq!(
            at(d.locate(&params)),
            (2, 3, 6),
            "containers point at their key"
        );
        let list = YamlPath::root().key("source").key("list");
        assert_eq!(at(d.locate(&list.index(0))), (6, 7, 1));
        assert_eq!(at(d.locate(&list.index(1).key("k"))), (7, 10, 1));
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let d = doc("source:\n  params: {}\n");
        let missing = YamlPath::root().key("source").key("params").key("nope");
        assert_eq!(at(d.locate(&missing)), (2, 3, 6));
    }

    #[test]
    fn positions_inside_templates_account_for_quotes_and_blocks() {
        let d = doc("a: \"{{ x }}\"\nb: |\n  line one\n  {{ y }}\n");
        assert_eq!(
            at(d.locate_in_scalar(&YamlPath::root().key("a"), 1, 4, 1)),
            (1, 8, 1)
        );
        assert_eq!(
            at(d.locate_in_scalar(&YamlPath::root().key("b"), 2, 4, 1)),
            (4, 6, 1)
        );
    }

    #[test]
    fn syntax_errors_carry_their_position_once() {
        let err = Document::parse(Path::new("t.yaml"), "a: [1, 2\nb: 1\n".to_string()).unwrap_err();
        let location = err.location().unwrap();
        assert_eq!((location.line, location.column), (2, 2));
        assert!(
            err.message().starts_with("invalid YAML: "),
            "{}",
            err.message()
        );
        assert!(
            !err.message().contains("at line 2 column 2"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_duplicate_key_is_reported_where_it_is_written_again() {
        let err = Document::parse(
            Path::new("t.yaml"),
            "a: 1\nmapping:\n  x: 1\n  FBillNo: 2\n  FBillNo: 3\n".to_string(),
        )
        .unwrap_err();
        assert_eq!(err.message(), "duplicate key `FBillNo` in `mapping`");
        assert_eq!(at(err.location().unwrap().clone()), (5, 3, 7));
        assert_eq!(
            err.hint(),
            Some("`FBillNo` is first defined at 4:3; keep one of them")
        );
    }

    #[test]
    fn an_empty_value_is_located_at_its_key() {
        let d = doc("a:\n  b:\nc: 1\n");
        assert_eq!(at(d.locate(&YamlPath::root().key("a").key("b"))), (2, 3, 1));
    }

    #[test]
    fn a_quote_left_open_is_reported_where_it_opens() {
        let err = Document::parse(
            Path::new("t.yaml"),
            "m:\n  a: \"{{ x }}   # note\n  b: \"{{ y }}\"\n".to_string(),
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "invalid YAML: this quote is not closed on its line"
        );
        assert_eq!(at(err.location().unwrap().clone()), (2, 6, 1));
    }

    #[test]
    fn a_flow_collection_is_located_at_its_bracket() {
        let d = doc("[\n  {\"a\": 1},\n  {\"a\": 2}\n]\n");
        assert_eq!(at(d.locate(&YamlPath::root())), (1, 1, 1));
    }

    #[test]
    fn an_unquoted_template_key_does_not_derail_later_positions() {
        let d = doc("a: {{ x }}\nb: 1\n");
        assert_eq!(at(d.locate(&YamlPath::root().key("b"))), (2, 4, 1));
    }

    #[test]
    fn paths_display_like_the_docs_write_them() {
        let path = YamlPath::root()
            .key("mapping")
            .key("FEntity")
            .index(2)
            .key("FNote");
        assert_eq!(path.to_string(), "mapping.FEntity[2].FNote");
        assert_eq!(YamlPath::root().to_string(), "(top level)");
    }
}
