//! Copying a collected artifacts directory to where the caller wants it.
use std::path::Path;

use crate::{Error, Result};

/// Copies the contents of `from` into `to` (made if missing), directories recursively;
/// symbolic links are copied as links, never followed out of the tree.
pub(crate) fn tree(from: &Path, to: &Path) -> Result<()> {
    let io = |what: &str, path: &Path| {
        let what = format!("{what} {}", path.display());
        move |source| Error::Io { what, source }
    };
    std::fs::create_dir_all(to).map_err(io("cannot make", to))?;
    for entry in std::fs::read_dir(from).map_err(io("cannot read", from))? {
        let entry = entry.map_err(io("cannot read", from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io("cannot read", &source))?;
        if kind.is_dir() {
            tree(&source, &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(io("cannot read", &source))?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target).map_err(io("cannot write", &target))?;
        } else {
            std::fs::copy(&source, &target).map_err(io("cannot copy", &source))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_copied_into_an_existing_or_new_directory() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("logs/demo/web-1")).unwrap();
        std::fs::write(from.path().join("logs/demo/web-1/web.log"), "hello\n").unwrap();
        std::fs::write(from.path().join("events.txt"), "none\n").unwrap();
        std::os::unix::fs::symlink("events.txt", from.path().join("latest")).unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::write(to.path().join("events.txt"), "old").unwrap();
        let dest = to.path().join("out");
        tree(from.path(), &dest).unwrap();
        tree(from.path(), to.path()).unwrap();
        for root in [dest.as_path(), to.path()] {
            let log = std::fs::read_to_string(root.join("logs/demo/web-1/web.log")).unwrap();
            assert_eq!(log, "hello\n");
            assert_eq!(
                std::fs::read_to_string(root.join("events.txt")).unwrap(),
                "none\n"
            );
            assert_eq!(
                std::fs::read_link(root.join("latest")).unwrap(),
                Path::new("events.txt")
            );
        }
    }

    #[test]
    fn a_missing_source_is_an_io_error_naming_it() {
        let to = tempfile::tempdir().unwrap();
        let error = tree(Path::new("/nonexistent/artifacts"), to.path()).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/artifacts"),
            "{error}"
        );
    }
}
