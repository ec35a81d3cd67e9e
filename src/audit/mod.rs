//! Audits of a store that change nothing unless asked: `verify` checks every
//! byte and the hash chain; `repair` cuts a damaged log back to the prefix
//! every opener accepts. They sit above the log's scanner and directory
//! walk, never beside the store reaching into its internals.

mod index_tree;
pub mod repair;
pub mod salvage;
pub mod verify;
