//! Durations as people write them in TOML: "30s", "10m", "1h 30m".
use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error};

#[derive(Debug, Clone, Copy)]
pub(crate) struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| {
                D::Error::custom(format!(
                    "{e} in {text:?} (write e.g. \"30s\", \"10m\", \"2h\")"
                ))
            })
    }
}
