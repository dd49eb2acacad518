//! The per-seed swarm profile: which actors exist, which fault kinds are on and at what rates.
//! Swarm testing: every seed draws its own mix, so rare combinations get their turn.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::faults::FaultKind;
use crate::seed::{derive, Stream};

/// The filesystem the sessions' directory is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mount {
    /// A local filesystem (ext4): `renameat2` with `RENAME_NOREPLACE` and `RENAME_EXCHANGE`.
    Local,
    /// An NFS mount, as the Linux client answers: `renameat2` with any flag is EINVAL
    /// (`nfs_rename`), so the lock publishes with `link` and reclaims by moving the judged lock
    /// aside with the plain `rename`; both work.
    Nfs,
    /// A FUSE mount whose daemon implements neither `rename` flags nor `link` (an sshfs
    /// without the hard-link extension): the kernel answers `renameat2` with a flag EINVAL
    /// (`fuse_rename2`) and the daemon answers `link` ENOSYS. The lock then creates in place
    /// (`O_EXCL` at the lock path, then the payload) and reclaims with the plain `rename`.
    Fuse,
}

impl Mount {
    pub fn name(self) -> &'static str {
        match self {
            Mount::Local => "local",
            Mount::Nfs => "nfs",
            Mount::Fuse => "fuse",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Gateway processes (one madsim node each).
    pub gateways: u32,
    /// Session transcripts the gateways share.
    pub sessions: u32,
    pub turns_per_gateway: u32,
    /// Fault kinds on for this seed.
    pub fault_kinds: Vec<FaultKind>,
    /// Share of fault sites (operation × path kind) switched on for this seed; the seed picks
    /// which. Only active sites fire errnos and hangs.
    pub site_activation: f64,
    /// Chance an fs op fails with an injected errno, inside a fault storm.
    pub fault_rate: f64,
    /// Share of 10 s windows that are fault storms (1.0: faults all the time). Real errno
    /// faults come in spells (an EMFILE spike, a flaky disk); between them the lock runs clean.
    pub storm_share: f64,
    /// Chance an fs op hangs until its process dies.
    pub hang_rate: f64,
    pub max_latency_ms: u64,
    /// Chance an fs op stalls for 0.2–3 s (a slow disk, an NFS hiccup): widens race windows.
    pub slow_op_rate: f64,
    /// Every op of one gateway in four is this many times slower (a process on a loaded host
    /// or a slow mount): its view of a lock file ages while faster peers act on it.
    pub slow_process_factor: u64,
    /// Per-process fd limit: small limits make EMFILE arise for real.
    pub fd_limit: usize,
    /// Chance a turn is aborted, and the share of aborts that are manual.
    pub abort_rate: f64,
    pub manual_abort_share: f64,
    /// Chance the provider stream of a turn hangs (ignoring the abort) / fails.
    pub stream_hang_rate: f64,
    pub stream_fail_rate: f64,
    /// Chance a stream runs for ~18 minutes (a long compaction): longer than maxHoldMs.
    pub long_stream_rate: f64,
    /// Chance the first write of a turn awaits a stream chunk while it holds the retained lock.
    pub retained_stream_rate: f64,
    /// Chance the prompt release is asked for from inside that write scope (deferred).
    pub deferred_release_rate: f64,
    /// Chance of a short-lock write (tool result) while the prompt streams.
    pub short_write_rate: f64,
    /// Chance a turn's teardown skips the cleanup writes.
    pub cleanup_skip_rate: f64,
    pub crashes: u32,
    pub pauses: u32,
    /// After a crash, the pid is taken over by another process.
    pub pid_reuse: bool,
    /// Liveness probes of foreign processes answer EPERM.
    pub eperm_probes: bool,
    /// External transcript edits per session (0: none), and the share of non-benign ones.
    pub external_edits: u32,
    pub external_nonbenign_share: f64,
    /// Some gateways open the transcript through a symlinked directory.
    pub alias_paths: bool,
    /// Whether gateways know their start time (without it, payloads carry none: recycled pids
    /// go unseen and only the non-owner check can recover a reused pid).
    pub starttimes_known: bool,
    /// Per-process wall clocks: each process's offset is drawn within ±this (ms). The
    /// processes share the transcripts over a network mount whose file times are the server's.
    pub clock_skew_ms: u64,
    /// Wall-clock steps (an NTP correction, a VM resume) of a running process, each up to
    /// ±`clock_step_max_ms`.
    pub clock_steps: u32,
    pub clock_step_max_ms: u64,
    /// Chance that a write failing with an errno got part of its bytes to the file first (a
    /// torn append, a half-written lock payload).
    pub torn_write_rate: f64,
    /// External deletes of a transcript (recreated later), replacements by a new inode with the
    /// same bytes, and same-length rewrites inside the fenced prefix, per session.
    pub transcript_tampering: u32,
    /// Foreign lock files planted at a lock path: garbage, empty, huge, a live foreign
    /// gateway's payload with another `createdAt` form or a short maxHoldMs, a dangling
    /// symlink, a directory.
    pub planted_locks: u32,
    /// Held lock files removed or replaced (new inode, same bytes) behind their holder's back.
    pub lock_tampering: u32,
    /// Gateways run as another user: probes of them answer EPERM while `/proc` stays readable.
    pub eperm_gateways: bool,
    /// Chance a turn runs a second attempt of the same process on the same transcript at once.
    pub overlap_rate: f64,
    /// Chance a turn calls cleanup or dispose from inside its write scope.
    pub in_scope_teardown_rate: f64,
    /// Chance a turn drops its cleanup lock without releasing it.
    pub cleanup_drop_rate: f64,
    /// Chance an abort arrives late: during the turn's teardown, while cleanup holds its lock.
    pub late_abort_rate: f64,
    /// Chance a turn's controller is disposed from another task while its last write scope
    /// works under the lock (a session reset or shutdown racing the turn): dispose must wait
    /// for the scope, and release nothing under it (SPEC §3 dispose, I6).
    pub outside_dispose_rate: f64,
    /// Chance a transcript append stalls past the abort settle bound (2.5–10 s) before it
    /// lands: an aborted turn's late write lands while the next attempt of its process works
    /// on the transcript (SPEC §3's owned writes, seed 84559's and 239242's interleavings).
    pub late_append_stall_rate: f64,
    /// One gateway embeds a plugin with a lock table of its own (two `ProcessLocks` in one
    /// process).
    pub plugin_lock_table: bool,
    /// How long each host trusts a lock path it saw absent (a network mount's negative lookup
    /// cache, `lookup_cache`): meanwhile its lookups answer ENOENT though another host created
    /// the lock. 0: no cache.
    pub negative_lookup_ttl_ms: u64,
    /// Chance the stat a writer makes right after its transcript append fails (a flaky
    /// server's getattr after a write): the append landed, and the writer cannot verify it.
    pub post_append_stat_fault_rate: f64,
    /// Acts of the error-recovery tamperer: after a gateway's transcript operation failed, at
    /// the first moment that session's lock is free, an outside tool re-saves the transcript
    /// (same bytes, new inode).
    pub recovery_tampering: u32,
    /// Edits aimed into the stalls of gateways' own transcript calls (`racing`), at most.
    pub racing_edits: u32,
    /// Removals of a held lock file aimed between a gateway's release check and its unlink
    /// (`lock_races`), at most.
    pub lock_races: u32,
    /// The mount kind: NFS in the seeds whose hosts cache negative lookups (a quarter), FUSE
    /// in an eighth of the others.
    pub mount: Mount,
}

impl Profile {
    /// The profile of `seed` for the default random campaign.
    pub fn swarm(seed: u64) -> Profile {
        let mut rng = ChaCha8Rng::seed_from_u64(derive(seed, Stream::Profile, 0));
        let mut fault_kinds: Vec<FaultKind> =
            FaultKind::ALL.into_iter().filter(|_| rng.gen_bool(0.5)).collect();
        if fault_kinds.is_empty() || rng.gen_bool(0.3) {
            // The incident's pair is common enough to deserve its own weight.
            fault_kinds.extend([FaultKind::Eio, FaultKind::Emfile]);
            fault_kinds.sort();
            fault_kinds.dedup();
        }
        let hang_on = fault_kinds.contains(&FaultKind::Hang);
        let mut profile = Profile {
            gateways: rng.gen_range(1..=4),
            // Weighted to one session: contention is where the lock earns its keep.
            sessions: [1, 1, 2][rng.gen_range(0..3)],
            turns_per_gateway: rng.gen_range(2..=5),
            fault_rate: [0.0, 0.01, 0.03, 0.08, 0.15][rng.gen_range(0..5)],
            storm_share: [0.1, 0.3, 1.0][rng.gen_range(0..3)],
            hang_rate: if hang_on {
                [0.002, 0.01, 0.03][rng.gen_range(0..3)]
            } else {
                0.0
            },
            fault_kinds,
            max_latency_ms: [0, 2, 10, 40][rng.gen_range(0..4)],
            slow_op_rate: [0.0, 0.01, 0.05, 0.1][rng.gen_range(0..4)],
            slow_process_factor: [1, 10][rng.gen_range(0..2)],
            fd_limit: [2, 3, 6, 64][rng.gen_range(0..4)],
            abort_rate: [0.0, 0.3, 0.6, 0.9][rng.gen_range(0..4)],
            manual_abort_share: rng.gen_range(0.0..=1.0),
            stream_hang_rate: [0.0, 0.2, 0.5][rng.gen_range(0..3)],
            stream_fail_rate: [0.0, 0.1, 0.3][rng.gen_range(0..3)],
            long_stream_rate: [0.0, 0.0, 0.0, 0.1][rng.gen_range(0..4)],
            retained_stream_rate: [0.0, 0.3, 0.7][rng.gen_range(0..3)],
            deferred_release_rate: [0.0, 0.3, 0.7][rng.gen_range(0..3)],
            short_write_rate: [0.0, 0.3, 0.7][rng.gen_range(0..3)],
            cleanup_skip_rate: [0.0, 0.5, 1.0][rng.gen_range(0..3)],
            crashes: [0, 1, 2, 3][rng.gen_range(0..4)],
            pauses: [0, 0, 1][rng.gen_range(0..3)],
            pid_reuse: rng.gen_bool(0.5),
            eperm_probes: rng.gen_bool(0.35),
            external_edits: [0, 0, 2, 5][rng.gen_range(0..4)],
            external_nonbenign_share: rng.gen_range(0.0..=1.0),
            alias_paths: rng.gen_bool(0.3),
            starttimes_known: rng.gen_bool(0.8),
            clock_skew_ms: [0, 0, 2_000, 30_000][rng.gen_range(0..4)],
            clock_steps: [0, 0, 1, 3][rng.gen_range(0..4)],
            clock_step_max_ms: [5_000, 120_000, 2_400_000][rng.gen_range(0..3)],
            torn_write_rate: [0.0, 0.3, 1.0][rng.gen_range(0..3)],
            transcript_tampering: [0, 0, 1, 3][rng.gen_range(0..4)],
            planted_locks: [0, 0, 0, 1][rng.gen_range(0..4)],
            lock_tampering: [0, 0, 2, 4][rng.gen_range(0..4)],
            eperm_gateways: rng.gen_bool(0.2),
            overlap_rate: [0.0, 0.0, 0.2, 0.5][rng.gen_range(0..4)],
            in_scope_teardown_rate: [0.0, 0.0, 0.1, 0.3][rng.gen_range(0..4)],
            cleanup_drop_rate: [0.0, 0.0, 0.1, 0.3][rng.gen_range(0..4)],
            late_abort_rate: [0.0, 0.0, 0.2, 0.5][rng.gen_range(0..4)],
            plugin_lock_table: rng.gen_bool(0.15),
            // Drawn last: the draws above keep their values from before sites were switched.
            site_activation: [0.25, 0.5, 0.75, 1.0][rng.gen_range(0..4)],
            // Drawn after it: the draws above keep their values. Most mounts here are local.
            negative_lookup_ttl_ms: [0, 0, 0, 0, 0, 0, 1_000, 3_000][rng.gen_range(0..8)],
            // Drawn after it: the draws above keep their values.
            post_append_stat_fault_rate: [0.0, 0.0, 0.2, 0.4][rng.gen_range(0..4)],
            recovery_tampering: [0, 0, 2, 6][rng.gen_range(0..4)],
            // Drawn last: the draws above keep their values.
            outside_dispose_rate: [0.0, 0.0, 0.1, 0.3][rng.gen_range(0..4)],
            // Drawn last: the draws above keep their values.
            late_append_stall_rate: [0.0, 0.0, 0.05, 0.2][rng.gen_range(0..4)],
            racing_edits: 0,
            lock_races: 0,
            mount: Mount::Local,
        };
        // Not a draw of its own: the mounts that cache negative lookups are the NFS ones (a
        // quarter of the seeds), and no draw moved.
        if profile.negative_lookup_ttl_ms > 0 {
            profile.mount = Mount::Nfs;
        }
        // Drawn last, after every draw above, so a seed whose mount stays local runs the very
        // world it ran before FUSE mounts were drawn.
        if rng.gen_range(0..8) == 0 && profile.mount == Mount::Local {
            profile.mount = Mount::Fuse;
        }
        // Drawn last: the draws above keep their values.
        profile.racing_edits = [0, 0, 4, 12][rng.gen_range(0..4)];
        // Drawn last: the draws above keep their values. A quarter of the seeds only: every
        // seed that draws it lives in a new world, and the rest keep theirs (and the rare kills
        // of cargo-mutants' mutants found there; tenth session: the half that drew lock races
        // and a timed dispose lost `file_lock.rs:690:33`'s only kill).
        profile.lock_races = [0, 0, 0, 6][rng.gen_range(0..4)];
        profile
    }

