//! Fault decisions. Each filesystem operation is a site (operation × kind of path), and so is
//! the liveness probe's read of `/proc`; its n-th occurrence draws from its own ChaCha stream
//! keyed by (seed, site, n), so a decision never depends on how many other decisions were drawn
//! before it.

use std::collections::{BTreeMap, BTreeSet};

use fnv::FnvHashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use heldlock_core::platform::errno;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::profile::Profile;
use crate::seed::{derive, Stream};

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    Eio,
    Emfile,
    Enospc,
    Eagain,
    Eintr,
    Eacces,
    /// The operation never completes (until its process dies).
    Hang,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Eio,
        FaultKind::Emfile,
        FaultKind::Enospc,
        FaultKind::Eagain,
        FaultKind::Eintr,
        FaultKind::Eacces,
        FaultKind::Hang,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Eio => "EIO",
            FaultKind::Emfile => "EMFILE",
            FaultKind::Enospc => "ENOSPC",
            FaultKind::Eagain => "EAGAIN",
            FaultKind::Eintr => "EINTR",
            FaultKind::Eacces => "EACCES",
            FaultKind::Hang => "hang",
        }
    }

    pub fn errno(self) -> Option<i32> {
        match self {
            FaultKind::Eio => Some(errno::EIO),
            FaultKind::Emfile => Some(errno::EMFILE),
            FaultKind::Enospc => Some(errno::ENOSPC),
            FaultKind::Eagain => Some(errno::EAGAIN),
            FaultKind::Eintr => Some(errno::EINTR),
            FaultKind::Eacces => Some(errno::EACCES),
            FaultKind::Hang => None,
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The operations of the core's ports the fault plan decides: the filesystem's, and the read
/// of `/proc` a liveness probe makes (`Processes::probe`, `is_gateway`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FsOp {
    CreateExclusive,
    WriteFd,
    Close,
    Read,
    Stat,
    StatFd,
    Unlink,
    Mkdir,
    Rmdir,
    Append,
    WriteAll,
    CanonicalDir,
    Exchange,
    Rename,
    /// A liveness probe's read of `/proc/<pid>/…`: latency, stalls and hangs, no errno (the
    /// port has none; the real adapter answers a failed read with what it could not learn).
    Probe,
}

impl FsOp {
    pub const ALL: [FsOp; 15] = [
        FsOp::CreateExclusive,
        FsOp::WriteFd,
        FsOp::Close,
        FsOp::Read,
        FsOp::Stat,
        FsOp::StatFd,
        FsOp::Unlink,
        FsOp::Mkdir,
        FsOp::Rmdir,
        FsOp::Append,
        FsOp::WriteAll,
        FsOp::CanonicalDir,
        FsOp::Exchange,
        FsOp::Rename,
        FsOp::Probe,
    ];

    /// An operation the lock makes on its lock path or a name derived from it whose every
    /// errno the world injects is the acquire's to return (SPEC §1 step 4; the oracle's
    /// `propagation`): the guard's `mkdir`, the exclusive creates, and the renames, links and
    /// exchanges that put a lock at the lock path.
    pub fn propagated_by_acquire(self) -> bool {
        matches!(self, FsOp::Mkdir | FsOp::CreateExclusive | FsOp::Rename | FsOp::Exchange)
    }

    /// Calls on a lock file's descriptor: only an acquire makes them (the payload write and
    /// the `fstat` of a lock it makes, at its private name or in place), and SPEC §1 step 4
    /// propagates every errno the world injects into them. A descriptor names no path.
    pub fn on_acquires_descriptor(self) -> bool {
        matches!(self, FsOp::WriteFd | FsOp::StatFd)
    }

    pub fn name(self) -> &'static str {
        match self {
            FsOp::CreateExclusive => "create-excl",
            FsOp::WriteFd => "write",
            FsOp::Close => "close",
            FsOp::Read => "read",
            FsOp::Stat => "stat",
            FsOp::StatFd => "fstat",
            FsOp::Unlink => "unlink",
            FsOp::Mkdir => "mkdir",
            FsOp::Rmdir => "rmdir",
            FsOp::Append => "append",
            FsOp::WriteAll => "write-all",
            FsOp::CanonicalDir => "realpath",
            FsOp::Exchange => "exchange",
            FsOp::Rename => "rename",
            FsOp::Probe => "probe",
        }
    }

    /// The errnos this operation can really fail with (EMFILE only where a descriptor opens);
    /// a probe only hangs.
    pub fn can_fail_with(self, kind: FaultKind) -> bool {
        use FaultKind::*;
        use FsOp::*;
        match kind {
            _ if self == Probe => kind == Hang,
            Eio | Eintr | Hang => true,
            Emfile => matches!(self, CreateExclusive | Read | Append | WriteAll),
            Enospc => matches!(self, CreateExclusive | WriteFd | Mkdir | Append | WriteAll | Rename),
            Eagain => matches!(self, WriteFd | Read | Append | WriteAll | Close),
            Eacces => !matches!(self, WriteFd | Close | StatFd),
        }
    }
}

