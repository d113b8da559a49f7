//! Where a tree's evaluation goes: a `serde_json` value ([`JsonSink`]), or its compact JSON
//! text written as it is evaluated ([`TextSink`]), the same bytes `serde_json::to_vec` makes
//! of that value, without building it.
//!
//! A run's mapped records are text: the ledger keeps it, the request sends it and the content
//! hash is taken from it, so building each record as a tree of maps (an ordered map, its hash
//! table and its key for every `{"FNumber": …}`) only to serialise and free it was most of a
//! record's allocations.

use serde_json::{Map, Value as Json};

/// The output of an evaluation, written in document order. A value started and then given
/// up (a field whose `$if` is false, a line `skip_line` drops) is undone with [`Sink::rewind`]
/// to a [`Sink::mark`] taken before it.
pub trait Sink {
    type Mark: Copy;

    fn mark(&self) -> Self::Mark;
    fn rewind(&mut self, mark: Self::Mark);
    /// Open an object (`true`) or an array; [`Sink::close`] closes it.
    fn open(&mut self, object: bool);
    fn close(&mut self);
    /// The key of the next value, inside an object.
    fn key(&mut self, key: &str);
    fn value(&mut self, value: &Json);
    /// The value written since `mark` (one whole value, inside an object still open).
    fn value_since(&self, mark: Self::Mark) -> Option<Json>;
}

/// Builds the `serde_json` value.
#[derive(Default)]
pub struct JsonSink {
    /// The objects and arrays open, outermost first, each with the key it goes under.
    open: Vec<(Option<String>, Json)>,
    key: Option<String>,
    done: Option<Json>,
}

impl JsonSink {
    /// The value written (`null` if none was).
    pub fn into_json(self) -> Json {
        debug_assert!(self.open.is_empty(), "every object and array closed");
        self.done.unwrap_or(Json::Null)
    }

    fn put(&mut self, value: Json) {
        match self.open.last_mut() {
            None => self.done = Some(value),
            Some((_, Json::Array(items))) => items.push(value),
            Some((_, Json::Object(map))) => {
                let key = self
                    .key
                    .take()
                    .expect("a key before each value of an object");
                map.insert(key, value);
            }
            Some(_) => unreachable!("only objects and arrays are open"),
        }
    }
}

impl Sink for JsonSink {
    /// How many are open, and how many items the innermost one holds.
    type Mark = (usize, usize);

    fn mark(&self) -> (usize, usize) {
        let items = match self.open.last() {
            Some((_, Json::Array(items))) => items.len(),
            Some((_, Json::Object(map))) => map.len(),
            _ => 0,
        };
        (self.open.len(), items)
    }

    fn rewind(&mut self, (open, items): (usize, usize)) {
        self.open.truncate(open);
        self.key = None;
        match self.open.last_mut() {
            Some((_, Json::Array(list))) => list.truncate(items),
            // A value is undone only before it is put into an object (see `Sink`).
            Some((_, Json::Object(map))) => debug_assert_eq!(map.len(), items),
            _ => {}
        }
    }

    fn open(&mut self, object: bool) {
        let empty = if object {
            Json::Object(Map::new())
        } else {
            Json::Array(Vec::new())
        };
        let key = self.key.take();
        self.open.push((key, empty));
    }

    fn close(&mut self) {
        let (key, value) = self.open.pop().expect("an object or array open");
        self.key = key;
        self.put(value);
    }

    fn key(&mut self, key: &str) {
        self.key = Some(key.to_string());
    }

    fn value(&mut self, value: &Json) {
        self.put(value.clone());
    }

    fn value_since(&self, _: (usize, usize)) -> Option<Json> {
        match self.open.last() {
            Some((_, Json::Object(map))) => map.values().next_back().cloned(),
            _ => None,
        }
    }
}

/// Writes compact JSON text.
#[derive(Default)]
pub struct TextSink {
    text: Vec<u8>,
    /// The objects and arrays open, innermost last.
    open: Vec<Open>,
    /// A key was just written: the next value follows it without a comma.
    after_key: bool,
    /// The most objects and arrays open at once.
    deepest: usize,
}

/// An object or array a [`TextSink`] has open.
#[derive(Debug, Clone, Copy)]
struct Open {
    object: bool,
    /// No item yet: no comma before the next.
    empty: bool,
}

impl TextSink {
    /// The text written.
    pub fn into_text(self) -> String {
        debug_assert!(self.open.is_empty(), "every object and array closed");
        // Only serde_json's output and ASCII punctuation were written.
        String::from_utf8(self.text).expect("JSON text is UTF-8")
    }

    /// The most objects and arrays that were open at once.
    pub fn deepest(&self) -> usize {
        self.deepest
    }

    /// A comma before an item that is not the first of its object or array.
    fn separate(&mut self) {
        if std::mem::take(&mut self.after_key) {
            return;
        }
        if let Some(open) = self.open.last_mut()
            && !std::mem::take(&mut open.empty)
        {
            self.text.push(b',');
        }
    }
}

/// Where a [`TextSink`] was.
#[derive(Debug, Clone, Copy)]
pub struct TextMark {
    len: usize,
    open: usize,
    /// Whether the innermost one open was empty.
    empty: bool,
    after_key: bool,
}

impl Sink for TextSink {
    type Mark = TextMark;

    fn mark(&self) -> TextMark {
        TextMark {
            len: self.text.len(),
            open: self.open.len(),
            empty: self.open.last().is_none_or(|open| open.empty),
            after_key: self.after_key,
        }
    }

    fn rewind(&mut self, mark: TextMark) {
        self.text.truncate(mark.len);
        self.open.truncate(mark.open);
        if let Some(open) = self.open.last_mut() {
            open.empty = mark.empty;
        }
        self.after_key = mark.after_key;
    }

    fn open(&mut self, object: bool) {
        self.separate();
        self.text.push(if object { b'{' } else { b'[' });
        self.open.push(Open {
            object,
            empty: true,
        });
        self.deepest = self.deepest.max(self.open.len());
    }

    fn close(&mut self) {
        let open = self.open.pop().expect("an object or array open");
        self.text.push(if open.object { b'}' } else { b']' });
    }

    fn key(&mut self, key: &str) {
        self.separate();
        // Writing into memory cannot fail.
        serde_json::to_writer(&mut self.text, key).expect("JSON into memory");
        self.text.push(b':');
        self.after_key = true;
    }

    fn value(&mut self, value: &Json) {
        self.separate();
        if matches!(value, Json::Array(_) | Json::Object(_)) {
            self.deepest = self.deepest.max(self.open.len() + depth(value));
        }
        serde_json::to_writer(&mut self.text, value).expect("JSON into memory");
    }

    fn value_since(&self, mark: TextMark) -> Option<Json> {
        serde_json::from_slice(&self.text[mark.len..]).ok()
    }
}

/// How many objects and arrays `value` nests (0 for a scalar).
fn depth(value: &Json) -> usize {
    match value {
        Json::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Json::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
