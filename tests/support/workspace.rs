//! A temporary copy of the project's `mappings/` and `schemas/`, for tests that change the
//! bundled files (a typo, a broken template) and run `engine` on the result.

use std::path::{Path, PathBuf};

use super::{Engine, Output, repo_root};

pub struct Workspace {
    dir: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Workspace {
    /// An empty workspace.
    pub fn empty() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A workspace holding copies of the bundled `mappings/` and `schemas/`.
    pub fn with_bundle() -> Workspace {
        let workspace = Workspace::empty();
        copy_dir(&repo_root().join("mappings"), &workspace.path("mappings"));
        copy_dir(&repo_root().join("schemas"), &workspace.path("schemas"));
        workspace
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Replace `old` (which must occur exactly once) by `new` in a file.
    #[track_caller]
    pub fn edit(&self, relative: &str, old: &str, new: &str) {
        let text = self.read(relative);
        assert_eq!(
            text.matches(old).count(),
            1,
            "`{old}` must occur exactly once in {relative}"
        );
        self.write(relative, text.replacen(old, new, 1));
    }

    /// `engine` running in this workspace.
    pub fn engine(&self) -> Engine {
        Engine::new().current_dir(self.root())
    }

    /// `engine run FLOW` here, its state kept in the workspace's `state` folder.
    pub fn run_flow(&self, flow: &str) -> Output {
        self.engine()
            .args(["run", flow])
            .env("ENGINE_STATE_DIR", self.path("state").display().to_string())
            .run()
    }
}