/// What kind of path an operation touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathClass {
    Lock,
    Guard,
    Transcript,
    Dir,
    /// `/proc/<pid>/…`, read only by a probe.
    Proc,
}

impl PathClass {
    pub const ALL: [PathClass; 5] = [
        PathClass::Lock,
        PathClass::Guard,
        PathClass::Transcript,
        PathClass::Dir,
        PathClass::Proc,
    ];

    /// Every file-system operation classifies its path, several times: the bytes answer for a
    /// plain path (no `//`, no `.` or `..` component, no trailing `/`, which is every path the
    /// lock builds), and `Path`'s component walk, which normalizes, answers for the rest.
    pub fn of(path: &Path) -> PathClass {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        if is_plain(bytes) {
            let name = bytes.rsplit(|b| *b == b'/').next().unwrap_or_default();
            let proc = bytes == b"/proc" || bytes.starts_with(b"/proc/");
            return PathClass::by_name(proc, name);
        }
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        PathClass::by_name(path.starts_with("/proc"), name)
    }

    fn by_name(proc: bool, name: &[u8]) -> PathClass {
        if proc {
            PathClass::Proc
        } else if name.ends_with(b".reclaim") {
            PathClass::Guard
        } else if name.ends_with(b".lock") {
            PathClass::Lock
        } else if name.ends_with(b".jsonl") {
            PathClass::Transcript
        } else {
            PathClass::Dir
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PathClass::Lock => "lock",
            PathClass::Guard => "guard",
            PathClass::Transcript => "transcript",
            PathClass::Dir => "dir",
            PathClass::Proc => "proc",
        }
    }
}

/// A path whose text is its components: no empty, `.` or `..` component and no trailing `/`.
fn is_plain(bytes: &[u8]) -> bool {
    let body = bytes.strip_prefix(b"/").unwrap_or(bytes);
    !body.is_empty()
        && body.split(|b| *b == b'/').all(|part| !part.is_empty() && part != b"." && part != b"..")
}

/// One fault site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultSite {
    pub op: FsOp,
    pub class: PathClass,
}

impl FaultSite {
    /// The probe's read of `/proc`.
    pub const PROBE: FaultSite = FaultSite {
        op: FsOp::Probe,
        class: PathClass::Proc,
    };

    fn key(self) -> u64 {
        (self.op as u64) << 8 | self.class as u64
    }

    /// Every site an operation can meet: each filesystem operation on each kind of path the
    /// lock uses, and the probe on `/proc`.
    pub fn all() -> impl Iterator<Item = FaultSite> {
        FsOp::ALL
            .into_iter()
            .flat_map(|op| PathClass::ALL.into_iter().map(move |class| FaultSite { op, class }))
            .filter(|site| (site.op == FsOp::Probe) == (site.class == PathClass::Proc))
    }
}

impl fmt::Display for FaultSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.op.name(), self.class.name())
    }
}

