//! The user-space delay line: delay and loss for links where the kernel lacks `sch_netem`.
//!
//! A [`DelayLine`] joins two [`Tap`] devices. Each direction has a reader
//! thread, which waits for a frame, stamps it, drops it by the line's loss
//! model (independent, or Gilbert-Elliott bursts; a seeded ChaCha stream
//! per direction, so a run reproduces) and queues it, and a writer thread,
//! which sleeps until the frame's stamp plus its delay and writes it to the
//! other device. The delay is drawn uniformly from delay ± jitter (netem's
//! default distribution). With [`LineSpec::reorder`] (netem's behaviour) a
//! frame drawn a shorter delay overtakes those before it; without, it
//! leaves no earlier than the frame before it, so the line keeps the order.
//! A [`LineControl`] changes a running line's figures (a link schedule),
//! and takes it down and up again (an outage: frames arriving meanwhile are
//! dropped and counted in [`DirectionStats::outage`]).
//! Each queue holds at most [`LineSpec::queue_limit_bytes`] (the frames in
//! flight at 1 Gbit/s plus headroom), so a direction carries up to about
//! 1 Gbit/s at any delay and drops arriving frames beyond it (drop-tail,
//! counted). Writers sleep, never spin: on an idle machine a frame leaves
//! about 0.1 ms after it is due; on a busy one, later by the scheduler's
//! latency.
//!
//! Its threads ask for real-time scheduling (`SCHED_FIFO`, which root has:
//! readers at [`REALTIME_PRIORITY`], writers at [`WRITER_PRIORITY`]), so
//! that FL clients training on the same cores do not delay frames; [`LineStats::realtime`] says
//! whether every thread got it.
//!
//! Bandwidth is not shaped here: put a `tbf` or `htb` qdisc on the TAP
//! devices.
//! Frames are whatever the TAP devices give: MTU frames from plain ones, GSO
//! super-frames with their virtio-net header from offloading ones
//! ([`Tap::create_offloading`]; join two of a kind). Loss and delay apply
//! per frame, and the byte counters leave the headers out.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::sys::SysError;
use super::tap::Tap;
use crate::BurstLoss;

/// The rate a queue is sized for: a direction holds up to its delay times
/// this many bits per second.
pub const QUEUE_RATE_BITS_PER_S: u64 = 1_000_000_000;
/// Queue room beyond the frames in flight, for a writer that runs late
/// (a busy machine): about 2 ms at [`QUEUE_RATE_BITS_PER_S`].
pub const QUEUE_HEADROOM_BYTES: usize = 256 * 1024;
/// The largest queue of a direction, whatever the delay.
pub const MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// How late a frame may leave before it counts in [`DirectionStats::late`].
pub const LATE: Duration = Duration::from_millis(1);
/// The `SCHED_FIFO` priority of a line's readers and of the TAP devices'
/// receive threads: above every ordinary process, below the kernel's own
/// real-time threads (99).
pub const REALTIME_PRIORITY: i32 = 50;
/// The `SCHED_FIFO` priority of a line's writers, above
/// [`REALTIME_PRIORITY`]: a receive thread runs the bridge, the qdiscs and
/// a host's stack for a whole batch of frames, and at equal priority a
/// writer whose frame falls due meanwhile waits until it yields.
pub const WRITER_PRIORITY: i32 = REALTIME_PRIORITY + 10;
/// The longest delay a line accepts.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// How long a thread waits before looking at the stop flag again; bounds
/// the time [`DelayLine::stop`] takes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// A read buffer that holds any frame of a TAP device, a GSO super-frame
/// with its header included.
const READ_BUFFER: usize = 256 * 1024;
/// The most frames a thread moves per lock of its queue.
const BATCH: usize = 64;

/// How a line loses frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Each frame independently, with this probability in percent.
    Random(f64),
    /// Gilbert-Elliott bursts (netem's `loss gemodel`).
    Burst(BurstLoss),
}

/// What a line does to each direction: delay, jitter and loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineSpec {
    /// Mean one-way delay; with the jitter at most [`MAX_DELAY`].
    pub delay: Duration,
    /// Each frame's delay is drawn uniformly from `delay` ± `jitter`; at
    /// most `delay`.
    pub jitter: Duration,
    /// Whether a jittered frame may overtake those before it (netem's
    /// behaviour) or keeps its place (a FIFO link).
    pub reorder: bool,
    /// The loss model.
    pub loss: Loss,
    /// False while the link is down: every frame is dropped.
    pub up: bool,
    /// Seed of the loss and delay draws; the two directions use different
    /// streams.
    pub seed: u64,
}

