//! One copy of each dataset's training split per process, for the many
//! clients one process runs (a node agent serving a campus): read once,
//! then shared read-only; each client copies out only its own examples.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{DataError, Dataset, DatasetName, registry};

/// The training splits read so far, by dataset and data directory.
type Cache = Vec<((DatasetName, Option<PathBuf>), Arc<Dataset>)>;

static CACHE: Mutex<Cache> = Mutex::new(Vec::new());

/// The training split of `name` (found under `data_dir` as
/// [`registry::load_train`] finds it), read on the first call and shared
/// by every later one. Callers that arrive while it is being read wait for
/// that read rather than start their own.
pub fn train_split(name: DatasetName, data_dir: Option<&Path>) -> Result<Arc<Dataset>, DataError> {
    let key = (name, data_dir.map(Path::to_path_buf));
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, data)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(Arc::clone(data));
    }
    let data = Arc::new(registry::load_train(name, data_dir)?);
    cache.push((key, Arc::clone(&data)));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_is_read_once_and_shared() {
        let a = train_split(DatasetName::SyntheticImages, None).unwrap();
        let b = train_split(DatasetName::SyntheticImages, None).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            a.len(),
            registry::load(DatasetName::SyntheticImages, None)
                .unwrap()
                .train
                .len()
        );
    }
}