/// Faults come in storms: windows of this length are stormy or calm.
const STORM_WINDOW_MS: u64 = 10_000;
/// Keeps the storm draws apart from the per-site draws of the fault stream.
const STORM_STREAM: u64 = 1 << 62;
/// Keeps the site-activation draws apart from the others.
const SITE_STREAM: u64 = 1 << 61;
/// Keeps the post-append stat draws apart from the others.
const POST_APPEND_STREAM: u64 = 1 << 60;
const LATE_APPEND_STREAM: u64 = 1 << 61;
/// Keeps the put-back draws apart from the others.
const PUT_BACK_STREAM: u64 = 1 << 59;
/// The chance a raced reclaim's put back fails (`lock_races`).
const PUT_BACK_FAULT_CHANCE: f64 = 0.5;
/// How long a late append stalls: past the abort settle bound (2 000 ms), so the abort forces
/// the lock free and the turn's successor runs while the append is still on its way.
const LATE_APPEND_MS: std::ops::Range<u64> = 2_500..10_000;
/// A slow operation stalls this long (a slow disk, an NFS hiccup).
const SLOW_OP_MS: std::ops::Range<u64> = 200..3_000;

/// What happens to one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub site: FaultSite,
    pub occurrence: u64,
    pub latency_ms: u64,
    /// A stall on top of the latency (`Profile::slow_op_rate`), 0 when the op is not slow.
    pub slow_ms: u64,
    pub fault: Option<FaultKind>,
}

/// The fault decisions of one run.
pub struct FaultPlan {
    seed: u64,
    kinds: Vec<FaultKind>,
    fault_rate: f64,
    storm_share: f64,
    hang_rate: f64,
    max_latency_ms: u64,
    slow_op_rate: f64,
    /// `Profile::post_append_stat_fault_rate`: the stat right after a transcript append fails.
    post_append_stat_rate: f64,
    /// `Profile::late_append_stall_rate`: a transcript append stalls past the settle bound.
    late_append_stall_rate: f64,
    /// A transcript append went through and no transcript stat has come since: the next one
    /// is the writer's post-append stat (the hot call, FoundationDB's buggify aimed at it).
    after_append: std::sync::atomic::AtomicBool,
    /// Sites switched on for this seed (FoundationDB's buggify activation): only these fire
    /// errnos and hangs, so rare combinations across sites get their turn.
    active: BTreeSet<FaultSite>,
    /// Healed (the liveness phase): no faults, no stalls, no latency from here on.
    healed: std::sync::atomic::AtomicBool,
    occurrences: Mutex<FnvHashMap<FaultSite, u64>>,
    /// When set, only these (site, occurrence) faults fire: the shrinker's view of the plan.
    only: Option<BTreeSet<(FaultSite, u64)>>,
    fired: Mutex<BTreeMap<(FaultSite, FaultKind), u64>>,
    log: Mutex<Vec<(FaultSite, u64, FaultKind)>>,
}