impl LineSpec {
    /// A constant `delay` with independent loss of `loss_pct` percent, up.
    pub fn new(delay: Duration, loss_pct: f64, seed: u64) -> Self {
        Self {
            delay,
            jitter: Duration::ZERO,
            reorder: true,
            loss: Loss::Random(loss_pct),
            up: true,
            seed,
        }
    }

    /// The bytes a direction queues at most: the longest delay times
    /// [`QUEUE_RATE_BITS_PER_S`] plus [`QUEUE_HEADROOM_BYTES`], at most
    /// [`MAX_QUEUE_BYTES`]. A direction thus carries up to that rate at any
    /// delay; beyond it frames are dropped.
    pub fn queue_limit_bytes(&self) -> usize {
        let longest = self.delay + self.jitter;
        let bytes = longest.as_nanos() * u128::from(QUEUE_RATE_BITS_PER_S) / 8 / 1_000_000_000;
        usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(QUEUE_HEADROOM_BYTES)
            .min(MAX_QUEUE_BYTES)
    }

    /// Why the spec cannot be used, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let percent = |what: &str, v: f64| {
            if (0.0..=100.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{what} must be 0 to 100 %, not {v}"))
            }
        };
        match self.loss {
            Loss::Random(pct) => percent("loss", pct)?,
            Loss::Burst(b) => {
                percent("burst loss p", b.p_pct)?;
                percent("burst loss r", b.r_pct)?;
                percent("burst loss in the bad state", b.bad_loss_pct)?;
                percent("burst loss in the good state", b.good_loss_pct)?;
            }
        }
        if self.jitter > self.delay {
            return Err(format!(
                "jitter ({:?}) must be at most the delay ({:?})",
                self.jitter, self.delay
            ));
        }
        if self.delay + self.jitter > MAX_DELAY {
            return Err(format!(
                "delay must be at most {MAX_DELAY:?} with its jitter, not {:?}",
                self.delay + self.jitter
            ));
        }
        Ok(())
    }

    /// One frame's delay: uniform in `delay` ± `jitter`.
    fn draw_delay(&self, rng: &mut ChaCha8Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.delay;
        }
        let spread = (rng.random::<f64>() * 2.0 - 1.0) * self.jitter.as_secs_f64();
        Duration::from_secs_f64((self.delay.as_secs_f64() + spread).max(0.0))
    }
}

/// A direction's loss state: Gilbert-Elliott's good or bad.
#[derive(Debug, Default)]
struct LossState {
    bad: bool,
}

impl LossState {
    /// Whether the next frame is lost under `loss`: for bursts, the state
    /// moves first, then the new state's loss applies (as netem).
    fn lose(&mut self, loss: &Loss, rng: &mut ChaCha8Rng) -> bool {
        match loss {
            Loss::Random(pct) => rng.random::<f64>() * 100.0 < *pct,
            Loss::Burst(b) => {
                let flip = rng.random::<f64>() * 100.0;
                if self.bad {
                    self.bad = flip >= b.r_pct;
                } else {
                    self.bad = flip < b.p_pct;
                }
                let pct = if self.bad {
                    b.bad_loss_pct
                } else {
                    b.good_loss_pct
                };
                rng.random::<f64>() * 100.0 < pct
            }
        }
    }
}

/// What one direction of a line has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DirectionStats {
    /// Frames written to the far device.
    pub frames: u64,
    /// Bytes of those frames (Ethernet header included).
    pub bytes: u64,
    /// Frames dropped by the loss draw.
    pub lost: u64,
    /// Frames dropped because the queue was full.
    pub queue_drops: u64,
    /// Frames dropped because the link was down (a scheduled outage).
    pub outage: u64,
    /// Frames whose write to the far device failed (e.g. the device is down).
    pub write_errors: u64,
    /// Frames written more than [`LATE`] after they were due (the writer
    /// did not get the CPU in time, or was still writing earlier frames).
    pub late: u64,
    /// The most any frame left after it was due, in microseconds.
    pub max_late_us: u64,
}

/// What a line has done so far, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LineStats {
    /// Frames read from `a`, written to `b`.
    pub a_to_b: DirectionStats,
    /// Frames read from `b`, written to `a`.
    pub b_to_a: DirectionStats,
    /// Whether every thread of the line runs at real-time priority.
    pub realtime: bool,
}

