//! Collecting a lease's artifacts at release: what Release may ask to flush (the profile's
//! deploy steps, each once) and what collecting wrote ([`Collected`]). The pipeline does the
//! work; what it could not get is a problem noted, never a failed release.
use std::{path::PathBuf, time::Duration};

use crate::{Error, Result, config::Profile};

/// What collecting wrote into a cluster's artifacts directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    pub dir: PathBuf,
    /// Pods whose logs were written.
    pub pods: u32,
    /// Container logs written, previous ones included.
    pub logs: u32,
    /// What could not be collected, each naming the object and why.
    pub problems: Vec<String>,
    pub took: Duration,
}

impl Collected {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            ..Self::default()
        }
    }
}

/// Every name in `flush` is one of the profile's deploy steps, given once.
pub fn check_flush(profile: &Profile, flush: &[String]) -> Result<()> {
    for (i, step) in flush.iter().enumerate() {
        if !profile.deploy.iter().any(|s| &s.name == step) {
            let steps: Vec<&str> = profile.deploy.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::UnknownFlushStep {
                profile: profile.name.clone(),
                step: step.clone(),
                steps: if steps.is_empty() {
                    "none".into()
                } else {
                    steps.join(", ")
                },
            });
        }
        if flush[..i].contains(step) {
            return Err(Error::InvalidArgument(format!(
                "flush: step {step:?} is named twice"
            )));
        }
    }
    Ok(())
}
