//! The real side of a script as `NOBODY`: Linux lets root past every permission bit, so a
//! script that tests permissions runs its real side in a child of this binary
//! (`heldlock parity --real-side`) started as uid and gid 65534, which reads the script on
//! stdin, runs it through the real adapter (fd squeeze included) and prints the outcomes.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use heldlock_core::memfs::UMASK;
use serde::{Deserialize, Serialize};

use super::fs_diff::{self, Outcome};
use super::script::{Script, NOBODY};

/// What the parent sends the child.
#[derive(Serialize, Deserialize)]
struct Job {
    script: Script,
    root: PathBuf,
}

/// The real side of `script` under `root`, run by `helper` as `NOBODY`.
pub fn real_outcomes(helper: &Path, script: &Script, root: &Path) -> Result<Vec<Outcome>, String> {
    let job = Job {
        script: script.clone(),
        root: root.to_owned(),
    };
    let job = serde_json::to_vec(&job).map_err(|e| format!("cannot encode the script: {e}"))?;
    let mut child = Command::new(helper)
        .args(["parity", "--real-side"])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {} as uid {NOBODY}: {e}", helper.display()))?;
    // Written whole and closed before the child answers (it reads to the end first).
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(&job));
    let output = child.wait_with_output().map_err(|e| format!("the unprivileged side: {e}"))?;
    if let Some(Err(e)) = written {
        return Err(format!("cannot send the script to the unprivileged side: {e}"));
    }
    if !output.status.success() {
        return Err(format!(
            "the unprivileged side failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("the unprivileged side's answer: {e}"))
}

/// `heldlock parity --real-side`: the child's work; the outcomes as JSON.
pub fn serve() -> Result<String, String> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read the script: {e}"))?;
    let job: Job = serde_json::from_slice(&input).map_err(|e| format!("not a parity job: {e}"))?;
    // SAFETY: umask only sets this process's file-creation mask; MemFs creates with the same.
    unsafe { libc::umask(UMASK as libc::mode_t) };
    let rt = super::runtime()?;
    let outcomes = fs_diff::real_outcomes(&job.script, &job.root, &rt)?;
    serde_json::to_string(&outcomes).map_err(|e| format!("cannot encode the outcomes: {e}"))
}
