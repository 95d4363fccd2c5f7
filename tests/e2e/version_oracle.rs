//! Checks `deployer::version::Version` against the real dpkg.
//!
//! Two oracles: the hand-written corpus in `tests/data/version_cases.txt`
//! (which must itself agree with dpkg), and thousands of pairs of the real
//! version strings found on this machine (apt's package lists and the dpkg
//! database). Without `dpkg` the tests print why they skip, unless `CI=true`,
//! where a missing oracle is a failure rather than a silent pass.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::skip::skip;
use deployer::version::Version;

const CORPUS: &str = include_str!("../data/version_cases.txt");
const APT_LISTS: &str = "/var/lib/apt/lists";
const MIN_REAL_PAIRS: usize = 3000;
/// dpkg costs a process per comparison; a few threads keep this test quick
/// without hogging a shared machine.
const THREADS: usize = 3;
/// The sampling seed; any fixed non-zero value will do.
const SEED: u64 = 0x5EED_0D9B_2024_0001;

/// Returns `false` (after saying why) when the test cannot run here; panics
/// instead when `CI=true`, because CI must not pass without its oracle.
fn dpkg_available() -> bool {
    let why = match Command::new("dpkg").arg("--version").output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!("`dpkg --version` exited with {}", out.status),
        Err(e) => format!("cannot run `dpkg`: {e}"),
    };
    skip(&why);
    false
}

fn dpkg_op(ord: Ordering) -> &'static str {
    match ord {
        Ordering::Less => "lt",
        Ordering::Equal => "eq",
        Ordering::Greater => "gt",
    }
}

/// Asks dpkg whether `a <op> b`; `Err` carries dpkg's complaint.
fn dpkg_says(a: &str, op: &str, b: &str) -> Result<bool, String> {
    let out = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .output()
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) if stderr.is_empty() => Ok(true),
        Some(1) if stderr.is_empty() => Ok(false),
        _ => Err(format!(
            "`dpkg --compare-versions {a} {op} {b}` exited with {}: {}",
            out.status,
            stderr.trim()
        )),
    }
}

/// dpkg's ordering of two versions, in up to two calls.
fn dpkg_order(a: &str, b: &str) -> Result<Ordering, String> {
    if dpkg_says(a, "lt", b)? {
        Ok(Ordering::Less)
    } else if dpkg_says(a, "eq", b)? {
        Ok(Ordering::Equal)
    } else {
        Ok(Ordering::Greater)
    }
}

/// Compares one pair with our `Version` and with dpkg; `Some` describes a
/// disagreement (or a version only one side accepts).
fn check_pair(a: &str, b: &str) -> Option<String> {
    let ours = match (a.parse::<Version>(), b.parse::<Version>()) {
        (Ok(va), Ok(vb)) => va.cmp(&vb),
        (Err(e), _) | (_, Err(e)) => return Some(format!("we reject a version dpkg uses: {e}")),
    };
    // One dpkg call confirms our answer; more only to explain a mismatch.
    match dpkg_says(a, dpkg_op(ours), b) {
        Ok(true) => None,
        Ok(false) => Some(match dpkg_order(a, b) {
            Ok(theirs) => format!("{a} vs {b}: we say {ours:?}, dpkg says {theirs:?}"),
            Err(e) => e,
        }),
        Err(e) => Some(e),
    }
}

/// Runs [`check_pair`] over `pairs` on a few threads; returns every problem.
fn check_pairs(pairs: &[(String, String)]) -> Vec<String> {
    let chunk = pairs.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|(a, b)| check_pair(a, b))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("checker thread panicked"))
            .collect()
    })
}

