//! TAP devices opened inside a namespace (the ends of a user-space delay line).
//!
//! A [`Tap`] is a non-persistent Ethernet TAP device (`IFF_TAP | IFF_NO_PI`):
//! the kernel removes it when the [`Tap`] (its file descriptor) is dropped.
//! Made by [`Tap::create`] it has no offloads, so every frame read from it is
//! at most the device's MTU plus the Ethernet header. Made by
//! [`Tap::create_offloading`] it takes TCP's segmentation offloads
//! (`IFF_VNET_HDR`, `TUNSETOFFLOAD`): a frame may be a GSO super-frame of up
//! to 64 KiB, preceded by a [`VNET_HEADER`]-byte virtio-net header, which a
//! write to another offloading TAP passes back as read (as vhost-net
//! bridges virtio-net). One frame then carries what dozens of MTU frames
//! would, so a line moves the same bytes with far fewer reads, writes and
//! wake-ups.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::sys::{self, SysError};

/// The longest interface name Linux accepts (`IFNAMSIZ` less the NUL).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// The clone device through which TUN/TAP devices are made.
const CLONE_DEVICE: &str = "/dev/net/tun";
/// Bytes of the virtio-net header before each frame of an offloading TAP
/// (`struct virtio_net_hdr`, the kernel's default size).
pub const VNET_HEADER: usize = 10;

/// `struct ifreq` as `TUNSETIFF` reads it: the name and the flags, padded
/// to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

nix::ioctl_readwrite_bad!(
    /// `TUNSETIFF`: attaches the open tun file to the device the request names.
    tun_set_iff,
    libc::TUNSETIFF,
    IfReq
);

nix::ioctl_write_int_bad!(
    /// `TUNSETOFFLOAD`: the offloads the reader of the device can take.
    tun_set_offload,
    libc::TUNSETOFFLOAD
);

/// A TAP device in a network namespace, owned by this value: frames the
/// kernel sends out of the device are read here, frames written here enter
/// the kernel as if received on it.
#[derive(Debug)]
pub struct Tap {
    /// The open `/dev/net/tun` file attached to the device.
    file: File,
    name: String,
    namespace: String,
    /// Bytes of header before each frame: 0, or [`VNET_HEADER`].
    header: usize,
}

impl Tap {
    /// Creates TAP device `name` (at most [`MAX_NAME_LEN`] bytes) inside
    /// namespace `ns` (a name under `/var/run/netns`). The device is down
    /// and has no address; the caller attaches it (e.g. `ip -n NS link set
    /// NAME master BR up`).
    pub fn create(ns: &str, name: &str) -> Result<Tap, SysError> {
        Self::make(ns, name, false)
    }

    /// As [`Tap::create`], with checksum and TCP segmentation offloads:
    /// frames carry a [`VNET_HEADER`]-byte header and may be GSO
    /// super-frames. Join it only to another offloading TAP.
    pub fn create_offloading(ns: &str, name: &str) -> Result<Tap, SysError> {
        Self::make(ns, name, true)
    }

    fn make(ns: &str, name: &str, offload: bool) -> Result<Tap, SysError> {
        let what = || format!("creating TAP device {name} in namespace {ns}");
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(SysError::new(
                what(),
                format!(
                    "an interface name has 1 to {MAX_NAME_LEN} bytes, {name:?} has {}",
                    name.len()
                ),
            ));
        }
        if name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b == b'%' || b.is_ascii_whitespace())
        {
            return Err(SysError::new(
                what(),
                format!("{name:?} is not a valid interface name"),
            ));
        }
        let vnet = if offload { libc::IFF_VNET_HDR } else { 0 };
        // NAPI: a write only queues the frame for the device's poll, which
        // can run in a kernel thread of its own ([`Tap::thread_napi`]).
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_NAPI | vnet) as libc::c_short,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        let file = sys::in_namespace(ns, move || -> Result<File, String> {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(CLONE_DEVICE)
                .map_err(|e| format!("{CLONE_DEVICE}: {e}"))?;
            // SAFETY: the fd is open for the call's duration and `req` is a
            // live, fully initialised value of ifreq's size and layout, which
            // the kernel reads and writes back.
            unsafe { tun_set_iff(file.as_raw_fd(), &mut req) }
                .map_err(|e| format!("TUNSETIFF: {e}"))?;
            if offload {
                let features = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
                // SAFETY: the fd is an open tun file attached to a device;
                // the argument is a plain flag word.
                unsafe { tun_set_offload(file.as_raw_fd(), features as libc::c_int) }
                    .map_err(|e| format!("TUNSETOFFLOAD: {e}"))?;
            }
            Ok(file)
        })?
        .map_err(|problem| SysError::new(what(), problem))?;
        Ok(Tap {
            file,
            name: name.to_owned(),
            namespace: ns.to_owned(),
            header: if offload { VNET_HEADER } else { 0 },
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace the device lives in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Moves the device's receive processing (its NAPI poll: the bridge,
    /// the qdiscs and the receiving host's stack) out of the writer's
    /// thread into a kernel thread of its own at `SCHED_FIFO` `priority`,
    /// so that a write returns at once and frames due after it are not
    /// held up. False when the kernel thread could not get real-time
    /// priority (it still runs, at ordinary priority).
    pub fn thread_napi(&self, priority: i32) -> Result<bool, SysError> {
        let (ns, dev) = (&self.namespace, &self.name);
        // sysfs shows a namespace's devices only where it is mounted in it.
        sys::run(
            "ip",
            &[
                "netns",
                "exec",
                ns,
                "sh",
                "-c",
                &format!("echo 1 > /sys/class/net/{dev}/threaded"),
            ],
        )?;
        let prefix = format!("napi/{dev}-");
        let mut all_realtime = true;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
                continue;
            };
            if comm.starts_with(&prefix) {
                let param = libc::sched_param {
                    sched_priority: priority,
                };
                // SAFETY: param outlives the call; pid names a kernel thread.
                all_realtime &=
                    unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) } == 0;
            }
        }
        Ok(all_realtime)
    }

    /// Bytes of header before each frame read or written (0 without
    /// offloads).
    pub fn header_len(&self) -> usize {
        self.header
    }

    /// Reads one whole frame into `buf` and returns its length. Never
    /// blocks: with no frame waiting it fails with
    /// [`io::ErrorKind::WouldBlock`] (wait with [`Tap::wait_readable`]). A
    /// frame longer than `buf` is truncated, so give at least the MTU plus
    /// 18 bytes.
    pub fn read_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one whole frame (Ethernet header and payload).
    pub fn write_frame(&self, frame: &[u8]) -> io::Result<()> {
        let n = (&self.file).write(frame)?;
        if n != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("wrote {n} of {} bytes", frame.len()),
            ));
        }
        Ok(())
    }

    /// Waits at most `timeout` for a frame to read: `Ok(true)` when one is
    /// there, `Ok(false)` on timeout, and an error when the device is gone
    /// (`POLLERR`, `POLLHUP`) or poll(2) fails.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid pollfd that outlives the call, and
        // the count passed is 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(false),
                _ => Err(e),
            };
        }
        if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("TAP device {} is gone", self.name),
            ));
        }
        Ok(pfd.revents & libc::POLLIN != 0)
    }
}
