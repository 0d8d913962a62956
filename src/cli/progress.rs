//! Showing a wait: a live line when stderr is a terminal, timestamped lines otherwise.
use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant, SystemTime},
};

use infrad_client::proto;

use crate::pool::StepEvent;

/// A build's steps: a line on stdout as each starts and ends and, when stderr is a terminal,
/// a live line there naming the steps running now and for how long.
pub struct StepView {
    live: bool,
    running: Vec<(String, Instant)>,
}

impl StepView {
    pub fn for_stderr() -> Self {
        Self {
            live: std::io::stderr().is_terminal(),
            running: Vec::new(),
        }
    }

    pub fn show(&mut self, line: &str, event: &StepEvent) {
        match event {
            StepEvent::Started { phase, step, .. } => {
                self.running
                    .push((format!("{phase} / {step}"), Instant::now()));
            }
            StepEvent::Ended { phase, step, .. } => {
                let name = format!("{phase} / {step}");
                self.running.retain(|(running, _)| *running != name);
            }
        }
        self.clear();
        println!("{line}");
        self.redraw();
    }

    pub fn redraw(&self) {
        if self.live && !self.running.is_empty() {
            let steps: Vec<String> = self
                .running
                .iter()
                .map(|(name, since)| format!("{name} {}s", since.elapsed().as_secs()))
                .collect();
            let _ = write!(
                std::io::stderr(),
                "\r\x1b[2K  running: {}",
                steps.join(", ")
            );
            let _ = std::io::stderr().flush();
        }
    }

    fn clear(&self) {
        if self.live {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }

    pub fn done(&self) {
        self.clear();
    }
}

pub struct ProgressView {
    live: bool,
    /// The last plain line printed, so that an unchanged state is not repeated.
    last: String,
}

impl ProgressView {
    pub fn for_stderr() -> Self {
        Self {
            live: std::io::stderr().is_terminal(),
            last: String::new(),
        }
    }

    pub fn waiting(&mut self, waiting: &proto::Waiting) {
        if self.live {
            let _ = write!(std::io::stderr(), "\r\x1b[2K{}", describe(waiting, true));
            let _ = std::io::stderr().flush();
            return;
        }
        // Plain lines only when something other than elapsed time changed.
        let line = describe(waiting, false);
        if line != self.last {
            let now = humantime::format_rfc3339_seconds(SystemTime::now());
            let _ = writeln!(std::io::stderr(), "{now} {line}");
            self.last = line;
        }
    }

    /// One line per step of putting the caller's images in, as it starts and ends.
    pub fn overlay(&mut self, step: &proto::OverlayStep) {
        if self.live {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
        let now = humantime::format_rfc3339_seconds(SystemTime::now());
        let _ = writeln!(std::io::stderr(), "{now} {}", describe_overlay(step));
        self.last = String::new();
    }

    /// Ends the live line.
    pub fn done(&self) {
        if self.live && !self.last.is_empty() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

fn seconds(d: Option<&prost_types::Duration>) -> String {
    let d = d
        .and_then(|d| Duration::try_from(*d).ok())
        .unwrap_or_default();
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// `your images: deploy / we ended in 1.2s`.
pub fn describe_overlay(step: &proto::OverlayStep) -> String {
    let what = format!("your images: {} / {}", step.phase, step.step);
    if !step.done {
        return format!("{what} started");
    }
    let took = step
        .took
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or_default();
    let took = format!("{:.1}s", took.as_secs_f64());
    if step.error.is_empty() {
        format!("{what} ended in {took}")
    } else {
        format!("{what} failed after {took}: {}", step.error)
    }
}

/// `waiting: 2 of 3 in the queue; cluster infrad-demo-1a2b building 1m 3s, now deploy / web (20s)`.
pub fn describe(waiting: &proto::Waiting, with_times: bool) -> String {
    let mut line = format!(
        "waiting: {} of {} in the queue",
        waiting.position, waiting.waiting
    );
    if let Some(build) = &waiting.build {
        line.push_str(&format!("; cluster {} building", build.cluster));
        if with_times {
            line.push_str(&format!(" {}", seconds(build.elapsed.as_ref())));
        }
        if !build.phase.is_empty() {
            line.push_str(&format!(", now {} / {}", build.phase, build.step));
            if with_times {
                line.push_str(&format!(" ({})", seconds(build.step_elapsed.as_ref())));
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_queue_and_the_build() {
        let waiting = proto::Waiting {
            position: 2,
            waiting: 3,
            build: Some(proto::BuildProgress {
                cluster: "infrad-demo-1a2b".into(),
                elapsed: Some(prost_types::Duration {
                    seconds: 63,
                    nanos: 0,
                }),
                phase: "deploy".into(),
                step: "web".into(),
                step_elapsed: Some(prost_types::Duration {
                    seconds: 20,
                    nanos: 0,
                }),
            }),
        };
        assert_eq!(
            describe(&waiting, true),
            "waiting: 2 of 3 in the queue; cluster infrad-demo-1a2b building 1m 3s, now deploy / web (20s)"
        );
        assert_eq!(
            describe(&waiting, false),
            "waiting: 2 of 3 in the queue; cluster infrad-demo-1a2b building, now deploy / web"
        );
    }
}