/// A running delay line between two TAP devices; [`DelayLine::stop`] or
/// dropping it stops its threads and removes both devices.
#[derive(Debug)]
pub struct DelayLine {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl DelayLine {
    /// Starts forwarding between `a` and `b` with `spec` applied to each
    /// direction. Fails on a spec out of range or when a thread cannot be
    /// started.
    pub fn start(a: Tap, b: Tap, spec: LineSpec) -> Result<DelayLine, SysError> {
        let name = format!(
            "{}/{} <-> {}/{}",
            a.namespace(),
            a.name(),
            b.namespace(),
            b.name()
        );
        let what = || format!("starting delay line {name}");
        spec.check()
            .map_err(|problem| SysError::new(what(), problem))?;
        let limit = spec.queue_limit_bytes();
        let shared = Arc::new(Shared {
            name: name.clone(),
            stop: AtomicBool::new(false),
            spec: Mutex::new(spec),
            dirs: [Direction::new(limit), Direction::new(limit)],
            ordinary: AtomicU64::new(0),
        });
        let mut line = DelayLine {
            shared,
            threads: Vec::with_capacity(4),
        };
        let (a, b) = (Arc::new(a), Arc::new(b));
        for (d, src, dst) in [(0, &a, &b), (1, &b, &a)] {
            let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
            rng.set_stream(d as u64);
            let reader = {
                let (shared, src) = (line.shared.clone(), src.clone());
                move || {
                    shared.realtime(REALTIME_PRIORITY);
                    read_loop(&shared, d, &src, rng);
                }
            };
            let writer = {
                let (shared, dst) = (line.shared.clone(), dst.clone());
                move || {
                    shared.realtime(WRITER_PRIORITY);
                    write_loop(&shared, d, &dst);
                }
            };
            for (role, body) in [
                ("rd", Box::new(reader) as Box<dyn FnOnce() + Send>),
                ("wr", Box::new(writer)),
            ] {
                let handle = std::thread::Builder::new()
                    .name(format!("dl-{role}-{}", src.name()))
                    .spawn(body)
                    .map_err(|e| SysError::new(what(), format!("cannot start a thread: {e}")))?;
                line.threads.push(handle);
            }
        }
        Ok(line)
    }

    /// The counters so far; cheap, callable while the line runs.
    pub fn stats(&self) -> LineStats {
        LineStats {
            a_to_b: self.shared.dirs[0].counters.read(),
            b_to_a: self.shared.dirs[1].counters.read(),
            realtime: self.shared.ordinary.load(Ordering::Relaxed) == 0,
        }
    }

    /// A handle that changes the line's figures while it runs.
    pub fn control(&self) -> LineControl {
        LineControl {
            shared: self.shared.clone(),
        }
    }

    /// False once the line has ended by itself (a device vanished or could
    /// no longer be read); see the log for why.
    pub fn is_running(&self) -> bool {
        !self.shared.stop.load(Ordering::Relaxed)
    }

