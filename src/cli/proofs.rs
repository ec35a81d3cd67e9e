//! `annals keygen`, `checkpoint`, `prove` and `check-proof`: signed
//! checkpoints and Merkle proofs of the log (`docs/compliance.md`,
//! "Proofs"). `check-proof` needs no store: it is what an auditor runs.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use annals::ProofOptions;
use annals::proof::{self, CheckError, note};
use serde::Serialize;

use super::args::{CheckProofArgs, CheckpointArgs, KeygenArgs, ProveCommand};
use super::failure::{EXIT_CORRUPTION, Failure};
use super::output::Output;
use super::store_dir::open_read_only;

/// The longest key file read: a key text is under 400 bytes.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Reads a small text file whole, refusing one longer than `limit` bytes
/// before reading it into memory.
fn read_text(path: &Path, limit: u64, what: &str) -> Result<String, Failure> {
    let fail =
        |e: std::io::Error| Failure::other(format!("reading {what} {}: {e}", path.display()));
    let file = fs::File::open(path).map_err(fail)?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(fail)?;
    if text.len() as u64 > limit {
        return Err(Failure::other(format!(
            "{what} {} is longer than {limit} bytes: it is not one",
            path.display()
        )));
    }
    Ok(text)
}

/// A key file's text: the key on its first line.
pub(super) fn read_key(path: &Path, what: &str) -> Result<String, Failure> {
    Ok(read_text(path, MAX_KEY_FILE_BYTES, what)?
        .trim_end()
        .to_string())
}

pub(super) fn read_note(path: &Path, what: &str) -> Result<String, Failure> {
    read_text(path, note::MAX_NOTE_BYTES as u64, what)
}

/// The checkpoint a note states, without checking its signature: the
/// prover only needs the size (the auditor checks the signature).
fn unverified_checkpoint(text: &str, path: &Path) -> Result<note::Checkpoint, Failure> {
    let refuse = |detail: String| {
        Failure::other(format!(
            "{} is not a signed checkpoint: {detail}",
            path.display()
        ))
    };
    // The body ends at the blank line before the signatures.
    let end = text
        .find("\n\n")
        .ok_or_else(|| refuse("it has no blank line before its signatures".to_string()))?;
    note::Checkpoint::parse_body(&text[..=end]).map_err(|e| refuse(e.to_string()))
}

/// Writes `text` to a new file (refusing an existing one) with `mode`.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::other(format!("writing {}: {e}", path.display()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[derive(Debug, Serialize)]
struct KeyPair<'a> {
    signer_key_file: &'a Path,
    verifier_key_file: &'a Path,
    verifier_key: &'a str,
}

pub fn keygen(args: &KeygenArgs) -> Result<(), Failure> {
    let (signer, verifier) = note::generate_key(&args.name)
        .map_err(|e| Failure::other(format!("key name {:?}: {e}", args.name)))?;
    let mut public = args.out.clone().into_os_string();
    public.push(".pub");
    let public = PathBuf::from(public);
    // Neither file may exist: a key overwritten is a log whose old
    // checkpoints nobody can check any more.
    for path in [&args.out, &public] {
        if path.symlink_metadata().is_ok() {
            return Err(Failure::other(format!(
                "{} exists: keygen never overwrites a key",
                path.display()
            )));
        }
    }
    write_new(&args.out, &format!("{signer}\n"), 0o600)?;
    write_new(&public, &format!("{verifier}\n"), 0o644)?;
    let mut out = Output::stdout();
    out.json_line(&KeyPair {
        signer_key_file: &args.out,
        verifier_key_file: &public,
        verifier_key: &verifier,
    })?;
    out.flush()
}

#[derive(Debug, Serialize)]
struct Written<'a> {
    origin: &'a str,
    tree_size: u64,
    root: String,
    out: &'a Path,
}

pub fn checkpoint(args: &CheckpointArgs) -> Result<(), Failure> {
    let key = read_key(&args.key, "signer key file")?;
    let store = open_read_only(&args.dir)?;
    let signed = store.signed_checkpoint(&args.origin, &key)?;
    let mut out = Output::stdout();
    match &args.out {
        None => out.text(&signed)?,
        Some(path) => {
            fs::write(path, &signed)
                .map_err(|e| Failure::other(format!("writing {}: {e}", path.display())))?;
            let checkpoint = unverified_checkpoint(&signed, path)?;
            out.json_line(&Written {
                origin: &checkpoint.origin,
                tree_size: checkpoint.size,
                root: hex(&checkpoint.root),
                out: path,
            })?;
        }
    }
    out.flush()
}

