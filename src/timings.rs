//! Build timings from recorded steps: per phase of one run, and statistics over runs.
use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use crate::{store::StepRow, time::duration_between};

/// The four phases in pipeline order; timings are shown in this order.
pub const PHASES: [&str; 4] = ["build", "cluster", "load", "deploy"];

/// One phase of one run: its wall time (first start to last end) and its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseTiming {
    pub phase: String,
    pub duration: Duration,
    pub steps: Vec<(String, Duration)>,
}

/// Percentiles of a phase's wall time over recent successful runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseStats {
    pub phase: String,
    pub runs: u32,
    pub p50: Duration,
    pub p95: Duration,
    pub last: Duration,
}

/// The phases of one run, in pipeline order (unknown phases after, by name).
pub fn phases_of_run(steps: &[StepRow]) -> Vec<PhaseTiming> {
    let mut by_phase: BTreeMap<(usize, &str), Vec<&StepRow>> = BTreeMap::new();
    for step in steps.iter().filter(|s| s.ended_at.is_some()) {
        let order = PHASES
            .iter()
            .position(|p| *p == step.phase)
            .unwrap_or(PHASES.len());
        by_phase.entry((order, &step.phase)).or_default().push(step);
    }
    by_phase
        .into_iter()
        .map(|((_, phase), steps)| {
            let start = steps.iter().map(|s| s.started_at).min().unwrap_or_default();
            let end = steps
                .iter()
                .filter_map(|s| s.ended_at)
                .max()
                .unwrap_or(start);
            PhaseTiming {
                phase: phase.to_string(),
                duration: duration_between(start, end),
                steps: steps
                    .iter()
                    .map(|s| {
                        let end = s.ended_at.unwrap_or(s.started_at);
                        (s.step.clone(), duration_between(s.started_at, end))
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Wall time of a whole run: first step start to last step end.
pub fn run_total(steps: &[StepRow]) -> Duration {
    let start = steps.iter().map(|s| s.started_at).min();
    let end = steps.iter().filter_map(|s| s.ended_at).max();
    match (start, end) {
        (Some(start), Some(end)) => duration_between(start, end),
        _ => Duration::ZERO,
    }
}

/// p50/p95/last per phase over runs; `steps` holds several runs, newest run first.
pub fn phase_stats(steps: &[StepRow]) -> Vec<PhaseStats> {
    let mut runs: Vec<(i64, Vec<StepRow>)> = Vec::new();
    for step in steps {
        match runs.last_mut() {
            Some((id, run)) if *id == step.run_id => run.push(step.clone()),
            _ => runs.push((step.run_id, vec![step.clone()])),
        }
    }
    // Newest run first, so each phase's first sample is its "last" value.
    let mut samples: BTreeMap<(usize, String), Vec<Duration>> = BTreeMap::new();
    for (_, run) in &runs {
        for phase in phases_of_run(run) {
            let order = PHASES
                .iter()
                .position(|p| *p == phase.phase)
                .unwrap_or(PHASES.len());
            samples
                .entry((order, phase.phase))
                .or_default()
                .push(phase.duration);
        }
    }
    samples
        .into_iter()
        .map(|((_, phase), durations)| {
            let last = durations[0];
            let mut sorted = durations;
            sorted.sort();
            PhaseStats {
                phase,
                runs: u32::try_from(sorted.len()).unwrap_or(u32::MAX),
                p50: percentile(&sorted, 50),
                p95: percentile(&sorted, 95),
                last,
            }
        })
        .collect()
}

/// The phases of a run as a table, in the four phases' order: each phase's wall time and the
/// steps inside it (run in parallel), then the run's total. `infrad build` and the pipeline
/// benchmark print it.
pub fn phase_table(steps: &[StepRow]) -> String {
    let seconds = |d: Duration| format!("{:.2}s", d.as_secs_f64());
    let mut out = format!(
        "{:<10} {:>8}  steps (in parallel inside a phase)\n",
        "phase", "took"
    );
    for phase in phases_of_run(steps) {
        let inner: Vec<String> = phase
            .steps
            .iter()
            .map(|(step, took)| format!("{step} {}", seconds(*took)))
            .collect();
        let _ = writeln!(
            out,
            "{:<10} {:>8}  {}",
            phase.phase,
            seconds(phase.duration),
            inner.join(", ")
        );
    }
    let _ = writeln!(out, "{:<10} {:>8}", "total", seconds(run_total(steps)));
    out
}

/// Nearest-rank percentile of sorted, non-empty samples.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(run_id: i64, phase: &str, name: &str, start: i64, end: i64) -> StepRow {
        StepRow {
            run_id,
            phase: phase.into(),
            step: name.into(),
            started_at: start,
            ended_at: Some(end),
            outcome: crate::store::RunOutcome::Succeeded,
        }
    }

    #[test]
    fn a_phase_spans_its_overlapping_steps() {
        let steps = [
            step(1, "cluster", "create", 3_000, 4_000),
            step(1, "build", "a", 0, 2_000),
            step(1, "build", "b", 500, 3_000),
        ];
        let phases = phases_of_run(&steps);
        assert_eq!(phases[0].phase, "build");
        assert_eq!(phases[0].duration, Duration::from_secs(3));
        assert_eq!(phases[0].steps.len(), 2);
        assert_eq!(phases[1].phase, "cluster");
        assert_eq!(run_total(&steps), Duration::from_secs(4));
        let table = phase_table(&steps);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(
            lines[1].starts_with("build") && lines[1].contains("a 2.00s, b 2.50s"),
            "{table}"
        );
        assert!(lines[1].contains("3.00s"), "{table}");
        assert!(
            lines[3].starts_with("total") && lines[3].ends_with("4.00s"),
            "{table}"
        );
    }

    #[test]
    fn stats_take_percentiles_and_the_newest_run() {
        // Newest run first: run 10 took 9 s, the nine before took 1..=9 s... shuffled.
        let mut steps = vec![step(10, "build", "a", 0, 9_000)];
        for (i, secs) in [3, 1, 2, 5, 4, 8, 7, 6, 10].iter().enumerate() {
            steps.push(step(9 - i as i64, "build", "a", 0, secs * 1_000));
        }
        let stats = phase_stats(&steps);
        assert_eq!(stats.len(), 1);
        let build = &stats[0];
        assert_eq!(build.runs, 10);
        assert_eq!(build.last, Duration::from_secs(9));
        assert_eq!(build.p50, Duration::from_secs(5));
        assert_eq!(build.p95, Duration::from_secs(10));
    }

    #[test]
    fn unfinished_steps_do_not_count() {
        let mut running = step(1, "load", "images", 0, 0);
        running.ended_at = None;
        assert!(phases_of_run(&[running]).is_empty());
        assert!(phase_stats(&[]).is_empty());
    }
}
