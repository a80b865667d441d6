//! Reading a call recording as the tests check it: navbat writes recordings encrypted
//! (`navbat::recordings::seal`), with the key file a loopback test run makes in its
//! directory (`keys/recordings.key`).

use std::path::Path;

/// The recording at `path` (as the `recording` event names it, relative to `navbat_dir` if
/// not absolute), decrypted into the WAV navbat serves.
pub fn recording_wav(navbat_dir: &Path, path: &str) -> Vec<u8> {
    let path = Path::new(path);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        navbat_dir.join(path)
    };
    let keys = navbat::recordings::seal::Keys::load(&navbat_dir.join("keys/recordings.key"))
        .unwrap_or_else(|e| panic!("the test run's recording keys: {e}"));
    let mut playable = navbat::recordings::file::Playable::open(&path, Some(&keys))
        .unwrap_or_else(|e| panic!("open the recording {}: {e}", path.display()));
    let mut wav = vec![0u8; playable.len() as usize];
    let n = playable
        .read_at(0, &mut wav)
        .unwrap_or_else(|e| panic!("read the recording {}: {e}", path.display()));
    wav.truncate(n);
    wav
}
