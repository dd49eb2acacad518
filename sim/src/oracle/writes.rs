//! I14 no lost writes: every transcript, at quiescence, against what was written.

use std::path::{Path, PathBuf};

use super::{InvariantId, Oracle};

impl Oracle {
    pub fn transcript_created(&mut self, path: &Path, content: &[u8]) {
        self.transcripts.insert(path.to_owned(), content.to_vec());
    }

    /// Every transcript holds exactly what the acknowledged writes made (I14).
    pub(super) fn check_transcripts(&mut self, now: u64, read: impl Fn(&Path) -> Option<Vec<u8>>) {
        let expected: Vec<(PathBuf, Vec<u8>)> =
            self.transcripts.iter().map(|(p, c)| (p.clone(), c.clone())).collect();
        for (path, want) in expected {
            let got = read(&path).unwrap_or_default();
            if got != want {
                let detail = format!(
                    "no lost writes: {} has {} bytes, the acknowledged writes make {} bytes",
                    path.display(),
                    got.len(),
                    want.len()
                );
                self.violate(now, InvariantId::I14, None, None, detail);
            }
        }
    }
}
