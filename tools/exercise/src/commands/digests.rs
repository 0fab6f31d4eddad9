//! `digests`, for lesson authors: records the digest of each region's
//! reference code in its catalogue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::catalogue;
use crate::regions;
use crate::workspace::{self, Workspace};

/// Writes each exercise's digests into its catalogue, from the code as it
/// is; refuses while an exercise is blank (that is not the reference).
/// Returns the catalogues changed.
pub fn write_digests(workspace: &Workspace) -> anyhow::Result<Vec<PathBuf>> {
    let mut by_catalogue: BTreeMap<&Path, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for exercise in &workspace.exercises {
        let mut digests = Vec::new();
        for (path, region, body) in workspace.bodies_of(&exercise.id)? {
            let todo = format!("todo!(\"exercise {}:", exercise.id);
            if body.iter().any(|line| line.contains(&todo)) {
                bail!(
                    "exercise {} is blank in {} (line {}): its digest would make the blank the \
                     reference. `cargo exercise restore {}` first; nothing was written",
                    exercise.id,
                    path.display(),
                    region.first_line(),
                    exercise.id
                );
            }
            digests.push(regions::digest(&body));
        }
        by_catalogue
            .entry(&exercise.catalogue)
            .or_default()
            .insert(exercise.id.clone(), digests);
    }
    let mut written = Vec::new();
    for (catalogue, digests) in by_catalogue {
        let path = workspace.root.join(catalogue);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| anyhow::anyhow!("could not read {}: {error}", path.display()))?;
        let new = catalogue::with_digests(&text, &digests);
        if new != text {
            workspace::write(&path, &new)?;
            written.push(catalogue.to_path_buf());
        }
    }
    Ok(written)
}
