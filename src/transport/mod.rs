//! How commands reach a host. TODO
