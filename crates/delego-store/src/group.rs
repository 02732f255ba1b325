//! Group commit: concurrent requests of one kind share one transaction.
//!
//! A durable commit costs a disk flush, and on SQLite every write waits for the one writer
//! anyway. So a caller queues its request and tries to become the leader; the leader takes
//! everything queued, runs it in one transaction and answers each request after the commit.
//! Callers that arrived while it ran wait for its answer or lead the next group. Nobody's
//! answer is given before the transaction holding its change is committed.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// One queued request and where its answer goes.
pub(crate) struct Request<R, T> {
    pub input: R,
    pub reply: oneshot::Sender<T>,
}

pub(crate) struct GroupCommit<R, T> {
    queue: Mutex<Vec<Request<R, T>>>,
    leader: tokio::sync::Mutex<()>,
}

impl<R, T> Default for GroupCommit<R, T> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            leader: tokio::sync::Mutex::new(()),
        }
    }
}

impl<R: Clone, T> GroupCommit<R, T> {
    /// Runs `input` in some group: `run` gets the whole group and must answer every request
    /// in it. If a leader is cancelled midway (its caller went away), the requests it had
    /// taken are queued again. Its transaction rolls back, unless the cancellation came
    /// during the commit itself: then a claim may have landed and be made a second time;
    /// the first lapses with its lease, since nobody renews it.
    pub async fn submit<F, Fut>(&self, input: R, run: F) -> T
    where
        F: Fn(Vec<Request<R, T>>) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let (reply, mut answer) = oneshot::channel();
            self.lock_queue().push(Request {
                input: input.clone(),
                reply,
            });
            loop {
                let _leading = self.leader.lock().await;
                match answer.try_recv() {
                    Ok(result) => return result,
                    Err(oneshot::error::TryRecvError::Closed) => break,
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
                let group = std::mem::take(&mut *self.lock_queue());
                // Our request is either in this group or was answered under the lock.
                run(group).await;
            }
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Request<R, T>>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_caller_gets_its_own_answer_and_concurrent_callers_share_groups() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::default();
        let groups = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for n in 0..200u32 {
            let (group, groups) = (group.clone(), groups.clone());
            callers.push(tokio::spawn(async move {
                let answer = group
                    .submit(n, |requests| {
                        let groups = groups.clone();
                        async move {
                            groups.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            for request in requests {
                                let _ = request.reply.send(request.input * 2);
                            }
                        }
                    })
                    .await;
                (n, answer)
            }));
        }
        for caller in callers {
            let (n, answer) = caller.await.unwrap();
            assert_eq!(answer, n * 2);
        }
        let groups = groups.load(Ordering::SeqCst);
        assert!(
            groups < 200,
            "200 concurrent callers ran in {groups} groups"
        );
    }

    #[tokio::test]
    async fn a_cancelled_leaders_requests_are_run_again() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::default();
        let first = {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .submit(1, |_requests| std::future::pending::<()>())
                    .await
            })
        };
        tokio::task::yield_now().await;
        // The second caller queues behind a leader that never finishes, then the leader is
        // cancelled: the second caller must lead a new group and be answered.
        let second = {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .submit(2, |requests| async move {
                        for request in requests {
                            let _ = request.reply.send(request.input + 40);
                        }
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        first.abort();
        assert_eq!(second.await.unwrap(), 42);
    }
}
