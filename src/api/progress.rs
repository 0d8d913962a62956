//! AcquireWithProgress: Acquire, telling a waiting caller every half second where it stands.
use std::{sync::Arc, time::Duration};

use infrad_client::proto::{self, acquire_progress::Event};
use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::convert;
use crate::{
    leases::{Ask, LeaseApi, Progress, Watchers},
    pool::StepEvent,
    time,
};

const EVERY: Duration = Duration::from_millis(500);

pub(super) type Sender = mpsc::Sender<Result<proto::AcquireProgress, Status>>;

/// Runs one Acquire and streams its progress into `tx`; the lease (or error) comes last.
/// A caller that hangs up drops the Acquire, or the grant it could not receive: either way no
/// lease is left behind.
pub(super) async fn stream<L: LeaseApi>(leases: Arc<L>, ask: Ask, tx: Sender) {
    let profile = ask.profile.clone();
    let (queued, waiter) = watch::channel(None);
    let (steps, mut step_events) = mpsc::unbounded_channel();
    let watchers = Watchers {
        queued: Some(queued),
        steps: Some(steps),
    };
    let acquire = leases.acquire_watched(ask, watchers);
    tokio::pin!(acquire);
    let mut ticks = tokio::time::interval(EVERY);
    let outcome = loop {
        tokio::select! {
            outcome = &mut acquire => break outcome,
            () = tx.closed() => return,
            Some(event) = step_events.recv() => {
                if tx.send(Ok(message(Event::Overlay(overlay_step(event))))).await.is_err() {
                    return;
                }
            }
            _ = ticks.tick() => {
                let Some(id) = *waiter.borrow() else { continue };
                if let Ok(Some(progress)) = leases.progress(&profile, id).await
                    && tx.send(Ok(message(Event::Waiting(waiting(progress))))).await.is_err()
                {
                    return;
                }
            }
        }
    };
    // Steps told just before the outcome still go first.
    while let Ok(event) = step_events.try_recv() {
        if tx
            .send(Ok(message(Event::Overlay(overlay_step(event)))))
            .await
            .is_err()
        {
            return;
        }
    }
    match outcome {
        Ok(grant) => {
            let last = message(Event::Lease(convert::lease(&grant)));
            if tx.send(Ok(last)).await.is_ok() {
                grant.deliver();
            } else {
                // The caller hung up as its lease came: nobody else would ever release it.
                grant.take_back().await;
            }
        }
        Err(e) => {
            let _ = tx.send(Err(Status::from(e))).await;
        }
    }
}

fn message(event: Event) -> proto::AcquireProgress {
    proto::AcquireProgress {
        at: Some(convert::timestamp(time::now())),
        event: Some(event),
    }
}

fn overlay_step(event: StepEvent) -> proto::OverlayStep {
    match event {
        StepEvent::Started { phase, step, .. } => proto::OverlayStep {
            phase,
            step,
            ..Default::default()
        },
        StepEvent::Ended {
            phase,
            step,
            took,
            error,
            ..
        } => proto::OverlayStep {
            phase,
            step,
            done: true,
            took: Some(convert::duration(took)),
            error: error.unwrap_or_default(),
        },
    }
}

fn waiting(progress: Progress) -> proto::Waiting {
    proto::Waiting {
        position: progress.position,
        waiting: progress.waiting,
        build: progress.build.map(|build| {
            let (phase, step, step_elapsed) = build.step.unwrap_or_default();
            proto::BuildProgress {
                cluster: build.cluster,
                elapsed: Some(convert::duration(build.elapsed)),
                phase,
                step,
                step_elapsed: Some(convert::duration(step_elapsed)),
            }
        }),
    }
}
