//! The user-space delay line: delay and loss for links where the kernel lacks `sch_netem`.
//!
//! A [`DelayLine`] joins two [`Tap`] devices. Each direction has a reader
//! thread, which waits for a frame, stamps it, drops it with the line's
//! loss probability (a seeded ChaCha stream per direction, so a run
//! reproduces) and queues it, and a writer thread, which sleeps until the
//! frame's stamp plus the delay and writes it to the other device. The
//! delay is constant and the order FIFO, as netem's `delay` without jitter.
//! Each queue holds at most [`LineSpec::queue_limit_bytes`] (the frames in
//! flight at 1 Gbit/s plus headroom), so a direction carries up to about
//! 1 Gbit/s at any delay and drops arriving frames beyond it (drop-tail,
//! counted). Writers sleep, never spin: on an idle machine a frame leaves
//! about 0.1 ms after it is due; on a busy one, later by the scheduler's
//! latency.
//!
//! Its threads ask for real-time scheduling (`SCHED_FIFO` at
//! [`REALTIME_PRIORITY`], which root has), so that FL clients training on
//! the same cores do not delay frames; [`LineStats::realtime`] says
//! whether every thread got it.
//!
//! Bandwidth is not shaped here: put a `tbf` or `htb` qdisc on the TAP
//! devices.
//! The TAP devices have no offloads, so every frame is at most the MTU plus
//! the Ethernet header, and the line never sees GSO super-frames.

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
/// The `SCHED_FIFO` priority of a line's threads: above every ordinary
/// process, below the kernel's own real-time threads (99).
pub const REALTIME_PRIORITY: i32 = 50;
/// The longest delay a line accepts.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// How long a thread waits before looking at the stop flag again; bounds
/// the time [`DelayLine::stop`] takes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// A read buffer that holds any frame of a TAP device without offloads.
const READ_BUFFER: usize = 65536;
/// The most frames a thread moves per lock of its queue.
const BATCH: usize = 64;

/// What a line does to each direction: one-way delay and loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineSpec {
    /// One-way delay, at most [`MAX_DELAY`].
    pub delay: Duration,
    /// Probability in percent (0 to 100) that a frame is dropped.
    pub loss_pct: f64,
    /// Seed of the loss draws; the two directions use different streams.
    pub seed: u64,
}

impl LineSpec {
    /// The bytes a direction queues at most: the delay times
    /// [`QUEUE_RATE_BITS_PER_S`] plus [`QUEUE_HEADROOM_BYTES`], at most
    /// [`MAX_QUEUE_BYTES`]. A direction thus carries up to that rate at any
    /// delay; beyond it frames are dropped.
    pub fn queue_limit_bytes(&self) -> usize {
        let bytes = self.delay.as_nanos() * u128::from(QUEUE_RATE_BITS_PER_S) / 8 / 1_000_000_000;
        usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(QUEUE_HEADROOM_BYTES)
            .min(MAX_QUEUE_BYTES)
    }

