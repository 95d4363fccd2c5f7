//! The libssh2 calls the `ssh2` crate does not offer: public key
//! authentication with the signature made here (Ed25519), hearing the
//! reason a host gives when it disconnects; and what libssh2's error codes
//! mean. One of the two modules allowed `unsafe` (the other is
//! [`crate::sys`]); every block says why it is sound.

#![allow(unsafe_code)]

use std::time::Duration;

use ssh2::Session;

use crate::error::HostError;

pub(super) const LIBSSH2_ERROR_EAGAIN: i32 = -37;
pub(super) const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
pub(super) const LIBSSH2_ERROR_KEX_FAILURE: i32 = -5;
pub(super) const LIBSSH2_ERROR_SOCKET_SEND: i32 = -7;
pub(super) const LIBSSH2_ERROR_SOCKET_DISCONNECT: i32 = -13;
pub(super) const LIBSSH2_ERROR_SOCKET_RECV: i32 = -43;
pub(super) const LIBSSH2_CALLBACK_DISCONNECT: libc::c_int = 2;

extern "C" {
    // libssh2 (linked by libssh2-sys): the `ssh2` crate offers no way to
    // hear the reason a host gives when it disconnects.
    fn libssh2_session_callback_set2(
        session: *mut libc::c_void,
        cbtype: libc::c_int,
        callback: Option<unsafe extern "C" fn()>,
    ) -> Option<unsafe extern "C" fn()>;

    // libssh2: public key authentication with the signature made by the
    // caller (the `ssh2` crate does not offer it).
    fn libssh2_userauth_publickey(
        session: *mut libc::c_void,
        username: *const libc::c_char,
        pubkeydata: *const u8,
        pubkeydata_len: libc::size_t,
        sign_callback: Option<SignCallback>,
        abstract_: *mut *mut libc::c_void,
    ) -> libc::c_int;
}

/// libssh2's signing callback: sign `data` into `*sig` (allocated with
/// `malloc`, which libssh2 frees).
pub(super) type SignCallback = unsafe extern "C" fn(
    *mut libc::c_void,
    *mut *mut u8,
    *mut libc::size_t,
    *const u8,
    libc::size_t,
    *mut *mut libc::c_void,
) -> libc::c_int;

/// Sign with the Ed25519 key `*abstract_` points to.
pub(super) unsafe extern "C" fn sign_ed25519(
    _session: *mut libc::c_void,
    sig: *mut *mut u8,
    sig_len: *mut libc::size_t,
    data: *const u8,
    data_len: libc::size_t,
    abstract_: *mut *mut libc::c_void,
) -> libc::c_int {
    use ed25519_dalek::Signer;
    // SAFETY: `userauth_ed25519` passes a pointer to a pointer to the
    // signing key, alive for the whole call; libssh2 passes `data_len`
    // bytes at `data` and valid places for the signature and its length.
    unsafe {
        let key = &*(*abstract_).cast::<ed25519_dalek::SigningKey>();
        let message = std::slice::from_raw_parts(data, data_len);
        let signature = key.sign(message).to_bytes();
        let out = libc::malloc(signature.len()).cast::<u8>();
        if out.is_null() {
            return -1;
        }
        std::ptr::copy_nonoverlapping(signature.as_ptr(), out, signature.len());
        *sig = out;
        *sig_len = signature.len();
    }
    0
}

/// Log in as `user` with the Ed25519 key `seed` (public key `blob`),
/// signing here. libssh2 would parse the key file again for every host,
/// through OpenSSL's decoders, first as PEM, which the OpenSSH format is
/// not: half of the client's CPU time per host went there.
pub(super) fn userauth_ed25519(
    session: &Session,
    user: &str,
    blob: &[u8],
    seed: &[u8; 32],
) -> Result<(), ssh2::Error> {
    let user = std::ffi::CString::new(user)
        .map_err(|_| ssh2::Error::new(ssh2::ErrorCode::Session(-1), "user name has a NUL"))?;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let mut key_ptr: *mut libc::c_void = std::ptr::from_ref(&key).cast_mut().cast();
    let mut raw = session.raw();
    let ptr: *mut _ = &mut *raw;
    // SAFETY: the session pointer is live (its lock is held); the user
    // name, the blob and the key outlive the call, which is blocking (the
    // session is in blocking mode until the login is done).
    let rc = unsafe {
        libssh2_userauth_publickey(
            ptr.cast(),
            user.as_ptr(),
            blob.as_ptr(),
            blob.len(),
            Some(sign_ed25519),
            &mut key_ptr,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(ssh2::Error::from_session_error_raw(ptr, rc))
    }
}

thread_local! {
    /// The reason the host gave in its last SSH_MSG_DISCONNECT, heard by
    /// the thread that was reading the session.
    static DISCONNECT_REASON: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// libssh2's disconnect callback: keep the host's words for this thread.
pub(super) unsafe extern "C" fn on_disconnect(
    _session: *mut libc::c_void,
    _reason: libc::c_int,
    message: *const libc::c_char,
    message_len: libc::c_int,
    _language: *const libc::c_char,
    _language_len: libc::c_int,
    _abstract: *mut *mut libc::c_void,
) {
    let len = usize::try_from(message_len).unwrap_or(0);
    let text = if message.is_null() || len == 0 {
        String::new()
    } else {
        // SAFETY: libssh2 passes `message_len` bytes at `message`, valid
        // for the duration of the call.
        let bytes = unsafe { std::slice::from_raw_parts(message.cast::<u8>(), len) };
        String::from_utf8_lossy(bytes).into_owned()
    };
    DISCONNECT_REASON.with(|r| *r.borrow_mut() = Some(text));
}

/// Have `session` report the reason of a disconnect (see
/// [`take_disconnect_reason`]).
pub(super) fn hear_disconnects(session: &Session) {
    let mut raw = session.raw();
    let ptr: *mut _ = &mut *raw;
    type Callback = unsafe extern "C" fn(
        *mut libc::c_void,
        libc::c_int,
        *const libc::c_char,
        libc::c_int,
        *const libc::c_char,
        libc::c_int,
        *mut *mut libc::c_void,
    );
    let callback: Callback = on_disconnect;
    // SAFETY: the session pointer is live (its lock is held); libssh2 calls
    // a disconnect callback with exactly `Callback`'s arguments, and takes
    // it as a generic function pointer, as its C API does.
    unsafe {
        let generic = std::mem::transmute::<Callback, unsafe extern "C" fn()>(callback);
        libssh2_session_callback_set2(ptr.cast(), LIBSSH2_CALLBACK_DISCONNECT, Some(generic));
    }
}

/// The reason the last host disconnect heard on this thread gave, if any
/// (and forget it).
pub(super) fn take_disconnect_reason() -> Option<String> {
    DISCONNECT_REASON.with(|r| r.borrow_mut().take())
}

pub(super) fn ssh_err(phase: &str, e: &ssh2::Error, timeout: Duration) -> HostError {
    match e.code() {
        ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) => HostError::Timeout {
            phase: phase.to_string(),
            after: timeout,
        },
        _ => HostError::Ssh(format!("{phase}: {}", e.message())),
    }
}

/// Whether libssh2 said "would block".
pub(super) fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_EAGAIN)
}

pub(in crate::transport) fn is_session_gone(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ssh2::ErrorCode::Session(
            LIBSSH2_ERROR_SOCKET_DISCONNECT | LIBSSH2_ERROR_SOCKET_RECV | LIBSSH2_ERROR_SOCKET_SEND
        )
    )
}
