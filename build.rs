//! The version line of `deployer --version`, as cargo's: the package
//! version, then the commit it was built from and that commit's date,
//! `0.1.0 (96ddee9 2026-12-07)`, given to the crate as
//! `DEPLOYER_VERSION`. The date is the commit's, not the clock's, so that
//! building the same commit twice gives the same binary.
//!
//! A build outside a git checkout (a source archive, a vendored copy) or
//! without `git` on PATH says the package version alone: nothing here may
//! fail the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    println!("cargo:rerun-if-changed=build.rs");
    let Some((hash, date)) = commit() else {
        println!("cargo:rustc-env=DEPLOYER_VERSION={version}");
        return;
    };
    println!("cargo:rustc-env=DEPLOYER_VERSION={version} ({hash} {date})");
    // a new commit or a checkout changes HEAD or the branch it names
    // (watching a path that does not exist would rerun on every build)
    for path in watched() {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// `git` in the package's directory; its output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TZ", "UTC")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The abbreviated hash and the date (`YYYY-MM-DD`, UTC) of the commit
/// checked out, when the package is the top of a git checkout (not a copy
/// of it inside some other repository, whose commit would say nothing
/// about this code).
fn commit() -> Option<(String, String)> {
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if Path::new(&top).canonicalize().ok()? != here.canonicalize().ok()? {
        return None;
    }
    let shown = git(&[
        "-c",
        "log.showSignature=false",
        "log",
        "-1",
        "--date=format-local:%Y-%m-%d",
        "--format=%h %cd",
    ])?;
    let (hash, date) = shown.split_once(' ')?;
    Some((hash.to_string(), date.to_string()))
}

/// The files whose change means another commit is checked out: HEAD, the
/// branch it points to, and the packed refs (a worktree's HEAD is in its
/// own git directory, its branches in the common one).
fn watched() -> Vec<PathBuf> {
    let (Some(dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) else {
        return Vec::new();
    };
    let (dir, common) = (Path::new(&dir), Path::new(&common));
    let mut paths = vec![dir.join("HEAD"), common.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(common.join(branch));
    }
    paths
}
