//! A reader of the Prometheus text format (0.0.4), strict enough to refuse what a scraper
//! would: every line a `# HELP`/`# TYPE` comment or a sample `name{label="value",…} number`.

use std::collections::BTreeMap;

/// One sample: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key` (empty when absent).
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

/// Every sample of `text`, panicking on a line that is neither a comment nor a sample.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        samples.push(sample(line).unwrap_or_else(|| panic!("not a sample: {line:?} in\n{text}")));
    }
    samples
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid_name {
        return None;
    }
    let chars: Vec<char> = line[name_end..].chars().collect();
    let mut at = 0;
    let mut labels = BTreeMap::new();
    if chars.first() == Some(&'{') {
        at = 1;
        while chars.get(at) != Some(&'}') {
            let mut key = String::new();
            while let Some(c) = chars
                .get(at)
                .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
            {
                key.push(*c);
                at += 1;
            }
            if key.is_empty() || chars.get(at) != Some(&'=') || chars.get(at + 1) != Some(&'"') {
                return None;
            }
            at += 2;
            let mut value = String::new();
            loop {
                match *chars.get(at)? {
                    '"' => break,
                    '\\' => {
                        at += 1;
                        value.push(match *chars.get(at)? {
                            'n' => '\n',
                            '\\' => '\\',
                            '"' => '"',
                            _ => return None,
                        });
                    }
                    c => value.push(c),
                }
                at += 1;
            }
            at += 1;
            labels.insert(key, value);
            match chars.get(at) {
                Some(',') => at += 1,
                Some('}') => {}
                _ => return None,
            }
        }
        at += 1;
    }
    if chars.get(at) != Some(&' ') {
        return None;
    }
    let value: String = chars[at + 1..].iter().collect();
    let value = match value.as_str() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The sum of the samples named `name` whose labels include every pair of `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == *v))
        .map(|s| s.value)
        .sum()
}