    /// Stops the line, waits for its threads (at most about 50 ms) and
    /// returns the final counters; the two TAP devices go away with it.
    /// Frames still queued are discarded.
    pub fn stop(mut self) -> LineStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.shared.end();
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!(line = %self.shared.name, "a delay line thread panicked");
            }
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Changes a running line's figures: a link schedule's bandwidth-free
/// part (delay, jitter, loss, outages). Frames already queued keep the
/// delay they were given.
#[derive(Debug, Clone)]
pub struct LineControl {
    shared: Arc<Shared>,
}

impl LineControl {
    /// The figures in force.
    pub fn spec(&self) -> LineSpec {
        *self
            .shared
            .spec
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `spec` in force for every frame read from now on (its seed is
    /// ignored: the draws go on from where they are); refuses a spec out of
    /// range. The queues are resized for the new delay.
    pub fn set(&self, spec: LineSpec) -> Result<(), String> {
        spec.check()?;
        let limit = spec.queue_limit_bytes();
        *self
            .shared
            .spec
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = spec;
        for dir in &self.shared.dirs {
            dir.lock().limit = limit;
        }
        Ok(())
    }
}

/// State the threads of a line share.
#[derive(Debug)]
struct Shared {
    name: String,
    stop: AtomicBool,
    /// The figures in force (read by the readers once per batch).
    spec: Mutex<LineSpec>,
    dirs: [Direction; 2],
    /// Threads that did not get real-time priority.
    ordinary: AtomicU64,
}

impl Shared {
    /// Puts the calling thread at `priority` under `SCHED_FIFO`; counts it
    /// in `ordinary` when the kernel refuses (no CAP_SYS_NICE).
    fn realtime(&self, priority: i32) {
        if let Err(e) = super::sys::realtime_thread(priority) {
            self.ordinary.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                line = %self.name,
                error = %e,
                "delay line thread at ordinary priority: frames may leave late when the cores are busy"
            );
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Makes every thread of the line finish.
    fn end(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for dir in &self.dirs {
            // Taking the lock orders the flag before a writer's wait.
            drop(dir.lock());
            dir.ready.notify_all();
        }
    }
}

/// One direction: its queue and counters.
#[derive(Debug)]
struct Direction {
    queue: Mutex<Queue>,
    /// Signalled when a frame becomes the queue's oldest (an empty queue,
    /// or one that overtakes the others).
    ready: Condvar,
    counters: Counters,
}

impl Direction {
    fn new(limit: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::new(limit)),
            ready: Condvar::new(),
            counters: Counters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No code panics while holding the lock; if one did, the queue is
        // still consistent (every mutation is a single push or pop).
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct Counters {
    frames: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    queue_drops: AtomicU64,
    outage: AtomicU64,
    write_errors: AtomicU64,
    late: AtomicU64,
    max_late_us: AtomicU64,
}

impl Counters {
    fn read(&self) -> DirectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            frames: get(&self.frames),
            bytes: get(&self.bytes),
            lost: get(&self.lost),
            queue_drops: get(&self.queue_drops),
            outage: get(&self.outage),
            write_errors: get(&self.write_errors),
            late: get(&self.late),
            max_late_us: get(&self.max_late_us),
        }
    }

    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Frames in flight in one direction, ordered by the instant each is due
/// (frames due together in arrival order); bounded in bytes.
#[derive(Debug)]
struct Queue {
    frames: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    limit: usize,
}

impl Queue {
    fn new(limit: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Queues `frame`, due at `due`, behind every frame due no later:
    /// `Some(true)` when it is now the first due, `None` (and the frame
    /// dropped) when it does not fit in the limit.
    fn push(&mut self, due: Instant, frame: Vec<u8>) -> Option<bool> {
        if self.bytes + frame.len() > self.limit {
            return None;
        }
        self.bytes += frame.len();
        let at = self.frames.partition_point(|(d, _)| *d <= due);
        self.frames.insert(at, (due, frame));
        Some(at == 0)
    }

    /// When the oldest frame is due.
    fn next_due(&self) -> Option<Instant> {
        self.frames.front().map(|(due, _)| *due)
    }

    /// Takes the oldest frame, with when it was due, if it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, Vec<u8>)> {
        if self.next_due()? > now {
            return None;
        }
        let (due, frame) = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some((due, frame))
    }
}

/// Whether a write error means the device is gone for good.
fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADFD | libc::ENODEV | libc::ENXIO | libc::EPIPE)
    )
}

/// Direction `d`'s reader: frames from `src`, drawn for loss and delay,
/// into the queue, up to [`BATCH`] per lock.
fn read_loop(shared: &Shared, d: usize, src: &Tap, mut rng: ChaCha8Rng) {
    let dir = &shared.dirs[d];
    let mut buf = vec![0u8; READ_BUFFER];
    let mut batch = Vec::with_capacity(BATCH);
    let mut state = LossState::default();
    // When the last frame queued is due: an ordered line sends none sooner.
    let mut last_due = Instant::now();
    while !shared.stopped() {
        match src.wait_readable(POLL_INTERVAL) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(line = %shared.name, device = src.name(), "delay line ends: {e}");
                shared.end();
                return;
            }
        }
        let spec = *shared.spec.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut lost, mut outage) = (0, 0);
        while batch.len() < BATCH {
            let n = match src.read_frame(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    break;
                }
                Err(e) => {
                    tracing::warn!(line = %shared.name, device = src.name(), "delay line ends, read failed: {e}");
                    shared.end();
                    return;
                }
            };
            let now = Instant::now();
            if !spec.up {
                outage += 1;
            } else if state.lose(&spec.loss, &mut rng) {
                lost += 1;
            } else {
                let mut due = now + spec.draw_delay(&mut rng);
                if !spec.reorder {
                    due = due.max(last_due);
                    last_due = due;
                }
                batch.push((due, buf[..n].to_vec()));
            }
        }
        Counters::add(&dir.counters.lost, lost);
        Counters::add(&dir.counters.outage, outage);
        if batch.is_empty() {
            continue;
        }
        let mut queue = dir.lock();
        let (mut full, mut first) = (0, false);
        for (due, frame) in batch.drain(..) {
            match queue.push(due, frame) {
                Some(head) => first |= head,
                None => full += 1,
            }
        }
        drop(queue);
        if full > 0 {
            Counters::add(&dir.counters.queue_drops, full as u64);
        }
        if first {
            dir.ready.notify_one();
        }
    }
}