    /// A quiet world: one gateway, no faults, no aborts (the base named scenarios build on).
    pub fn quiet() -> Profile {
        Profile {
            gateways: 1,
            sessions: 1,
            turns_per_gateway: 3,
            fault_kinds: Vec::new(),
            site_activation: 1.0,
            fault_rate: 0.0,
            storm_share: 1.0,
            hang_rate: 0.0,
            max_latency_ms: 2,
            slow_op_rate: 0.0,
            slow_process_factor: 1,
            fd_limit: 64,
            abort_rate: 0.0,
            manual_abort_share: 0.0,
            stream_hang_rate: 0.0,
            stream_fail_rate: 0.0,
            long_stream_rate: 0.0,
            retained_stream_rate: 0.0,
            deferred_release_rate: 0.0,
            short_write_rate: 0.0,
            cleanup_skip_rate: 0.0,
            crashes: 0,
            pauses: 0,
            pid_reuse: false,
            eperm_probes: false,
            external_edits: 0,
            external_nonbenign_share: 0.0,
            alias_paths: false,
            starttimes_known: true,
            clock_skew_ms: 0,
            clock_steps: 0,
            clock_step_max_ms: 0,
            torn_write_rate: 0.0,
            transcript_tampering: 0,
            planted_locks: 0,
            lock_tampering: 0,
            eperm_gateways: false,
            overlap_rate: 0.0,
            in_scope_teardown_rate: 0.0,
            cleanup_drop_rate: 0.0,
            late_abort_rate: 0.0,
            outside_dispose_rate: 0.0,
            late_append_stall_rate: 0.0,
            plugin_lock_table: false,
            negative_lookup_ttl_ms: 0,
            post_append_stat_fault_rate: 0.0,
            recovery_tampering: 0,
            racing_edits: 0,
            lock_races: 0,
            mount: Mount::Local,
        }
    }

