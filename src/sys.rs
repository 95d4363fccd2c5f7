//! The system calls deployer makes that neither the standard library nor
//! `rustix` offers safely: the user and group databases (NSS, as ssh and
//! `id` ask them), `poll` and a peek on descriptors that libssh2 owns
//! (only a raw number is known, so rustix's borrowed descriptors would need
//! an unsafe borrow anyway), and the kernel's `TCP_INFO`.
//!
//! This module is one of the two allowed to use `unsafe` (the other is the
//! libssh2 extension, `transport::ssh::ext`); every block says why it is
//! sound. It owns the password and group database lookups: nothing else
//! reads them. It decides nothing: callers apply their own rules.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::time::Duration;

/// The name of `uid` in the password database, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill in.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live storage of the given size; on
        // success the strings of `pwd` point into `buf`, which outlives their
        // use below. (rustix has no password-database lookup.)
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name is a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty());
    }
}

/// The supplementary members of group `gid` in the group database
/// (`getgrgid_r`), `None` when the group is unknown.
pub fn group_members(gid: u32) -> Option<Vec<String>> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: an all-zero group is a valid value for getgrgid_r to fill in.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to live storage of the given size; on
        // success the strings of `group` point into `buf`, which outlives
        // their use below.
        let rc =
            unsafe { libc::getgrgid_r(gid, &mut group, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        let mut members = Vec::new();
        let mut at = group.gr_mem;
        // SAFETY: gr_mem is a NULL-terminated array of NUL-terminated C
        // strings inside `buf`; `at` never moves past its NULL end.
        unsafe {
            while !at.is_null() && !(*at).is_null() {
                members.push(CStr::from_ptr(*at).to_string_lossy().into_owned());
                at = at.add(1);
            }
        }
        return Some(members);
    }
}

/// The uids of every account in the password database whose primary group
/// is `gid` (every `getpwent` entry).
pub fn primary_members(gid: u32) -> Vec<u32> {
    // getpwent has one cursor per process.
    static PWENT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _cursor = PWENT.lock().unwrap_or_else(|e| e.into_inner());
    let mut uids = Vec::new();
    // SAFETY: setpwent/getpwent/endpwent under the lock above; each entry is
    // read before the next call, and a null entry ends the walk.
    unsafe {
        libc::setpwent();
        loop {
            let pw = libc::getpwent();
            if pw.is_null() {
                break;
            }
            if (*pw).pw_gid == gid {
                uids.push((*pw).pw_uid);
            }
        }
        libc::endpwent();
    }
    uids
}

/// A `pollfd` for `fd`, waiting for `events` (`libc::POLLIN`…).
pub fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// `poll(2)` on `fds` for at most `wait` (rounded to milliseconds, at
/// least 1 when `wait` is not zero); the number of ready descriptors, 0 on
/// timeout, negative on error (as poll).
pub fn poll(fds: &mut [libc::pollfd], wait: Duration) -> i32 {
    let ms = if wait.is_zero() {
        0
    } else {
        libc::c_int::try_from(wait.as_millis())
            .unwrap_or(libc::c_int::MAX)
            .max(1)
    };
    let n = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `fds` is a valid, writable array of at least `n` pollfds; the
    // timeout is bounded.
    unsafe { libc::poll(fds.as_mut_ptr(), n, ms) }
}

/// Peeks at one byte of socket `fd` without waiting and without taking
/// it: `recv(MSG_PEEK | MSG_DONTWAIT)`'s result (0 at end of file).
pub fn peek(fd: RawFd) -> isize {
    let mut byte = [0u8; 1];
    // SAFETY: a one-byte buffer of our own; MSG_PEEK leaves the data for
    // its owner, MSG_DONTWAIT never blocks.
    unsafe {
        libc::recv(
            fd,
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    }
}

/// How long ago data last arrived on TCP socket `fd`, by the kernel's
/// count (`TCP_INFO`'s `tcpi_last_data_recv`); `None` when `fd` is not a
/// TCP socket.
pub fn tcp_last_data_recv(fd: RawFd) -> Option<Duration> {
    // SAFETY: an all-zero `tcp_info` is a valid value of that plain struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: `info` is writable for `len` bytes; getsockopt writes at most
    // that many and says how many in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| Duration::from_millis(u64::from(info.tcpi_last_data_recv)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_named_and_has_its_group() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert!(primary_members(0).contains(&0));
        assert!(group_members(0).is_some());
        assert_eq!(group_members(3_999_999_999), None);
    }

    #[test]
    fn poll_sees_a_readable_pipe_and_peek_leaves_the_byte() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut fds = [pollfd(b.as_raw_fd(), libc::POLLIN)];
        assert_eq!(poll(&mut fds, Duration::ZERO), 0);
        a.write_all(b"x").unwrap();
        assert_eq!(poll(&mut fds, Duration::from_secs(5)), 1);
        assert_eq!(peek(b.as_raw_fd()), 1);
        let mut byte = [0u8; 1];
        b.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        drop(a);
        assert_eq!(peek(b.as_raw_fd()), 0);
        assert_eq!(tcp_last_data_recv(b.as_raw_fd()), None);
    }
}