/// Direction `d`'s writer: each queued frame to `dst` when it is due.
fn write_loop(shared: &Shared, d: usize, dst: &Tap) {
    let dir = &shared.dirs[d];
    let mut batch = Vec::with_capacity(BATCH);
    while take_due(shared, dir, &mut batch) {
        for (due, frame) in batch.drain(..) {
            match dst.write_frame(&frame) {
                Ok(()) => {
                    Counters::add(&dir.counters.frames, 1);
                    let bytes = frame.len().saturating_sub(dst.header_len());
                    Counters::add(&dir.counters.bytes, bytes as u64);
                    note_lateness(dir, due);
                }
                Err(e) if vanished(&e) => {
                    tracing::warn!(line = %shared.name, device = dst.name(), "delay line ends, write failed: {e}");
                    shared.end();
                    return;
                }
                Err(e) => {
                    let before = dir.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    if before == 0 {
                        tracing::warn!(line = %shared.name, device = dst.name(), "write failed (further failures only counted): {e}");
                    }
                }
            }
        }
    }
}

/// Counts a frame written now that was due at `due`: late when more than
/// [`LATE`] after it (the write itself included, which runs the receiving
/// side's stack).
fn note_lateness(dir: &Direction, due: Instant) {
    let late = Instant::now().saturating_duration_since(due);
    let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
    dir.counters.max_late_us.fetch_max(us, Ordering::Relaxed);
    if late > LATE {
        Counters::add(&dir.counters.late, 1);
    }
}