    fn check(&self) -> Result<(), String> {
        if !(0.0..=100.0).contains(&self.loss_pct) {
            return Err(format!("loss must be 0 to 100 %, not {}", self.loss_pct));
        }
        if self.delay > MAX_DELAY {
            return Err(format!(
                "delay must be at most {MAX_DELAY:?}, not {:?}",
                self.delay
            ));
        }
        Ok(())
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
    /// Frames whose write to the far device failed (e.g. the device is down).
    pub write_errors: u64,
    /// Frames that left more than [`LATE`] after they were due (the
    /// writer did not get the CPU in time).
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
                    shared.realtime();
                    read_loop(&shared, d, &src, spec, rng);
                }
            };
            let writer = {
                let (shared, dst) = (line.shared.clone(), dst.clone());
                move || {
                    shared.realtime();
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

/// State the threads of a line share.
#[derive(Debug)]
struct Shared {
    name: String,
    stop: AtomicBool,
    dirs: [Direction; 2],
    /// Threads that did not get real-time priority.
    ordinary: AtomicU64,
}

impl Shared {
    /// Puts the calling thread at [`REALTIME_PRIORITY`] under `SCHED_FIFO`;
    /// counts it in `ordinary` when the kernel refuses (no CAP_SYS_NICE).
    fn realtime(&self) {
        let param = libc::sched_param {
            sched_priority: REALTIME_PRIORITY,
        };
        // SAFETY: pthread_self names the calling thread; param outlives the call.
        let e =
            unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
        if e != 0 {
            self.ordinary.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                line = %self.name,
                error = %io::Error::from_raw_os_error(e),
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
    /// Signalled when a frame enters an empty queue.
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
            write_errors: get(&self.write_errors),
            late: get(&self.late),
            max_late_us: get(&self.max_late_us),
        }
    }

    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Frames in flight in one direction, oldest first, with the instant each
/// is due; bounded in bytes.
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

    /// Queues `frame`, due at `due`; false (and the frame dropped) when it
    /// does not fit in the limit.
    fn push(&mut self, due: Instant, frame: Vec<u8>) -> bool {
        if self.bytes + frame.len() > self.limit {
            return false;
        }
        self.bytes += frame.len();
        self.frames.push_back((due, frame));
        true
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
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

/// Direction `d`'s reader: frames from `src`, drawn for loss, into the
/// queue, up to [`BATCH`] per lock.
fn read_loop(shared: &Shared, d: usize, src: &Tap, spec: LineSpec, mut rng: ChaCha8Rng) {
    let dir = &shared.dirs[d];
    let loss = spec.loss_pct / 100.0;
    let mut buf = vec![0u8; READ_BUFFER];
    let mut batch = Vec::with_capacity(BATCH);
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
            let due = Instant::now() + spec.delay;
            if rng.random::<f64>() < loss {
                Counters::add(&dir.counters.lost, 1);
            } else {
                batch.push((due, buf[..n].to_vec()));
            }
        }
        if batch.is_empty() {
            continue;
        }
        let mut queue = dir.lock();
        let was_empty = queue.is_empty();
        let mut full = 0;
        for (due, frame) in batch.drain(..) {
            if !queue.push(due, frame) {
                full += 1;
            }
        }
        drop(queue);
        if full > 0 {
            Counters::add(&dir.counters.queue_drops, full as u64);
        }
        if was_empty {
            dir.ready.notify_one();
        }
    }
}

/// Direction `d`'s writer: each queued frame to `dst` when it is due.
fn write_loop(shared: &Shared, d: usize, dst: &Tap) {
    let dir = &shared.dirs[d];
    let mut batch = Vec::with_capacity(BATCH);
    while take_due(shared, dir, &mut batch) {
        for frame in batch.drain(..) {
            match dst.write_frame(&frame) {
                Ok(()) => {
                    Counters::add(&dir.counters.frames, 1);
                    Counters::add(&dir.counters.bytes, frame.len() as u64);
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

/// Waits until the oldest frame of `dir` is due, then moves the frames due
/// by then (at most [`BATCH`]) into `batch`; false once the line stops.
fn take_due(shared: &Shared, dir: &Direction, batch: &mut Vec<Vec<u8>>) -> bool {
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
            // The oldest frame is the latest.
            let late = now - due;
            let max_late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
            dir.counters
                .max_late_us
                .fetch_max(max_late_us, Ordering::Relaxed);
            let mut late_frames = 0;
            while batch.len() < BATCH {
                let Some((due, frame)) = queue.pop_due(now) else {
                    break;
                };
                late_frames += u64::from(now - due > LATE);
                batch.push(frame);
            }
            Counters::add(&dir.counters.late, late_frames);
            return true;
        }
        // Frames only join behind this one (FIFO, constant delay), so
        // nothing can become due sooner: sleep without the lock.
        drop(queue);
        std::thread::sleep((due - now).min(POLL_INTERVAL));
        queue = dir.lock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(delay_ms: u64, loss_pct: f64) -> LineSpec {
        LineSpec {
            delay: Duration::from_millis(delay_ms),
            loss_pct,
            seed: 1,
        }
    }

    #[test]
    fn queue_is_fifo_and_drops_beyond_its_byte_limit() {
        let t0 = Instant::now();
        let mut q = Queue::new(3000);
        assert!(q.push(t0, vec![1; 1500]));
        assert!(q.push(t0 + Duration::from_millis(1), vec![2; 1500]));
        assert!(!q.push(t0 + Duration::from_millis(2), vec![3; 1]));
        assert_eq!(q.next_due(), Some(t0));
        assert_eq!(q.pop_due(t0).map(|(d, f)| (d, f[0])), Some((t0, 1)));
        assert!(q.push(t0 + Duration::from_millis(3), vec![4; 1500]));
        assert_eq!(q.pop_due(t0), None, "not due yet");
        let later = t0 + Duration::from_millis(3);
        assert_eq!(q.pop_due(later).map(|(_, f)| f[0]), Some(2));
        assert_eq!(q.pop_due(later).map(|(_, f)| f[0]), Some(4));
        assert_eq!((q.pop_due(later), q.bytes), (None, 0));
    }

    #[test]
    fn queue_limit_is_delay_times_rate_plus_headroom() {
        assert_eq!(spec(0, 0.0).queue_limit_bytes(), QUEUE_HEADROOM_BYTES);
        // 12 ms at 1 Gbit/s is 1.5 MB.
        assert_eq!(
            spec(12, 0.0).queue_limit_bytes(),
            1_500_000 + QUEUE_HEADROOM_BYTES
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
    }
}
