//! Files on the machine foobar runs on: the user's input read with a size
//! cap, and the files foobar keeps (the database CA, ACME accounts)
//! written whole or not at all, keys never readable by others.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The most an input file (inventory, playbook, template, secret) may
/// hold: each is a page of text, and a huge one is a mistake (or an
/// attack on a parser).
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("larger than {MAX_INPUT_BYTES} bytes, the most foobar reads")]
    TooBig,
}

/// The bytes of an input file, refused past [`MAX_INPUT_BYTES`].
pub fn read_input(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_capped(fs::File::open(path)?)
}

/// The bytes of an input (a file, a command's output), refused past
/// [`MAX_INPUT_BYTES`]. Read through a limit rather than trusting a size:
/// a pipe or a device (`/dev/zero`) claims none and may never end.
pub fn read_capped(input: impl Read) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    input.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(ReadError::TooBig);
    }
    Ok(bytes)
}

/// `dir` made (with its parents) and kept the user's alone.
pub fn private_folder(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Written whole or not at all (a temporary file renamed), with its mode
/// from the start: a key is never readable by others, even for a moment.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_capped_for_devices_too() {
        assert!(matches!(
            read_input(Path::new("/dev/zero")),
            Err(ReadError::TooBig)
        ));
        let dir = tempfile::tempdir().unwrap();
        let at_cap = dir.path().join("at_cap");
        fs::write(&at_cap, vec![b'#'; MAX_INPUT_BYTES as usize]).unwrap();
        assert_eq!(read_input(&at_cap).unwrap().len() as u64, MAX_INPUT_BYTES);
        assert!(matches!(
            read_input(&dir.path().join("missing")),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
    }
}
