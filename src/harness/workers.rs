//! Many clients at once: jobs numbered 0..count run on `concurrency` tasks, each taking the next number as soon as
//! it is free, as a load generator's virtual users do.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::task::JoinHandle;

/// Starts the jobs and answers the errors they returned, once all have run.
pub fn spawn_jobs<F, Fut>(count: usize, concurrency: usize, job: F) -> JoinHandle<Vec<String>>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<JoinHandle<Vec<String>>> = (0..concurrency.max(1))
        .map(|_| {
            let (next, job) = (next.clone(), job.clone());
            tokio::spawn(async move {
                let mut errors = vec![];
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return errors;
                    }
                    if let Err(e) = job(n).await {
                        errors.push(e);
                    }
                }
            })
        })
        .collect();
    tokio::spawn(async move {
        let mut errors = vec![];
        for worker in workers {
            match worker.await {
                Ok(found) => errors.extend(found),
                Err(e) => errors.push(format!("a worker stopped: {e}")),
            }
        }
        errors
    })
}
