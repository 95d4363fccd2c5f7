//! OpenSSH client configuration (`~/.ssh/config`): parse and resolve the
//! options for one host alias. STUB: replaced by the ssh_config work.