impl FaultPlan {
    pub fn new(seed: u64, profile: &Profile) -> Self {
        FaultPlan {
            seed,
            kinds: profile.fault_kinds.iter().copied().filter(|k| *k != FaultKind::Hang).collect(),
            fault_rate: profile.fault_rate,
            storm_share: profile.storm_share,
            hang_rate: profile.hang_rate,
            max_latency_ms: profile.max_latency_ms,
            slow_op_rate: profile.slow_op_rate,
            post_append_stat_rate: profile.post_append_stat_fault_rate,
            late_append_stall_rate: profile.late_append_stall_rate,
            after_append: std::sync::atomic::AtomicBool::new(false),
            active: Self::activate_sites(seed, profile.site_activation),
            healed: std::sync::atomic::AtomicBool::new(false),
            occurrences: Mutex::new(FnvHashMap::default()),
            only: None,
            fired: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Each fault site on with probability `share`, drawn from the seed alone.
    fn activate_sites(seed: u64, share: f64) -> BTreeSet<FaultSite> {
        FaultSite::all()
            .filter(|site| {
                (derive(seed, Stream::Fault, SITE_STREAM | site.key()) as f64 / u64::MAX as f64) < share
            })
            .collect()
    }

    /// Whether `site` fires faults in this seed.
    pub fn site_active(&self, site: FaultSite) -> bool {
        self.active.contains(&site)
    }

    /// The liveness phase: faults, stalls and latency end for good.
    pub fn heal(&self) {
        self.healed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Keep only the listed faults (for shrinking).
    pub fn restricted_to(mut self, only: BTreeSet<(FaultSite, u64)>) -> Self {
        self.only = Some(only);
        self
    }

    /// Whether the 10 s window holding simulated time `now_ms` is a fault storm.
    fn in_storm(&self, now_ms: u64) -> bool {
        let window = now_ms / STORM_WINDOW_MS;
        let roll = derive(self.seed, Stream::Fault, STORM_STREAM | window) as f64 / u64::MAX as f64;
        roll < self.storm_share
    }

    /// Decide the next occurrence of `site`, at simulated time `now_ms`.
    pub fn decide(&self, site: FaultSite, now_ms: u64) -> Decision {
        self.decide_aimed(site, now_ms, false)
    }

    /// `decide`, for a call that may be a raced reclaim's put back (`lock_races`): that call
    /// fails at even odds on top of the storms, with an errno of the seed's kinds.
    pub fn decide_aimed(&self, site: FaultSite, now_ms: u64, put_back: bool) -> Decision {
        let occurrence = {
            let mut occ = self.occurrences.lock().unwrap();
            let n = occ.entry(site).or_insert(0);
            *n += 1;
            *n
        };
        if self.healed.load(std::sync::atomic::Ordering::SeqCst) {
            // Healed: nothing is drawn (the draws below would all be discarded).
            return Decision {
                site,
                occurrence,
                latency_ms: 0,
                slow_ms: 0,
                fault: None,
            };
        }
        let mut rng =
            ChaCha8Rng::seed_from_u64(derive(self.seed, Stream::Fault, site.key() << 32 ^ occurrence));
        let latency_ms = if self.max_latency_ms == 0 {
            0
        } else {
            rng.gen_range(0..=self.max_latency_ms)
        };
        let roll: f64 = rng.gen();
        let storm = self.in_storm(now_ms) && self.site_active(site);
        let mut fault = if !storm {
            None
        } else if roll < self.hang_rate {
            Some(FaultKind::Hang)
        } else if roll < self.hang_rate + self.fault_rate && !self.kinds.is_empty() {
            let kind = self.kinds[rng.gen_range(0..self.kinds.len())];
            site.op.can_fail_with(kind).then_some(kind)
        } else {
            None
        };
        if fault.is_none() {
            fault = self.post_append_fault(site, occurrence);
        }
        if fault.is_none() && put_back {
            fault = self.put_back_fault(site, occurrence);
        }
        if let Some(only) = &self.only {
            if !only.contains(&(site, occurrence)) {
                fault = None;
            }
        }
        let slow_ms = if self.slow_op_rate > 0.0 && rng.gen_bool(self.slow_op_rate) {
            rng.gen_range(SLOW_OP_MS)
        } else {
            0
        };
        let slow_ms = slow_ms.max(self.late_append_stall(site, occurrence));
        if let Some(kind) = fault {
            *self.fired.lock().unwrap().entry((site, kind)).or_insert(0) += 1;
            self.log.lock().unwrap().push((site, occurrence, kind));
        }
        Decision {
            site,
            occurrence,
            latency_ms,
            slow_ms,
            fault,
        }
    }

    /// The hot call: a transcript stat right after a transcript append (the writer checking
    /// where its append landed) fails at `post_append_stat_rate`, storm or not, with an errno of
    /// the seed's kinds a stat can fail with. Drawn from its own stream, and only in seeds
    /// where the rate is on: every other decision keeps its draws.
    fn post_append_fault(&self, site: FaultSite, occurrence: u64) -> Option<FaultKind> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.post_append_stat_rate <= 0.0 || site.class != PathClass::Transcript {
            return None;
        }
        match site.op {
            FsOp::Append => {
                self.after_append.store(true, SeqCst);
                None
            }
            FsOp::Stat if self.after_append.swap(false, SeqCst) => {
                self.aimed_fault(POST_APPEND_STREAM, site, occurrence, self.post_append_stat_rate)
            }
            _ => None,
        }
    }

    /// A raced reclaim's put back fails at `PUT_BACK_FAULT_CHANCE`, storm or not.
    fn put_back_fault(&self, site: FaultSite, occurrence: u64) -> Option<FaultKind> {
        self.aimed_fault(PUT_BACK_STREAM, site, occurrence, PUT_BACK_FAULT_CHANCE)
    }

    /// A fault aimed at one call: at `rate`, an errno of the seed's kinds the call can fail
    /// with. Drawn from `stream`, its own: every other decision keeps its draws.
    fn aimed_fault(&self, stream: u64, site: FaultSite, occurrence: u64, rate: f64) -> Option<FaultKind> {
        let kinds: Vec<FaultKind> =
            self.kinds.iter().copied().filter(|k| site.op.can_fail_with(*k)).collect();
        let index = stream | site.key() << 32 ^ occurrence;
        let mut rng = ChaCha8Rng::seed_from_u64(derive(self.seed, Stream::Fault, index));
        let fails = !kinds.is_empty() && rng.gen_bool(rate);
        fails.then(|| kinds[rng.gen_range(0..kinds.len())])
    }

    /// The stall of a late transcript append (`Profile::late_append_stall_rate`), 0 for other
    /// ops. Drawn from its own stream, and only in seeds where the rate is on: every other
    /// decision keeps its draws.
    fn late_append_stall(&self, site: FaultSite, occurrence: u64) -> u64 {
        if self.late_append_stall_rate <= 0.0
            || site.class != PathClass::Transcript
            || site.op != FsOp::Append
        {
            return 0;
        }
        let index = LATE_APPEND_STREAM | site.key() << 32 ^ occurrence;
        let mut rng = ChaCha8Rng::seed_from_u64(derive(self.seed, Stream::Fault, index));
        if rng.gen_bool(self.late_append_stall_rate) {
            rng.gen_range(LATE_APPEND_MS)
        } else {
            0
        }
    }

    /// Faults fired, by site and kind.
    pub fn fired(&self) -> BTreeMap<(FaultSite, FaultKind), u64> {
        self.fired.lock().unwrap().clone()
    }

    /// Every fault fired, in order: (site, occurrence, kind).
    pub fn fired_log(&self) -> Vec<(FaultSite, u64, FaultKind)> {
        self.log.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stormy_profile() -> Profile {
        Profile {
            fault_kinds: vec![FaultKind::Eio, FaultKind::Emfile, FaultKind::Hang],
            fault_rate: 0.3,
            hang_rate: 0.05,
            max_latency_ms: 40,
            storm_share: 1.0,
            ..Profile::quiet()
        }
    }

    const STAT: FaultSite = FaultSite {
        op: FsOp::Stat,
        class: PathClass::Transcript,
    };
    const UNLINK: FaultSite = FaultSite {
        op: FsOp::Unlink,
        class: PathClass::Lock,
    };

    #[test]
    fn a_decision_depends_only_on_seed_site_and_occurrence() {
        let alone = FaultPlan::new(7, &stormy_profile());
        let mixed = FaultPlan::new(7, &stormy_profile());
        let a: Vec<Decision> = (0..200).map(|_| alone.decide(STAT, 0)).collect();
        let b: Vec<Decision> = (0..200)
            .map(|i| {
                for _ in 0..i % 3 {
                    mixed.decide(UNLINK, 0);
                }
                mixed.decide(STAT, 0)
            })
            .collect();
        assert_eq!(a, b, "decisions at another site must not reshuffle this one");
        assert!(a.iter().any(|d| d.fault.is_some()) && a.iter().any(|d| d.fault.is_none()));
        let other_seed: Vec<Decision> =
            (0..200).map(|_| FaultPlan::new(8, &stormy_profile()).decide(STAT, 0)).collect();
        assert_ne!(a, other_seed);
    }

    #[test]
    fn faults_fire_only_inside_storms_and_only_where_an_op_can_fail() {
        let calm = FaultPlan::new(
            1,
            &Profile {
                storm_share: 0.0,
                ..stormy_profile()
            },
        );
        assert!((0..500).all(|_| calm.decide(STAT, 0).fault.is_none()));
        let plan = FaultPlan::new(1, &stormy_profile());
        let unlinks: Vec<Decision> = (0..500).map(|_| plan.decide(UNLINK, 0)).collect();
        assert!(unlinks.iter().all(|d| d.fault != Some(FaultKind::Emfile)), "unlink opens no descriptor");
        assert!(unlinks.iter().any(|d| d.fault == Some(FaultKind::Eio)));
        let fired: u64 = plan.fired().values().sum();
        assert_eq!(fired as usize, plan.fired_log().len());
        assert_eq!(fired as usize, unlinks.iter().filter(|d| d.fault.is_some()).count());
    }

    #[test]
    fn a_restricted_plan_fires_only_the_kept_faults() {
        let full = FaultPlan::new(3, &stormy_profile());
        let decisions: Vec<Decision> = (0..100).map(|_| full.decide(STAT, 0)).collect();
        let keep = decisions.iter().find(|d| d.fault.is_some()).expect("some fault fires");
        let only = FaultPlan::new(3, &stormy_profile()).restricted_to([(STAT, keep.occurrence)].into());
        let kept: Vec<Decision> = (0..100).map(|_| only.decide(STAT, 0)).collect();
        assert_eq!(kept.iter().filter(|d| d.fault.is_some()).count(), 1);
        assert_eq!(kept[keep.occurrence as usize - 1], *keep);
    }

    #[test]
    fn each_seed_switches_sites_on_and_off() {
        let half = Profile {
            site_activation: 0.5,
            ..stormy_profile()
        };
        let sites = |seed| FaultPlan::new(seed, &half).active.clone();
        assert_eq!(sites(5), sites(5), "the seed alone decides");
        assert_ne!(sites(5), sites(6));
        let all = FaultSite::all().count();
        assert!(!sites(5).is_empty() && sites(5).len() < all, "{} of {all}", sites(5).len());
        let off = FaultPlan::new(5, &half);
        let inactive = *[STAT, UNLINK].iter().find(|s| !off.site_active(**s)).expect("one of two is off");
        assert!((0..500).all(|_| off.decide(inactive, 0).fault.is_none()), "an inactive site never fires");
        let none = FaultPlan::new(
            5,
            &Profile {
                site_activation: 0.0,
                ..stormy_profile()
            },
        );
        assert!(none.active.is_empty());
    }

    #[test]
    fn the_stat_right_after_a_transcript_append_is_the_hot_call() {
        const APPEND: FaultSite = FaultSite {
            op: FsOp::Append,
            class: PathClass::Transcript,
        };
        let hot = |kinds: Vec<FaultKind>, rate: f64| {
            let profile = Profile {
                fault_kinds: kinds,
                post_append_stat_fault_rate: rate,
                ..Profile::quiet()
            };
            let plan = FaultPlan::new(4, &profile);
            let faults: Vec<Option<FaultKind>> = [APPEND, STAT, STAT, UNLINK, APPEND, STAT]
                .into_iter()
                .map(|s| plan.decide(s, 0).fault)
                .collect();
            (faults, plan.fired_log().len())
        };
        let eio = Some(FaultKind::Eio);
        assert_eq!(hot(vec![FaultKind::Eio], 1.0), (vec![None, eio, None, None, None, eio], 2));
        assert_eq!(hot(vec![FaultKind::Eio], 0.0).1, 0, "off: no fault outside the storms");
        assert_eq!(hot(vec![FaultKind::Emfile], 1.0).1, 0, "a stat cannot fail with EMFILE");
        let (some, _) = hot(vec![FaultKind::Eio, FaultKind::Eintr, FaultKind::Emfile], 0.5);
        assert!(some.iter().all(|f| f.is_none() || matches!(f, Some(FaultKind::Eio | FaultKind::Eintr))));
    }

    #[test]
    fn a_raced_reclaims_put_back_fails_at_even_odds_outside_the_storms() {
        const EXCHANGE: FaultSite = FaultSite {
            op: FsOp::Exchange,
            class: PathClass::Lock,
        };
        let calm = Profile {
            fault_kinds: vec![FaultKind::Eio, FaultKind::Emfile],
            ..Profile::quiet()
        };
        let aimed = FaultPlan::new(6, &calm);
        let faults: Vec<Option<FaultKind>> =
            (0..400).map(|_| aimed.decide_aimed(EXCHANGE, 0, true).fault).collect();
        let failed = faults.iter().filter(|f| f.is_some()).count();
        assert!((140..260).contains(&failed), "about half of 400 put backs fail: {failed}");
        assert!(
            faults.iter().flatten().all(|f| *f == FaultKind::Eio),
            "an exchange cannot fail with EMFILE"
        );
        assert_eq!(aimed.fired_log().len(), failed, "an aimed fault is logged like any");
        // The same calls not aimed at: no fault outside the storms, and every draw as before.
        let plain = FaultPlan::new(6, &calm);
        assert!((0..400).all(|_| plain.decide(EXCHANGE, 0).fault.is_none()));
        let (a, b) = (FaultPlan::new(6, &stormy_profile()), FaultPlan::new(6, &stormy_profile()));
        for _ in 0..200 {
            let (x, y) = (a.decide(EXCHANGE, 0), b.decide_aimed(EXCHANGE, 0, true));
            assert_eq!((x.latency_ms, x.slow_ms), (y.latency_ms, y.slow_ms));
            assert!(x.fault.is_none() || x.fault == y.fault, "a storm's fault stands: {x:?} {y:?}");
        }
    }

    #[test]
    fn slow_ops_stall_and_healing_ends_every_fault() {
        let slow = FaultPlan::new(
            2,
            &Profile {
                slow_op_rate: 0.5,
                ..stormy_profile()
            },
        );
        let stalls: Vec<u64> = (0..200).map(|_| slow.decide(STAT, 0).slow_ms).collect();
        assert!(stalls.contains(&0) && stalls.iter().any(|&s| s > 0));
        assert!(stalls.iter().all(|&s| s == 0 || SLOW_OP_MS.contains(&s)));
        let plain = FaultPlan::new(2, &stormy_profile());
        assert!((0..200).all(|_| plain.decide(STAT, 0).slow_ms == 0));
        slow.heal();
        let healed: Vec<Decision> = (0..200).map(|_| slow.decide(STAT, 0)).collect();
        assert!(healed.iter().all(|d| d.fault.is_none() && d.slow_ms == 0 && d.latency_ms == 0));
    }

    #[test]
    fn a_probe_only_hangs_and_only_probes_meet_proc() {
        let all_kinds = Profile {
            fault_kinds: FaultKind::ALL.to_vec(),
            fault_rate: 0.5,
            hang_rate: 0.1,
            ..stormy_profile()
        };
        let plan = FaultPlan::new(4, &all_kinds);
        let probes: Vec<Decision> = (0..500).map(|_| plan.decide(FaultSite::PROBE, 0)).collect();
        assert!(probes.iter().all(|d| matches!(d.fault, None | Some(FaultKind::Hang))), "no errno");
        assert!(probes.iter().any(|d| d.fault == Some(FaultKind::Hang)));
        assert!(probes.iter().any(|d| d.latency_ms > 0), "probes take the seed's latency");
        assert!(FaultSite::all().any(|s| s == FaultSite::PROBE));
        let stray = |s: &FaultSite| (s.op == FsOp::Probe) != (s.class == PathClass::Proc);
        assert!(!FaultSite::all().any(|s| stray(&s)), "a probe reads /proc and nothing else does");
        assert_eq!(PathClass::of(Path::new("/proc/20/stat")), PathClass::Proc);
    }

    /// The textual fast path classifies every path as `Path`'s components do, odd ones included.
    #[test]
    fn path_class_reads_text_as_components_do() {
        let by_components = |path: &Path| {
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            let proc = path.starts_with("/proc");
            PathClass::by_name(proc, name.as_bytes())
        };
        let paths = [
            "/proc",
            "/proc/",
            "/proc/7/stat",
            "/procs/a.lock",
            "//proc/7",
            "/./proc/1",
            "proc/1",
            "/s/a.jsonl.lock",
            "/s/a.jsonl.lock/",
            "/s/a.jsonl.lock/.",
            "/s/a.lock/..",
            "/s//a.lock",
            "/s/a.jsonl",
            "/s/a.jsonl.lock.reclaim",
            "/s/.lock",
            "a.lock",
            "",
            "/",
            "/s/x.tmp",
        ];
        for text in paths {
            let path = Path::new(text);
            assert_eq!(PathClass::of(path), by_components(path), "{text:?}");
        }
        use std::os::unix::ffi::OsStrExt;
        let invalid = std::ffi::OsStr::from_bytes(b"/s/\xff\xfe.lock");
        assert_eq!(PathClass::of(Path::new(invalid)), PathClass::Lock);
    }
}
