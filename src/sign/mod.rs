//! Signature algorithms of the APIs, as pure functions of their inputs.
//!
//! Both the engine's auth strategies (which sign) and the sandboxes (which verify) call
//! these, so a sandbox can never drift from the client. No IO, no clock: timestamps and
//! nonces are parameters. Each algorithm is unit-tested against the specs' test vectors.

pub mod digest;
pub mod kingdee;
pub mod qimen;
pub mod wdt_openapi;