#[test]
fn corpus_agrees_with_dpkg_and_with_us() {
    let mut cases = Vec::new();
    for (index, line) in CORPUS.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [a, op, b] = fields[..] else {
            panic!(
                "version_cases.txt:{}: expected `A OP B`, got `{line}`",
                index + 1
            );
        };
        let expected = match op {
            "<<" => Ordering::Less,
            "=" => Ordering::Equal,
            ">>" => Ordering::Greater,
            _ => panic!("version_cases.txt:{}: unknown operator `{op}`", index + 1),
        };
        cases.push((index + 1, a.to_string(), b.to_string(), expected));
    }
    assert!(
        cases.len() >= 60,
        "the corpus should hold at least 60 cases"
    );

    let mut problems = Vec::new();
    for (line, a, b, expected) in &cases {
        match (a.parse::<Version>(), b.parse::<Version>()) {
            (Ok(va), Ok(vb)) if va.cmp(&vb) == *expected => {}
            (Ok(va), Ok(vb)) => problems.push(format!(
                "line {line}: {a} vs {b}: corpus says {expected:?}, we say {:?}",
                va.cmp(&vb)
            )),
            (Err(e), _) | (_, Err(e)) => problems.push(format!("line {line}: {e}")),
        }
    }

    if dpkg_available() {
        for (line, a, b, expected) in &cases {
            match dpkg_says(a, dpkg_op(*expected), b) {
                Ok(true) => {}
                Ok(false) => problems.push(format!(
                    "line {line}: {a} vs {b}: corpus says {expected:?}, dpkg disagrees"
                )),
                Err(e) => problems.push(format!("line {line}: {e}")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in version_cases.txt:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Reads one apt list, decompressing it with apt's own helper when needed.
fn read_list(path: &Path) -> Result<String, String> {
    let compressed = ["gz", "xz", "lz4", "zst", "bz2", "lzma"]
        .iter()
        .any(|ext| path.extension().is_some_and(|e| e == *ext));
    if !compressed {
        return std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    let out = Command::new("/usr/lib/apt/apt-helper")
        .arg("cat-file")
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run apt-helper for {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "apt-helper cat-file {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{}: {e}", path.display()))
}

/// Package name -> versions seen for it, from apt's lists and dpkg's
/// database; also how many list files were found.
fn real_versions() -> (BTreeMap<String, BTreeSet<String>>, usize) {
    let mut by_package: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut lists: Vec<PathBuf> = std::fs::read_dir(APT_LISTS)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains("_Packages"))
                })
                .collect()
        })
        .unwrap_or_default();
    lists.sort();
    for list in &lists {
        let text = read_list(list).unwrap_or_else(|e| panic!("{e}"));
        let mut package = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("Package:") {
                package = name.trim().to_string();
            } else if let Some(version) = line.strip_prefix("Version:") {
                by_package
                    .entry(package.clone())
                    .or_default()
                    .insert(version.trim().to_string());
            }
        }
    }
    if let Ok(out) = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Version}\n"])
        .output()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((name, version)) = line.split_once(' ') {
                if !version.is_empty() {
                    by_package
                        .entry(name.to_string())
                        .or_default()
                        .insert(version.to_string());
                }
            }
        }
    }
    (by_package, lists.len())
}

/// A fixed-seed xorshift generator: the same sample on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Picks pairs deterministically where mistakes are likely: versions of the
/// same package, neighbours in text order and in our order (near-equal
/// strings), and a random sample for breadth.
fn pick_pairs(by_package: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
    let mut pairs = BTreeSet::new();

    for versions in by_package.values() {
        let versions: Vec<&String> = versions.iter().collect();
        for (i, a) in versions.iter().enumerate() {
            for b in &versions[i + 1..] {
                pairs.insert(((*a).clone(), (*b).clone()));
            }
        }
    }

    let all: Vec<&String> = by_package
        .values()
        .flatten()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if all.len() < 2 {
        return pairs.into_iter().collect();
    }

    let step = (all.len() / 1500).max(1);
    for window in all.windows(2).step_by(step) {
        pairs.insert((window[0].clone(), window[1].clone()));
    }

    let mut ours: Vec<Version> = all.iter().filter_map(|v| v.parse().ok()).collect();
    ours.sort();
    for window in ours.windows(2).step_by(step) {
        pairs.insert((window[0].to_string(), window[1].to_string()));
    }

    let mut rng = Rng(SEED);
    for _ in 0..1500 {
        let a = all[rng.below(all.len())];
        let b = all[rng.below(all.len())];
        pairs.insert((a.clone(), b.clone()));
    }
    pairs.into_iter().collect()
}

#[test]
fn real_versions_on_this_machine_agree_with_dpkg() {
    if !dpkg_available() {
        return;
    }
    let (by_package, list_count) = real_versions();
    let pairs = pick_pairs(&by_package);
    if list_count > 0 {
        assert!(
            pairs.len() >= MIN_REAL_PAIRS,
            "found {list_count} apt lists in {APT_LISTS} but only {} pairs to compare",
            pairs.len()
        );
    } else if pairs.is_empty() {
        println!("skipped: no apt lists in {APT_LISTS} and no installed packages");
        return;
    }

    let problems = check_pairs(&pairs);
    assert!(
        problems.is_empty(),
        "{} of {} pairs disagree with dpkg:\n{}",
        problems.len(),
        pairs.len(),
        problems.join("\n")
    );
    println!("{} real version pairs agree with dpkg", pairs.len());
}
