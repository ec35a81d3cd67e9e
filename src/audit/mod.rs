//! Audits of a store that change nothing unless asked: `verify` checks every
//! byte and the hash chain. They sit above the log's scanner and directory
//! walk, never beside the store reaching into its internals.

pub mod verify;