fn hex(hash: &[u8]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checkpoint a `--checkpoint`/`--from`/`--to` file states, refused
/// (exit 4) when its root is not the store's tree at its size: the log is
/// not the one that was signed.
fn checkpoint_of_store(
    store: &annals::Store,
    path: &Path,
    what: &str,
    options: &ProofOptions,
) -> Result<note::Checkpoint, Failure> {
    let checkpoint = unverified_checkpoint(&read_note(path, what)?, path)?;
    let root = store.tree_root_with(checkpoint.size, options)?;
    if root != checkpoint.root {
        return Err(Failure {
            code: EXIT_CORRUPTION,
            message: format!(
                "the {what} {} signs root {} for {} events, but the store's tree of that size \
                 has root {}: this log is not the one that was signed",
                path.display(),
                hex(&checkpoint.root),
                checkpoint.size,
                hex(&root)
            ),
        });
    }
    Ok(checkpoint)
}

/// Where a proof reads retired events: the `--archive` directory, if given.
fn proof_options(archive: Option<&Path>) -> ProofOptions {
    match archive {
        Some(archive) => ProofOptions::default().archive(archive),
        None => ProofOptions::default(),
    }
}

pub fn prove(command: &ProveCommand) -> Result<(), Failure> {
    let mut out = Output::stdout();
    match command {
        ProveCommand::Inclusion(args) => {
            let store = open_read_only(&args.dir)?;
            let options = proof_options(args.archive.as_deref());
            let tree_size = match &args.checkpoint {
                Some(path) => checkpoint_of_store(&store, path, "checkpoint", &options)?.size,
                None => store.tree_size_and_root()?.0,
            };
            out.json_line(&store.inclusion_proof_with(args.position, tree_size, &options)?)?;
        }
        ProveCommand::Consistency(args) => {
            let store = open_read_only(&args.dir)?;
            let options = proof_options(args.archive.as_deref());
            let old = checkpoint_of_store(&store, &args.from, "old checkpoint", &options)?;
            let new = checkpoint_of_store(&store, &args.to, "new checkpoint", &options)?;
            out.json_line(&store.consistency_proof_with(old.size, new.size, &options)?)?;
        }
    }
    out.flush()
}

#[derive(Debug, Serialize)]
struct Checked {
    holds: bool,
    origin: String,
    tree_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_tree_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leaf_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leaf_hash: Option<String>,
}

pub fn check_proof(args: &CheckProofArgs) -> Result<(), Failure> {
    let key = read_key(&args.key, "verifier key file")?;
    let proof_json = read_text(
        &args.proof,
        proof::MAX_PROOF_JSON_BYTES as u64,
        "proof file",
    )?;
    let new_note = read_note(&args.checkpoint, "checkpoint")?;
    let checked = match &args.old_checkpoint {
        None => proof::check_inclusion(&proof_json, &new_note, &key).map(|checked| Checked {
            holds: true,
            origin: checked.checkpoint.origin,
            tree_size: checked.checkpoint.size,
            old_tree_size: None,
            leaf_index: Some(checked.proof.leaf_index),
            leaf_hash: Some(hex(&checked.proof.leaf_hash)),
        }),
        Some(old_path) => {
            let old_note = read_note(old_path, "old checkpoint")?;
            proof::check_consistency(&proof_json, &old_note, &new_note, &key).map(|(old, new)| {
                Checked {
                    holds: true,
                    origin: new.origin,
                    tree_size: new.size,
                    old_tree_size: Some(old.size),
                    leaf_index: None,
                    leaf_hash: None,
                }
            })
        }
    };
    let checked = checked.map_err(check_failure)?;
    let mut out = Output::stdout();
    out.json_line(&checked)?;
    out.flush()
}

/// Exit 4 when the proof does not hold (it does not verify, does not
/// match the checkpoints, or a checkpoint is not signed by the key); 1
/// when the input is not a proof, note or key at all.
fn check_failure(error: CheckError) -> Failure {
    let does_not_hold = match &error {
        CheckError::Proof(_)
        | CheckError::SizeMismatch { .. }
        | CheckError::OriginMismatch { .. } => true,
        CheckError::Checkpoint { error, .. } => error.is_signature_failure(),
        _ => false,
    };
    let message = error.to_string();
    if does_not_hold {
        Failure {
            code: EXIT_CORRUPTION,
            message: format!("the proof does not hold: {message}"),
        }
    } else {
        Failure::other(message)
    }
}
