//! Working directories belong to conversations, not to processes.
//!
//! The CLI keys its transcripts by working directory, so a conversation keeps its directory for
//! life: a process that resumes it runs there, and the directory may only go once nothing uses
//! it any more. Each user holds one reference: every live worker (for the directory it runs in)
//! and every conversation the pool still remembers (for the directory it was started in). The
//! last release says the directory can be removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Reference counts of the working directories in use.
#[derive(Debug, Default)]
pub(crate) struct WorkDirs {
    refs: HashMap<PathBuf, usize>,
}

impl WorkDirs {
    /// One more user of `dir`.
    pub(crate) fn acquire(&mut self, dir: &Path) {
        *self.refs.entry(dir.to_path_buf()).or_default() += 1;
    }

    /// One user fewer; true when it was the last (the directory may be removed).
    pub(crate) fn release(&mut self, dir: &Path) -> bool {
        match self.refs.get_mut(dir) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.refs.remove(dir);
                true
            }
            None => false,
        }
    }

    /// Directories in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self, dir: &Path) -> bool {
        self.refs.contains_key(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_release_frees_the_directory() {
        let mut d = WorkDirs::default();
        let p = Path::new("/w/a");
        d.acquire(p);
        d.acquire(p);
        assert!(!d.release(p));
        assert!(d.in_use(p));
        assert!(d.release(p));
        assert!(!d.in_use(p));
        assert!(!d.release(p), "an unknown directory is never reported");
    }
}
