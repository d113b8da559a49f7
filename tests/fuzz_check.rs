//! A fuzz test of `engine check`: mutated copies of the bundled files (the flow, both
//! connectors, the value maps, the API schemas), each checked in-process. Whatever the
//! mutation, `check` must not panic, must finish within a few seconds, and every error it
//! reports must be located at a file and line.
//!
//! `cargo test` runs a fixed seed and a modest number of cases; run longer by hand with
//! `ENGINE_FUZZ_CASES=100000 ENGINE_FUZZ_SEED=7 cargo test --test integration fuzz_check`.
//! A failure names its seed and case, and keeps the mutated copy for a look.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use engine::check;
use engine::diagnostic::{self, Severity, SourceCache};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::check::flow_env;
use crate::support::repo_root;

/// Cases `cargo test` runs (each a fresh copy with one to three mutations).
const DEFAULT_CASES: u64 = 150;
const DEFAULT_SEED: u64 = 20_261_205;
/// How long one `check` may take before the case counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// The files mutated, relative to the project root.
const FILES: &[&str] = &[
    "mappings/refund.yaml",
    "mappings/connectors/wdt_qimen.yaml",
    "mappings/connectors/kingdee_k3cloud.yaml",
    "mappings/value_maps/material.csv",
    "mappings/value_maps/shop_customer.csv",
    "mappings/value_maps/unit.csv",
    "mappings/value_maps/warehouse_stock.csv",
    "schemas/api/wdt.stockin.order.query.refund.json",
    "schemas/api/kingdee.SAL_RETURNSTOCK.json",
    "schemas/api/kingdee.save_params.json",
];

/// Values a scalar may be replaced with: other types, huge numbers, templates, YAML oddities.
const SCALARS: &[&str] = &[
    "",
    "null",
    "~",
    "true",
    "-1",
    "0",
    "1.5",
    "99999999999999999999999999",
    "-9223372036854775809",
    "1e400",
    "999999999999d",
    "100000000d",
    "[]",
    "{}",
    "[1, [2, {a: b}]]",
    "\"{{ x }}\"",
    "\"{{ env | tojson }}\"",
    "\"{{ debug() }}\"",
    "\"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\"",
    "\"{{ 'x' * 1000000000 }}\"",
    "\"{{ x | datetime('%Q') }}\"",
    "\"{{\"",
    "'a'",
    "!foo 1",
    "!!binary aGk=",
    "*nope",
    "&a 1",
    "- x",
    "|\n  block",
    "\"\\xff\"",
    "名称",
    "$[*]",
    "$..[?(@.a",
    "/dev/zero",
    "/dev/null",
    "../../..",
];

fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// One mutation of `bytes`, and its name (for the failure message).
fn mutate(rng: &mut ChaCha8Rng, bytes: &[u8]) -> (Vec<u8>, String) {
    let mut lines = lines(bytes);
    if lines.is_empty() {
        lines.push(b"\n".to_vec());
    }
    let n = lines.len();
    let (i, j) = (below(rng, n), below(rng, n));
    let what = match below(rng, 14) {
        0 => {
            lines.remove(i);
            format!("delete line {}", i + 1)
        }
        1 => {
            let line = lines[i].clone();
            lines.insert(i, line);
            format!("duplicate line {}", i + 1)
        }
        2 => {
            lines.swap(i, j);
            format!("swap lines {} and {}", i + 1, j + 1)
        }
        3 | 4 => {
            let scalar = SCALARS[below(rng, SCALARS.len())];
            let line = String::from_utf8_lossy(&lines[i]).into_owned();
            let replaced = match line.find(": ") {
                Some(at) => format!("{}: {scalar}\n", &line[..at]),
                None => format!("{scalar}\n"),
            };
            lines[i] = replaced.into_bytes();
            format!("line {}: value `{scalar}`", i + 1)
        }
        5 => {
            let depth = 1 + below(rng, 300);
            let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            lines[i] = format!("nested: {nested}\n").into_bytes();
            format!("line {}: nesting {depth}", i + 1)
        }
        6 => {
            let line = String::from_utf8_lossy(&lines[i]).into_owned();
            let anchored = line.replacen(": ", ": &a ", 1);
            lines[i] = anchored.into_bytes();
            let alias = String::from_utf8_lossy(&lines[j]).into_owned();
            lines[j] = alias
                .find(": ")
                .map_or(alias.clone(), |at| format!("{}: *a\n", &alias[..at]))
                .into_bytes();
            format!("anchor on line {}, alias on line {}", i + 1, j + 1)
        }
        7 => {
            let line = String::from_utf8_lossy(&lines[i]).into_owned();
            lines[i] = line.replacen(": ", ": !tag ", 1).into_bytes();
            format!("tag on line {}", i + 1)
        }
        8 => {
            let at = below(rng, lines[i].len() + 1);
            let junk: &[u8] = match below(rng, 6) {
                0 => b"\xff\xfe",
                1 => b"\xc3",
                2 => b"\t",
                3 => b"\r",
                4 => b"\0",
                _ => b"\"",
            };
            lines[i].splice(at..at, junk.iter().copied());
            format!("bytes {junk:?} into line {} at {at}", i + 1)
        }
        9 => {
            let line = &mut lines[i];
            if !line.is_empty() {
                let at = below(rng, line.len());
                line[at] = (rng.next_u32() & 0xff) as u8;
            }
            format!("a random byte in line {}", i + 1)
        }
        10 => {
            let indent = " ".repeat(below(rng, 6));
            let mut line = indent.into_bytes();
            line.extend(lines[i].iter().skip_while(|b| **b == b' '));
            lines[i] = line;
            format!("re-indent line {}", i + 1)
        }
        11 => {
            lines.truncate(i);
            format!("truncate after line {i}")
        }
        12 => {
            let copies = 1 + below(rng, 2_000);
            let line = lines[i].clone();
            for _ in 0..copies {
                lines.insert(i, line.clone());
            }
            format!("line {} repeated {copies} times", i + 1)
        }
        _ => {
            lines.insert(i, b"---\n".to_vec());
            format!("document marker before line {}", i + 1)
        }
    };
    (lines.concat(), what)
}

/// A copy of the bundled files with one to three mutations; the mutations, in words.
fn mutated_copy(rng: &mut ChaCha8Rng, root: &Path) -> Vec<String> {
    for file in FILES {
        let to = root.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo_root().join(file), &to).unwrap();
    }
    let mut done = Vec::new();
    for _ in 0..1 + below(rng, 3) {
        let file = FILES[below(rng, FILES.len())];
        let path = root.join(file);
        let (bytes, what) = mutate(rng, &std::fs::read(&path).unwrap());
        std::fs::write(&path, bytes).unwrap();
        done.push(format!("{file}: {what}"));
    }
    done
}

/// Check the copy at `root` on another thread: the rendered errors that lack a line, or
/// why the case failed (a panic, a hang).
fn check_copy(root: &Path) -> Result<Vec<String>, String> {
    let paths = vec![root.join("mappings")];
    let env = flow_env();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let outcome = check::check(&paths, &env);
            let mut sources = SourceCache::new();
            let mut unlocated = Vec::new();
            for d in &outcome.diagnostics {
                let rendered = diagnostic::render(d, &mut sources);
                let located = d.location.as_ref().is_some_and(|l| l.line > 0);
                if d.severity == Severity::Error && !located {
                    unlocated.push(rendered);
                }
            }
            unlocated
        }));
        let _ = sender.send(outcome);
    });
    match receiver.recv_timeout(HANG) {
        Ok(Ok(unlocated)) => Ok(unlocated),
        Ok(Err(panic)) => Err(format!(
            "check panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
        Err(_) => Err(format!("check took more than {HANG:?}")),
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn fuzz_check_never_panics_hangs_or_leaves_an_error_unlocated() {
    let cases = setting("ENGINE_FUZZ_CASES", DEFAULT_CASES);
    let seed = setting("ENGINE_FUZZ_SEED", DEFAULT_SEED);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut failures = Vec::new();
    for case in 0..cases {
        let dir = tempfile::tempdir().unwrap();
        let mutations = mutated_copy(&mut rng, dir.path());
        let problem = match check_copy(dir.path()) {
            Ok(unlocated) if unlocated.is_empty() => continue,
            Ok(unlocated) => format!("errors without a line:\n{}", unlocated.join("\n")),
            Err(failure) => failure,
        };
        let kept: PathBuf = dir.keep();
        failures.push(format!(
            "seed {seed} case {case} ({}), kept in {}:\n{problem}",
            mutations.join("; "),
            kept.display()
        ));
        if failures.len() >= 10 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
