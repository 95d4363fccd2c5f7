//! SSH to one host through the `ssh2` crate (libssh2), over a byte stream
//! that [`super::open`] provides: one module per job, each importing only
//! its siblings below it (none imports `open`, `jump` or `reach`).
//!
//! - [`session`]: the logged-in session, running commands on its channels;
//! - [`login`]: handshake, host key check and authentication over a stream;
//! - [`hostkeys`]: host-key algorithms, the key decision, accept-new;
//! - [`auth`]: the agent and key files;
//! - [`network`]: DNS and TCP by a deadline;
//! - [`keepalive`]: keepalives and silence detection;
//! - [`kex`]: the key exchange algorithms offered, and the server's;
//! - [`ext`]: the libssh2 calls the `ssh2` crate lacks, and its error codes.

pub(crate) mod auth;
pub(crate) mod ext;
pub(crate) mod hostkeys;
pub(crate) mod keepalive;
pub(crate) mod kex;
pub(crate) mod login;
pub(crate) mod network;
pub(crate) mod session;

pub use hostkeys::{
    append_known_host, check_host_key, host_key_preference, prefer_known_host_keys,
};
pub use session::SshConnection;