    /// One line for reports.
    pub fn summary(&self) -> String {
        let kinds: Vec<_> = self.fault_kinds.iter().map(|k| k.name()).collect();
        format!(
            "gateways={} sessions={} turns={} faults=[{}]@{} sites={} storms={} hang={} latency<={}ms slow={} slow-process=x{} fds={} aborts={} \
             stream-hang={} long-stream={} crashes={} pauses={} pid-reuse={} eperm={} external={} alias={} \
             starttimes={} skew<={}ms steps={}x<={}ms torn={} transcript-tamper={} planted={} lock-tamper={} \
             eperm-gateways={} overlap={} in-scope-teardown={} cleanup-drop={} late-abort={} outside-dispose={} late-append-stall={} plugin-table={} \
             negative-lookups={}ms post-append-stat={} recovery-tamper={} racing-edits={} lock-races={} mount={}",
            self.gateways,
            self.sessions,
            self.turns_per_gateway,
            kinds.join(","),
            self.fault_rate,
            self.site_activation,
            self.storm_share,
            self.hang_rate,
            self.max_latency_ms,
            self.slow_op_rate,
            self.slow_process_factor,
            self.fd_limit,
            self.abort_rate,
            self.stream_hang_rate,
            self.long_stream_rate,
            self.crashes,
            self.pauses,
            self.pid_reuse,
            self.eperm_probes,
            self.external_edits,
            self.alias_paths,
            self.starttimes_known,
            self.clock_skew_ms,
            self.clock_steps,
            self.clock_step_max_ms,
            self.torn_write_rate,
            self.transcript_tampering,
            self.planted_locks,
            self.lock_tampering,
            self.eperm_gateways,
            self.overlap_rate,
            self.in_scope_teardown_rate,
            self.cleanup_drop_rate,
            self.late_abort_rate,
            self.outside_dispose_rate,
            self.late_append_stall_rate,
            self.plugin_lock_table,
            self.negative_lookup_ttl_ms,
            self.post_append_stat_fault_rate,
            self.recovery_tampering,
            self.racing_edits,
            self.lock_races,
            self.mount.name(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run_seed, RunConfig, TraceMode};

    /// A busy world in which every knob has something to act on.
    fn busy() -> Profile {
        Profile {
            gateways: 3,
            sessions: 2,
            turns_per_gateway: 3,
            fault_kinds: vec![FaultKind::Eio, FaultKind::Emfile, FaultKind::Hang],
            site_activation: 0.5,
            fault_rate: 0.1,
            storm_share: 0.5,
            hang_rate: 0.01,
            max_latency_ms: 10,
            slow_op_rate: 0.05,
            slow_process_factor: 10,
            fd_limit: 6,
            abort_rate: 0.5,
            manual_abort_share: 0.5,
            stream_hang_rate: 0.2,
            stream_fail_rate: 0.2,
            long_stream_rate: 0.2,
            retained_stream_rate: 0.5,
            deferred_release_rate: 0.5,
            short_write_rate: 0.5,
            cleanup_skip_rate: 0.5,
            crashes: 2,
            pauses: 1,
            pid_reuse: true,
            eperm_probes: true,
            external_edits: 3,
            external_nonbenign_share: 0.5,
            alias_paths: true,
            starttimes_known: true,
            clock_skew_ms: 30_000,
            clock_steps: 3,
            clock_step_max_ms: 2_400_000,
            torn_write_rate: 1.0,
            transcript_tampering: 3,
            planted_locks: 3,
            lock_tampering: 2,
            eperm_gateways: true,
            overlap_rate: 0.5,
            in_scope_teardown_rate: 0.3,
            cleanup_drop_rate: 0.3,
            late_abort_rate: 0.5,
            outside_dispose_rate: 0.3,
            late_append_stall_rate: 0.2,
            plugin_lock_table: true,
            negative_lookup_ttl_ms: 3_000,
            post_append_stat_fault_rate: 0.3,
            recovery_tampering: 4,
            racing_edits: 12,
            lock_races: 6,
            mount: Mount::Nfs,
        }
    }

    fn trace(profile: &Profile, seed: u64) -> Vec<String> {
        let config = RunConfig::new("knobs", profile.clone()).trace(TraceMode::Full).stop_at_violation(false);
        run_seed(seed, &config).trace
    }

    /// Guards against dead knobs: flipping any profile field changes the trace of some seed.
    /// The destructuring below names every field, so a new field does not compile until it
    /// has its flip here.
    #[test]
    fn every_profile_field_changes_the_trace() {
        let Profile {
            gateways: _,
            sessions: _,
            turns_per_gateway: _,
            fault_kinds: _,
            site_activation: _,
            fault_rate: _,
            storm_share: _,
            hang_rate: _,
            max_latency_ms: _,
            slow_op_rate: _,
            slow_process_factor: _,
            fd_limit: _,
            abort_rate: _,
            manual_abort_share: _,
            stream_hang_rate: _,
            stream_fail_rate: _,
            long_stream_rate: _,
            retained_stream_rate: _,
            deferred_release_rate: _,
            short_write_rate: _,
            cleanup_skip_rate: _,
            crashes: _,
            pauses: _,
            pid_reuse: _,
            eperm_probes: _,
            external_edits: _,
            external_nonbenign_share: _,
            alias_paths: _,
            starttimes_known: _,
            clock_skew_ms: _,
            clock_steps: _,
            clock_step_max_ms: _,
            torn_write_rate: _,
            transcript_tampering: _,
            planted_locks: _,
            lock_tampering: _,
            eperm_gateways: _,
            overlap_rate: _,
            in_scope_teardown_rate: _,
            cleanup_drop_rate: _,
            late_abort_rate: _,
            outside_dispose_rate: _,
            late_append_stall_rate: _,
            plugin_lock_table: _,
            negative_lookup_ttl_ms: _,
            post_append_stat_fault_rate: _,
            recovery_tampering: _,
            racing_edits: _,
            lock_races: _,
            mount: _,
        } = busy();
        type Flip = (&'static str, fn(&mut Profile));
        let flips: Vec<Flip> = vec![
            ("gateways", |p| p.gateways = 1),
            ("sessions", |p| p.sessions = 1),
            ("turns_per_gateway", |p| p.turns_per_gateway = 1),
            ("fault_kinds", |p| p.fault_kinds = vec![FaultKind::Eacces, FaultKind::Hang]),
            ("site_activation", |p| p.site_activation = 1.0),
            ("fault_rate", |p| p.fault_rate = 0.0),
            ("storm_share", |p| p.storm_share = 1.0),
            ("hang_rate", |p| p.hang_rate = 0.0),
            ("max_latency_ms", |p| p.max_latency_ms = 0),
            ("slow_op_rate", |p| p.slow_op_rate = 0.0),
            ("slow_process_factor", |p| p.slow_process_factor = 1),
            ("fd_limit", |p| p.fd_limit = 2),
            ("abort_rate", |p| p.abort_rate = 0.0),
            ("manual_abort_share", |p| p.manual_abort_share = 0.0),
            ("stream_hang_rate", |p| p.stream_hang_rate = 0.0),
            ("stream_fail_rate", |p| p.stream_fail_rate = 0.0),
            ("long_stream_rate", |p| p.long_stream_rate = 0.0),
            ("retained_stream_rate", |p| p.retained_stream_rate = 0.0),
            ("deferred_release_rate", |p| p.deferred_release_rate = 0.0),
            ("short_write_rate", |p| p.short_write_rate = 0.0),
            ("cleanup_skip_rate", |p| p.cleanup_skip_rate = 1.0),
            ("crashes", |p| p.crashes = 0),
            ("pauses", |p| p.pauses = 0),
            ("pid_reuse", |p| p.pid_reuse = false),
            ("eperm_probes", |p| p.eperm_probes = false),
            ("external_edits", |p| p.external_edits = 0),
            ("external_nonbenign_share", |p| p.external_nonbenign_share = 0.0),
            ("alias_paths", |p| p.alias_paths = false),
            ("starttimes_known", |p| p.starttimes_known = false),
            ("clock_skew_ms", |p| p.clock_skew_ms = 0),
            ("clock_steps", |p| p.clock_steps = 0),
            ("clock_step_max_ms", |p| p.clock_step_max_ms = 5_000),
            ("torn_write_rate", |p| p.torn_write_rate = 0.0),
            ("transcript_tampering", |p| p.transcript_tampering = 0),
            ("planted_locks", |p| p.planted_locks = 0),
            ("lock_tampering", |p| p.lock_tampering = 0),
            ("eperm_gateways", |p| p.eperm_gateways = false),
            ("overlap_rate", |p| p.overlap_rate = 0.0),
            ("in_scope_teardown_rate", |p| p.in_scope_teardown_rate = 0.0),
            ("cleanup_drop_rate", |p| p.cleanup_drop_rate = 0.0),
            ("late_abort_rate", |p| p.late_abort_rate = 0.0),
            ("outside_dispose_rate", |p| p.outside_dispose_rate = 0.0),
            ("late_append_stall_rate", |p| p.late_append_stall_rate = 0.0),
            ("plugin_lock_table", |p| p.plugin_lock_table = false),
            ("negative_lookup_ttl_ms", |p| p.negative_lookup_ttl_ms = 0),
            ("post_append_stat_fault_rate", |p| p.post_append_stat_fault_rate = 0.0),
            ("recovery_tampering", |p| p.recovery_tampering = 0),
            ("racing_edits", |p| p.racing_edits = 0),
            ("lock_races", |p| p.lock_races = 0),
            ("mount", |p| p.mount = Mount::Local),
        ];
        const SEEDS: u64 = 12;
        let base: Vec<Vec<String>> = (0..SEEDS).map(|seed| trace(&busy(), seed)).collect();
        let dead: Vec<&str> = flips
            .iter()
            .filter(|(_, flip)| {
                let mut p = busy();
                flip(&mut p);
                assert_ne!(p, busy());
                (0..SEEDS).all(|seed| trace(&p, seed) == base[seed as usize])
            })
            .map(|(name, _)| *name)
            .collect();
        assert!(dead.is_empty(), "profile fields no trace depends on: {dead:?}");
    }
}
