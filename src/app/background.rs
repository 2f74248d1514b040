//! File work a tab runs off the UI thread (saves, exports, renders): started with
//! [`Background::run`], collected each frame with [`Background::finished`].

use std::sync::mpsc::{Receiver, TryRecvError, channel};

use super::Shared;

/// The pending tasks of one tab, each on its own thread, each giving back one `T`.
pub struct Background<T> {
    pending: Vec<Receiver<T>>,
}

impl<T> Default for Background<T> {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
        }
    }
}

impl<T: Send + 'static> Background<T> {
    pub fn run(&mut self, work: impl FnOnce() -> T + Send + 'static) {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(work());
        });
        self.pending.push(rx);
    }

    /// The results of the tasks that ended since the last call; never waits. A task that
    /// ended without a result (it panicked) is reported in the window.
    pub fn finished(&mut self, shared: &mut Shared) -> Vec<T> {
        let mut done = Vec::new();
        self.pending.retain(|rx| match rx.try_recv() {
            Ok(result) => {
                done.push(result);
                false
            }
            Err(TryRecvError::Empty) => true,
            Err(TryRecvError::Disconnected) => {
                shared.error("a background task ended without a result");
                false
            }
        });
        done
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