/// Waits until the oldest frame of `dir` is due, then moves the frames due
/// by then (at most [`BATCH`]) into `batch`, each with when it was due;
/// false once the line stops.
fn take_due(shared: &Shared, dir: &Direction, batch: &mut Vec<(Instant, Vec<u8>)>) -> bool {
    let mut queue = dir.lock();
    loop {
        if shared.stopped() {
            return false;
        }
        let Some(due) = queue.next_due() else {
            queue = dir
                .ready
                .wait_timeout(queue, POLL_INTERVAL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        };
        let now = Instant::now();
        if due <= now {
            while batch.len() < BATCH {
                let Some(frame) = queue.pop_due(now) else {
                    break;
                };
                batch.push(frame);
            }
            return true;
        }
        // A frame that overtakes this one (jitter) wakes the writer early.
        queue = dir
            .ready
            .wait_timeout(queue, (due - now).min(POLL_INTERVAL))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(delay_ms: u64, loss_pct: f64) -> LineSpec {
        LineSpec::new(Duration::from_millis(delay_ms), loss_pct, 1)
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(5)
    }

    #[test]
    fn queue_is_ordered_by_due_time_and_drops_beyond_its_byte_limit() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q = Queue::new(3000);
        assert_eq!(q.push(t0, vec![1; 1500]), Some(true));
        assert_eq!(q.push(t0 + ms(1), vec![2; 1500]), Some(false));
        assert_eq!(q.push(t0 + ms(2), vec![3; 1]), None, "full");
        assert_eq!(q.next_due(), Some(t0));
        assert_eq!(q.pop_due(t0).map(|(d, f)| (d, f[0])), Some((t0, 1)));
        // A frame due sooner than those queued overtakes them.
        assert_eq!(q.push(t0 + ms(3), vec![4; 700]), Some(false));
        assert_eq!(q.push(t0, vec![5; 700]), Some(true));
        assert_eq!(q.pop_due(t0).map(|(_, f)| f[0]), Some(5));
        assert_eq!(q.pop_due(t0), None, "not due yet");
        let later = t0 + ms(3);
        assert_eq!(q.pop_due(later).map(|(_, f)| f[0]), Some(2));
        assert_eq!(q.pop_due(later).map(|(_, f)| f[0]), Some(4));
        assert_eq!((q.pop_due(later), q.bytes), (None, 0));
    }

    #[test]
    fn queue_limit_is_the_longest_delay_times_rate_plus_headroom() {
        assert_eq!(spec(0, 0.0).queue_limit_bytes(), QUEUE_HEADROOM_BYTES);
        // 12 ms at 1 Gbit/s is 1.5 MB.
        assert_eq!(
            spec(12, 0.0).queue_limit_bytes(),
            1_500_000 + QUEUE_HEADROOM_BYTES
        );
        let jittered = LineSpec {
            jitter: Duration::from_millis(4),
            ..spec(12, 0.0)
        };
        assert_eq!(
            jittered.queue_limit_bytes(),
            2_000_000 + QUEUE_HEADROOM_BYTES
        );
        assert_eq!(spec(10_000, 0.0).queue_limit_bytes(), MAX_QUEUE_BYTES);
    }

    #[test]
    fn spec_out_of_range_is_refused() {
        assert!(spec(10, 0.0).check().is_ok());
        assert!(spec(10, 100.0).check().is_ok());
        for bad in [-1.0, 100.5, f64::NAN, f64::INFINITY] {
            let e = spec(10, bad).check().unwrap_err();
            assert!(e.contains("loss must be 0 to 100"), "{e}");
        }
        let e = spec(10_001, 1.0).check().unwrap_err();
        assert!(e.contains("delay must be at most"), "{e}");
        let wide = LineSpec {
            jitter: Duration::from_millis(11),
            ..spec(10, 0.0)
        };
        assert!(wide.check().unwrap_err().contains("jitter"));
        let burst = LineSpec {
            loss: Loss::Burst(BurstLoss {
                p_pct: 101.0,
                r_pct: 10.0,
                bad_loss_pct: 100.0,
                good_loss_pct: 0.0,
            }),
            ..spec(10, 0.0)
        };
        assert!(burst.check().unwrap_err().contains("burst loss p"));
    }

    #[test]
    fn jittered_delays_are_uniform_in_delay_plus_or_minus_jitter() {
        let s = LineSpec {
            jitter: Duration::from_millis(4),
            ..spec(10, 0.0)
        };
        let mut r = rng();
        let draws: Vec<f64> = (0..20_000)
            .map(|_| s.draw_delay(&mut r).as_secs_f64() * 1000.0)
            .collect();
        let (lo, hi) = draws
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), d| (l.min(*d), h.max(*d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let sd =
            (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64).sqrt();
        assert!(
            (6.0..6.05).contains(&lo) && (13.95..=14.0).contains(&hi),
            "{lo} {hi}"
        );
        assert!((mean - 10.0).abs() < 0.05, "mean {mean}");
        // A uniform spread of ±4 ms has a standard deviation of 4/√3 ms.
        assert!((sd - 4.0 / 3f64.sqrt()).abs() < 0.05, "sd {sd}");
        assert_eq!(spec(10, 0.0).draw_delay(&mut r), Duration::from_millis(10));
    }

    #[test]
    fn gilbert_elliott_loses_in_bursts_of_one_over_r() {
        let b = BurstLoss {
            p_pct: 2.0,
            r_pct: 25.0,
            bad_loss_pct: 100.0,
            good_loss_pct: 0.0,
        };
        let (mut state, mut r) = (LossState::default(), rng());
        let n = 400_000;
        let lost: Vec<bool> = (0..n)
            .map(|_| state.lose(&Loss::Burst(b), &mut r))
            .collect();
        let share = lost.iter().filter(|l| **l).count() as f64 / n as f64 * 100.0;
        let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count();
        let mean_burst = lost.iter().filter(|l| **l).count() as f64 / bursts as f64;
        // p / (p + r) = 2 / 27 = 7.4 %; bursts of 1 / r = 4 frames.
        assert!((share - b.mean_loss_pct()).abs() < 0.3, "{share} %");
        assert!((mean_burst - 4.0).abs() < 0.15, "mean burst {mean_burst}");
        // Independent loss at the same rate has bursts of about 1.08.
        let (mut state, mut r) = (LossState::default(), rng());
        let random: Vec<bool> = (0..n)
            .map(|_| state.lose(&Loss::Random(share), &mut r))
            .collect();
        let bursts = random.windows(2).filter(|w| !w[0] && w[1]).count();
        let mean = random.iter().filter(|l| **l).count() as f64 / bursts as f64;
        assert!(mean < 1.2, "independent loss: mean burst {mean}");
    }
}
