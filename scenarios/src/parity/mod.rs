//! `heldlock parity`: the in-memory world checked against Linux. Seeded random scripts of `Fs`
//! operations run through MemFs and through the real adapter on a temp directory and are
//! compared op by op (`fs_diff`); real child processes in every state the judge meets are
//! probed through the real adapter and through `memprocs` (`procs`). A difference prints the
//! shortest script that shows it and the command that replays it.

pub mod fdroom;
pub mod fs_diff;
pub mod procs;
pub mod script;

use std::path::{Path, PathBuf};

use clap::Args;

use script::Script;

#[derive(Args, Debug)]
pub struct ParityArgs {
    /// Filesystem scripts to run (script k has seed S + k).
    #[arg(long, default_value_t = 2000)]
    pub scripts: u64,
    /// The first script's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the process check (it spawns children and, as root, a helper as uid 65534).
    #[arg(long)]
    pub no_procs: bool,
    /// Internal: probe these pids through the real adapter and print what was found (the
    /// unprivileged helper of the process check).
    #[arg(long, hide = true, value_delimiter = ',')]
    pub probe_pids: Option<Vec<u32>>,
}

/// The figures of a parity run.
#[derive(Debug, Default)]
pub struct ParitySummary {
    pub scripts: u64,
    pub ops: u64,
    pub squeezed: u64,
    /// Stat pairs where Linux gave a freed inode number to a new file (allowed, see `fs_diff`).
    pub inode_reuses: u64,
    pub fs_mismatch: Option<(Script, fs_diff::FsMismatch)>,
    pub procs: Option<procs::ProcsReport>,
}

impl ParitySummary {
    pub fn clean(&self) -> bool {
        self.fs_mismatch.is_none() && self.procs.as_ref().is_none_or(|p| p.mismatches.is_empty())
    }
}

/// A runtime for the real adapter's futures: current thread, no I/O driver (no descriptors
/// of its own, which the fd squeeze counts on).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

/// Run `count` filesystem scripts from `seed`; stop at the first difference and shrink it.
/// `squeeze_fds` lowers this process's fd limit during squeezed scripts: only where nothing
/// else in the process opens files meanwhile.
pub fn run_fs(seed: u64, count: u64, squeeze_fds: bool, summary: &mut ParitySummary) -> Result<(), String> {
    let rt = runtime()?;
    for k in 0..count {
        let script = Script::generate(seed.wrapping_add(k), squeeze_fds);
        summary.scripts += 1;
        summary.ops += script.ops.len() as u64;
        summary.squeezed += u64::from(script.fd_room < script::PLENTY_FDS);
        if let Some(found) = fs_diff::run_script(&script, &rt, &mut summary.inode_reuses)? {
            summary.fs_mismatch = Some(fs_diff::shrink(&script, found, &rt));
            return Ok(());
        }
    }
    Ok(())
}

/// The report of a summary, as `heldlock parity` prints it.
pub fn report(summary: &ParitySummary, squeeze_fds: bool) -> String {
    let mut out = format!(
        "heldlock parity — {} filesystem scripts ({} ops, {} with a squeezed fd table{})\n",
        summary.scripts,
        summary.ops,
        summary.squeezed,
        if squeeze_fds { "" } else { ": squeeze off" }
    );
    match &summary.fs_mismatch {
        None => {
            out += &format!(
                "  filesystem  MemFs answered as Linux on every op (Linux reused a freed inode number in {} stat pairs)\n",
                summary.inode_reuses
            )
        }
        Some((script, found)) => {
            out += &format!(
                "  filesystem  MISMATCH in script seed {} (fd room {}):\n",
                script.seed, script.fd_room
            );
            out += &format!("    {found}\n    shortest script ({} ops):\n", script.ops.len());
            for (i, op) in script.ops.iter().enumerate() {
                out += &format!("      #{i} {op}\n");
            }
            out += &format!("    reproduce: heldlock parity --scripts 1 --seed {} --no-procs\n", script.seed);
        }
    }
    match &summary.procs {
        None => out += "  processes   not checked\n",
        Some(p) => {
            let verdict = if p.mismatches.is_empty() {
                "memprocs answered as Linux"
            } else {
                "MISMATCH"
            };
            out += &format!("  processes   {} checks: {verdict}\n", p.checks);
            for m in &p.mismatches {
                out += &format!("    MISMATCH {m}\n");
            }
            for n in &p.notes {
                out += &format!("    note: {n}\n");
            }
        }
    }
    out
}

/// `heldlock parity`. `Ok(true)`: no difference; `Ok(false)`: one was found; `Err`: bad input
/// or an environment that cannot run the check (exit 2).
pub fn cli(args: ParityArgs) -> Result<bool, String> {
    if let Some(pids) = &args.probe_pids {
        crate::print_quietly(&procs::probe_lines(pids));
        return Ok(true);
    }
    if args.scripts == 0 && args.no_procs {
        return Err("nothing to check: --scripts 0 with --no-procs".into());
    }
    let mut summary = ParitySummary::default();
    run_fs(args.seed, args.scripts, true, &mut summary)?;
    if !args.no_procs {
        let exe: PathBuf = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        summary.procs = Some(procs::run(Path::new(&exe))?);
    }
    crate::print_quietly(&report(&summary, true));
    Ok(summary.clean())
}
