//! The FIFO queue of callers waiting for a ready cluster of one profile.
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::oneshot;

use super::{Grant, Terms};

/// What a waiter is sent: its grant, or why the profile became degraded.
pub type Outcome = Result<Grant, String>;

pub struct Waiter {
    pub id: u64,
    pub terms: Terms,
    pub tx: oneshot::Sender<Outcome>,
}

/// A caller's place in the queue. Dropped, it leaves the queue, and a grant sent to it that it
/// never took is dropped with it (and so taken back).
pub struct Place {
    pub id: u64,
    queue: Arc<Queue>,
    rx: oneshot::Receiver<Outcome>,
}

impl Place {
    /// Waits for this caller's turn; `None` if its waiter was dropped unanswered.
    pub async fn served(&mut self) -> Option<Outcome> {
        (&mut self.rx).await.ok()
    }

    /// Leaves the queue; returns what arrived meanwhile, if anything.
    pub fn leave(&mut self) -> Option<Outcome> {
        self.queue.remove(self.id);
        self.rx.close();
        self.rx.try_recv().ok()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.queue.remove(self.id);
    }
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

    /// Joins the back of the queue.
    pub fn push(self: &Arc<Self>, terms: Terms) -> Place {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        let (tx, rx) = oneshot::channel();
        self.waiters().push_back(Waiter { id, terms, tx });
        Place {
            id,
            queue: Arc::clone(self),
            rx,
        }
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
    pub fn position(&self, id: u64) -> Option<(usize, usize)> {
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
    use std::time::Duration;

    use super::*;

    fn terms(holder: &str) -> Terms {
        Terms {
            holder: holder.into(),
            ttl: Duration::from_secs(1),
            request_id: None,
        }
    }

    #[test]
    fn serves_in_arrival_order_and_skips_those_who_left() {
        let queue = Arc::new(Queue::default());
        let a = queue.push(terms("a"));
        let mut b = queue.push(terms("b"));
        let c = queue.push(terms("c"));
        let _d = queue.push(terms("d"));
        b.rx.close();
        drop(c);
        assert_eq!(queue.len(), 3, "b is still queued until popped");
        let first = queue.pop_front().unwrap();
        assert_eq!(first.terms.holder, "a");
        queue.push_front(first);
        assert_eq!(queue.pop_front().unwrap().terms.holder, "a");
        assert_eq!(
            queue.pop_front().unwrap().terms.holder,
            "d",
            "b stopped listening and c left"
        );
        assert!(queue.pop_front().is_none());
        drop(a);
    }
}
