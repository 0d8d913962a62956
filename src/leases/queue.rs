//! The FIFO queue of callers waiting for a ready cluster of one profile.
use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::oneshot;

use crate::store::LeaseRow;

/// What a waiter is sent: its lease, or why the profile became degraded.
pub type Outcome = Result<Granted, String>;

/// A lease from a grant; `fresh` unless it is the lease an earlier call with the same
/// request id got (which must never be taken back on this call's behalf).
#[derive(Debug)]
pub struct Granted {
    pub lease: LeaseRow,
    pub fresh: bool,
}

/// What a waiter needs granted.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub holder: String,
    pub ttl: Duration,
    pub request_id: Option<String>,
}

pub struct Waiter {
    pub id: u64,
    pub wanted: Wanted,
    pub tx: oneshot::Sender<Outcome>,
}

#[derive(Default)]
pub struct Queue {
    /// Held across a grant so that grants of one profile happen one at a time, in order.
    pub grant_lock: tokio::sync::Mutex<()>,
    waiters: Mutex<VecDeque<Waiter>>,
    next_id: Mutex<u64>,
}

impl Queue {
    fn waiters(&self) -> MutexGuard<'_, VecDeque<Waiter>> {
        // A panic while holding this lock leaves a consistent VecDeque; keep going.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.waiters().len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters().is_empty()
    }

    /// Joins the back of the queue; returns the waiter's id and where its outcome arrives.
    pub fn push(&self, wanted: Wanted) -> (u64, oneshot::Receiver<Outcome>) {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        let (tx, rx) = oneshot::channel();
        self.waiters().push_back(Waiter { id, wanted, tx });
        (id, rx)
    }

    /// The first waiter still listening (those who left are dropped on the way).
    pub fn pop_front(&self) -> Option<Waiter> {
        let mut waiters = self.waiters();
        while let Some(waiter) = waiters.pop_front() {
            if !waiter.tx.is_closed() {
                return Some(waiter);
            }
        }
        None
    }

    /// Puts back a waiter that could not be served yet, keeping its place.
    pub fn push_front(&self, waiter: Waiter) {
        self.waiters().push_front(waiter);
    }

    /// Where a waiter stands (1 = next to be served) and how many wait, read together.
    pub fn place(&self, id: u64) -> Option<(usize, usize)> {
        let waiters = self.waiters();
        let position = waiters.iter().position(|w| w.id == id)?;
        Some((position + 1, waiters.len()))
    }

    pub fn remove(&self, id: u64) {
        self.waiters().retain(|w| w.id != id);
    }

    pub fn drain(&self) -> Vec<Waiter> {
        self.waiters().drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(holder: &str) -> Wanted {
        Wanted {
            holder: holder.into(),
            ttl: Duration::from_secs(1),
            request_id: None,
        }
    }

    #[test]
    fn serves_in_arrival_order_and_skips_those_who_left() {
        let queue = Queue::default();
        let (_, rx_a) = queue.push(wanted("a"));
        let (_, rx_b) = queue.push(wanted("b"));
        let (id_c, _rx_c) = queue.push(wanted("c"));
        let (_, _rx_d) = queue.push(wanted("d"));
        drop(rx_b);
        queue.remove(id_c);
        assert_eq!(queue.len(), 3, "b is still queued until popped");
        let first = queue.pop_front().unwrap();
        assert_eq!(first.wanted.holder, "a");
        queue.push_front(first);
        assert_eq!(queue.pop_front().unwrap().wanted.holder, "a");
        assert_eq!(
            queue.pop_front().unwrap().wanted.holder,
            "d",
            "b left and c was removed"
        );
        assert!(queue.pop_front().is_none());
        drop(rx_a);
    }
}
