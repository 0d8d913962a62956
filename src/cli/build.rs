//! `infrad build`: the pipeline once, in the foreground, printing each step as it starts and
//! ends and then a table of phases. The cluster is left standing (`--rm` deletes it).
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use super::{BuildArgs, Exit, default_state_dir, progress::StepView};
use crate::{
    config::Config,
    daemon,
    pipeline::Pipeline,
    pool::{ClusterSpec, Provisioner, Recorder, StepEvent},
    store::Store,
    time,
    timings::phase_table,
};

/// One-shot clusters are named `build-<profile>-<id>`: not `infrad-`, so that a daemon on the
/// same host never takes them for its own orphans.
const NAME_PREFIX: &str = "build-";

/// Exit codes (documented in `infrad build --help` and the README): a failed build exits 1,
/// like any other error.
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

pub async fn build(args: BuildArgs) -> Result<()> {
    let config = Config::load(&args.config.config).map_err(|e| Exit {
        code: EXIT_BAD_INPUT,
        message: e.to_string(),
    })?;
    let profile = config.profile(&args.profile).cloned().ok_or_else(|| {
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        Exit {
            code: EXIT_BAD_INPUT,
            message: format!(
                "no profile {:?} in {}; it has: {}",
                args.profile,
                args.config.config.display(),
                known.join(", ")
            ),
        }
    })?;
    let state_dir = args.state_dir.unwrap_or_else(default_state_dir);
    let in_state_dir = || format!("state directory {}", state_dir.display());
    daemon::prepare_state_dir(&state_dir).with_context(in_state_dir)?;
    let pipeline = Pipeline::new(&config.tools, &state_dir).with_context(in_state_dir)?;
    pipeline
        .preflight()
        .await
        .map_err(|failure| anyhow::anyhow!("cannot build: {}", failure.error))?;

    let short_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let cluster = ClusterSpec {
        id: short_id.to_string(),
        name: format!("{NAME_PREFIX}{}-{short_id}", profile.name),
        profile,
    };
    let store = Store::in_memory().await?;
    let run_id = store
        .insert_building(
            &cluster.id,
            &cluster.name,
            &cluster.profile.name,
            "local",
            time::now(),
        )
        .await?;
    let (events, mut printed) = mpsc::unbounded_channel();
    let recorder = Recorder::new(store.clone(), run_id).observed(events);
    let started = Instant::now();
    println!(
        "building cluster {} (profile {})",
        cluster.name, cluster.profile.name
    );
    for step in &cluster.profile.deploy {
        println!("  deploy step {}: {}", step.name, step.image_use());
    }
    let printer = tokio::spawn(async move {
        let mut view = StepView::for_stderr();
        let mut redraw = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tokio::select! {
                event = printed.recv() => match event {
                    Some(event) => view.show(&step_line(&event, started), &event),
                    None => break,
                },
                _ = redraw.tick() => view.redraw(),
            }
        }
        view.done();
    });
    let outcome = tokio::select! {
        outcome = pipeline.build(&cluster, &recorder) => Some(outcome),
        _ = tokio::signal::ctrl_c() => None,
    };
    drop(recorder);
    let _ = printer.await;
    let steps = store.build_steps_of_run(run_id).await?;
    match outcome {
        Some(Ok(_)) => {
            print!("\n{}", phase_table(&steps));
            if args.rm {
                pipeline
                    .destroy(&cluster.name)
                    .await
                    .map_err(|failure| anyhow::anyhow!("cannot delete the cluster: {failure}"))?;
                println!("deleted cluster {}", cluster.name);
            } else {
                println!("cluster {} is ready", cluster.name);
                println!(
                    "kubeconfig: {}",
                    pipeline.kubeconfig_path(&cluster.name).display()
                );
            }
            Ok(())
        }
        Some(Err(failure)) => {
            print!("\n{}", phase_table(&steps));
            let _ = pipeline.destroy(&cluster.name).await;
            println!("deleted the half-built cluster {}", cluster.name);
            anyhow::bail!("build failed in {failure}")
        }
        None => {
            let _ = pipeline.destroy(&cluster.name).await;
            Err(Exit {
                code: EXIT_INTERRUPTED,
                message: format!(
                    "interrupted; deleted the half-built cluster {}",
                    cluster.name
                ),
            }
            .into())
        }
    }
}

fn seconds(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn step_line(event: &StepEvent, started: Instant) -> String {
    let at = seconds(started.elapsed());
    match event {
        StepEvent::Started { phase, step, .. } => format!("{at:>8}  start  {phase} / {step}"),
        StepEvent::Ended {
            phase,
            step,
            took,
            error: None,
            ..
        } => {
            format!("{at:>8}  done   {phase} / {step} ({})", seconds(*took))
        }
        StepEvent::Ended {
            phase,
            step,
            took,
            error: Some(e),
            ..
        } => {
            let first = e.lines().next().unwrap_or_default();
            format!(
                "{at:>8}  FAILED {phase} / {step} ({}): {first}",
                seconds(*took)
            )
        }
    }
}
